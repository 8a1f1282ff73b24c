# Two commands for a newcomer: `make demo` (set up + analyse the bundled sample case) and
# `make test` (set up + run the tests). Both create ./.venv on first use.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: demo test setup setup-dev clean ohif

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

# torch first and pinned: the pin takes the CPU wheel; an unpinned torch pulls a CUDA build.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,train,service]'
	touch $@

# The prebuilt OHIF viewer for the service and its browser test (cached; not in git).
.cache/ohif/.version: scripts/setup_ohif.sh
	scripts/setup_ohif.sh .cache/ohif
ohif: .cache/ohif/.version

setup: $(VENV)/.installed
setup-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/pneumolens analyze examples/covid_ct_md_P002/dicom --out out/sample --overwrite
	@echo "Open out/sample/report.html; numbers in out/sample/analysis.json"

test: $(VENV)/.installed-dev ohif
	$(BIN)/python -m pytest -q -ra

clean:
	rm -rf out .pytest_cache
