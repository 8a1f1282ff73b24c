"""The command wiring: every listed command imports, a broken one is an error, --version, -m."""

import importlib
import subprocess
import sys
import types

import pytest

from pneumolens import __version__

# ``pneumolens.cli.main`` is both the module and (re-exported by the package) its function.
cli_main = importlib.import_module("pneumolens.cli.main")


def test_every_listed_command_is_registered():
    parser = cli_main.build_parser()
    commands = parser._subparsers._group_actions[0].choices  # argparse keeps them here
    assert {"analyze", "evaluate", "evaluate-seg", "segment-slices", "train", "serve"} <= set(commands)
    assert len(commands) >= len(cli_main.COMMAND_MODULES)  # each listed module adds its command


def test_a_command_module_that_fails_to_import_is_an_error(monkeypatch, tmp_path, capsys):
    """A listed command whose module raises on import stops the CLI with the reason (exit 1),
    instead of the command silently missing from ``pneumolens --help``."""
    (tmp_path / "pneumolens_test_broken_command.py").write_text(
        "import pneumolens_missing_dependency_for_test\n\ndef register(subparsers):\n    pass\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, "pneumolens_test_broken_command"))
    with pytest.raises(cli_main.CommandImportError, match="pneumolens_test_broken_command.*missing_dependency"):
        cli_main.build_parser()
    assert cli_main.main(["analyze", "--help"]) == cli_main.EXIT_BROKEN_INSTALL
    err = capsys.readouterr().err
    assert "cannot be imported" in err and "pneumolens_missing_dependency_for_test" in err


def test_a_command_module_without_register_is_an_error(monkeypatch):
    module = types.ModuleType("pneumolens.cli._test_no_register")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    with pytest.raises(cli_main.CommandImportError, match="no register"):
        cli_main.build_parser((module.__name__,))


def test_python_dash_m_and_version():
    done = subprocess.run([sys.executable, "-m", "pneumolens", "--version"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"pneumolens {__version__}"


def test_no_command_prints_help_to_stderr(capsys):
    assert cli_main.main([]) == cli_main.EXIT_INPUT_ERROR
    captured = capsys.readouterr()
    assert captured.out == "" and "COMMAND" in captured.err
