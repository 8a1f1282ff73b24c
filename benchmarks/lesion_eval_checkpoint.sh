#!/bin/bash
# Export a checkpoint of a lesion training run and evaluate it against the shipped model
# (docs/training.md). Usage:
#   benchmarks/lesion_eval_checkpoint.sh CONFIG best|last|cycle_<step> [--validation-only] [--no-tta]
# e.g. benchmarks/lesion_eval_checkpoint.sh configs/lesions_256.toml best --validation-only
# --validation-only scores the validation and training blocks only (choose a checkpoint or TTA
# there; read the test blocks once, with the choice made). The run folder is the config's
# out_dir taken from RUNS_PARENT (default /work). The baseline is $BASELINE (default: the shipped
# model, stage 6 with flip TTA, under the same evaluation).
# Environment: REPO (this checkout, default: the script's parent folder), PY (python of the venv,
# default $REPO/.venv/bin/python).
set -euo pipefail
REPO=${REPO:-$(cd "$(dirname "$0")/.." && pwd)}
CONFIG=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
NAME=$2
shift 2
BASELINE=$(realpath "${BASELINE:-$REPO/docs/models/lesion_unet2d_records/eval_stage6_flip_tta.json}")
RUNS_PARENT=${RUNS_PARENT:-/work}
PY=${PY:-$REPO/.venv/bin/python}
export PYTHONPATH=$REPO/src
cd "$RUNS_PARENT"
RUN=$("$PY" -c "from pneumolens.train.config import load_config; print(load_config('$CONFIG').out_dir())")
TAG=$(basename "$RUN")$(printf '%s' "$@" | tr -d ' ' | sed 's/--validation-only/_val/; s/--no-tta/_notta/')
if [ ! -f "$RUN/export_$NAME/lesion_unet2d.onnx" ]; then
  nice -n 10 "$PY" -c "from pathlib import Path; from pneumolens.train.config import load_config; \
from pneumolens.train.export import export_recipe; \
print(export_recipe(load_config('$CONFIG'), Path('$RUN/$NAME.pt')))" > "$RUN/export_$NAME.out" 2>&1
  mkdir -p "$RUN/export_$NAME"
  cp "$RUN/lesion_unet2d.onnx" "$RUN/lesion_unet2d.json" "$RUN/export_$NAME/"
fi
nice -n 10 "$PY" -m pneumolens.train.evaluate --weights "$RUN/export_$NAME/lesion_unet2d.onnx" --no-inserted \
    --no-timing --threads 1 --json "$RUN/eval_${TAG}_$NAME.json" "$@" > "$RUN/eval_${TAG}_$NAME.out" 2>&1
"$PY" "$REPO/benchmarks/compare_lesion_evals.py" "$RUN/eval_${TAG}_$NAME.json" "$BASELINE" \
    --names "$TAG" shipped > "$RUN/compare_${TAG}_$NAME.md"
cat "$RUN/compare_${TAG}_$NAME.md"
