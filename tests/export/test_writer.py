"""The one output writer: new/empty/--overwrite rule, whole-folder replacement, no partial output."""

import pytest

from pneumolens.errors import InputError
from pneumolens.export.writer import OUTPUT_MARKER, check_out_dir, files_in, output_dir


def _previous_output(out, files):
    """A folder an earlier pneumolens run wrote (it carries the marker)."""
    with output_dir(out, overwrite=True) as tmp:
        for name, text in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(text)


def test_new_folder_is_written(tmp_path):
    out = tmp_path / "a" / "out"
    with output_dir(out) as tmp:
        (tmp / "x.txt").write_text("1")
    assert (out / "x.txt").read_text() == "1"
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]  # no staging left


def test_empty_folder_is_written(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with output_dir(out) as tmp:
        (tmp / "x.txt").write_text("1")
    assert [p.name for p in files_in(out)] == ["x.txt"]
    assert (out / OUTPUT_MARKER).is_file()


def test_used_folder_refused_without_overwrite(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(InputError, match="not empty"):
        check_out_dir(out)
    with pytest.raises(InputError, match="not empty"), output_dir(out):
        pass
    assert (out / "old.txt").read_text() == "old"


def test_overwrite_replaces_the_whole_folder(tmp_path):
    out = tmp_path / "out"
    _previous_output(out, {"stale.csv": "old", "sub/stale.png": "old"})
    with output_dir(out, overwrite=True) as tmp:
        (tmp / "new.json").write_text("{}")
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == [OUTPUT_MARKER, "new.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failure_leaves_previous_results_and_no_staging(tmp_path):
    out = tmp_path / "out"
    _previous_output(out, {"old.txt": "old"})
    with pytest.raises(RuntimeError), output_dir(out, overwrite=True) as tmp:
        (tmp / "half.txt").write_text("partial")
        raise RuntimeError("boom")
    assert [p.name for p in files_in(out)] == ["old.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_file_is_not_an_output_folder(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        check_out_dir(path, overwrite=True)
