"""Issue 10, writing side: the output location is checked before the analysis, ``--overwrite``
deletes only pneumolens output folders, one run per output folder, and temporary folders go
away on Ctrl-C, SIGTERM and (at the next run) after SIGKILL."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from pneumolens.cli.main import main
from pneumolens.errors import InputError
from pneumolens.export.writer import OUTPUT_MARKER, check_out_dir, output_dir, release
from pneumolens.tempfiles import MARKER

REPO = Path(__file__).resolve().parents[2]
P002 = REPO / "examples" / "covid_ct_md_P002" / "dicom"
SRC = str(REPO / "src")


def _slices(folder: Path, n: int = 8) -> Path:
    folder.mkdir(parents=True)
    for name in sorted(os.listdir(P002))[60 : 60 + n]:
        shutil.copy(P002 / name, folder / name)
    return folder


def _analyze(capsys, *argv) -> tuple[int, str]:
    code = main(["analyze", *map(str, argv), "--no-progress", "--method", "density"])
    return code, capsys.readouterr().err


def test_out_equal_to_the_input_with_overwrite_deletes_nothing(tmp_path, capsys):
    source = _slices(tmp_path / "ct")
    before = sorted(os.listdir(source))
    code, err = _analyze(capsys, source, "--out", source, "--overwrite")
    assert code == 2 and "Traceback" not in err
    assert "the output folder is the input" in err
    assert sorted(os.listdir(source)) == before


@pytest.mark.parametrize("where", ["inside", "around"])
def test_out_inside_or_around_the_input_is_refused(tmp_path, capsys, where):
    source = _slices(tmp_path / "ct")
    out = source / "results" if where == "inside" else tmp_path
    code, err = _analyze(capsys, source, "--out", out, "--overwrite")
    assert code == 2 and ("is inside the input" in err or "holds the input" in err), err
    assert len(os.listdir(source)) == 8


def test_overwrite_never_deletes_a_folder_pneumolens_did_not_write(tmp_path, capsys):
    source = _slices(tmp_path / "ct")
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.docx").write_text("years of work")
    code, err = _analyze(capsys, source, "--out", out, "--overwrite")
    assert code == 2 and "replaces only a folder pneumolens wrote" in err
    assert (out / "thesis.docx").read_text() == "years of work"


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("below a file", "which is a file"),
        ("a file", "exists and is not a folder"),
        ("dangling symlink", "broken symbolic link"),
        ("read-only", "not writable"),
    ],
)
def test_bad_output_locations_are_refused_before_the_analysis(tmp_path, capsys, monkeypatch, case, match):
    source = _slices(tmp_path / "ct")
    (tmp_path / "file").write_text("x")
    out = {
        "below a file": tmp_path / "file" / "out",
        "a file": tmp_path / "file",
        "dangling symlink": tmp_path / "link",
        "read-only": Path("/proc/pneumolens-out"),  # a file system nobody (not even root) writes
    }[case]
    if case == "dangling symlink":
        out.symlink_to(tmp_path / "nowhere")
    from pneumolens import pipeline

    def must_not_run(*args, **kwargs):
        raise AssertionError("the analysis ran before the output location was checked")

    monkeypatch.setattr(pipeline, "analyze_path", must_not_run)
    code, err = _analyze(capsys, source, "--out", out)
    assert code == 2 and re.search(match, err) and "Traceback" not in err, err


def test_a_full_disk_is_refused_before_the_work(tmp_path):
    with pytest.raises(InputError, match=r"MiB free; the outputs need about"):
        check_out_dir(tmp_path / "out", expected_bytes=2**62)


def test_a_second_run_into_the_same_output_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import sys, time; from pneumolens.export.writer import check_out_dir; "
          f"check_out_dir({str(out)!r}); print('locked', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=SRC),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match="another pneumolens run is writing this output folder"):
            check_out_dir(out)
    finally:
        holder.kill()
        holder.wait()
    check_out_dir(out)  # the killed holder's lock went with its process
    release(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_staging_folder_left_by_sigkill_is_removed_at_the_next_run(tmp_path):
    out = tmp_path / "out"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         ("import time; from pneumolens.export.writer import output_dir\n"
          f"with output_dir({str(out)!r}) as tmp:\n"
          "    (tmp / 'lungs.nii.gz').write_bytes(b'x' * 1000)\n"
          "    print(tmp, flush=True); time.sleep(60)\n")],
        stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=SRC),
    )
    staging = Path(writer.stdout.readline().strip())
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert staging.is_dir() and (staging / MARKER).is_file()  # what SIGKILL leaves behind
    with output_dir(out) as tmp:
        (tmp / "analysis.json").write_text("{}")
    assert not staging.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in out.iterdir()) == [OUTPUT_MARKER, "analysis.json"]


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_ctrl_c_and_sigterm_during_a_zip_input_leave_nothing(tmp_path, sig, code, word):
    """The real CLI on the whole P002 series as a zip, stopped while it reads the slices."""
    archive = tmp_path / "p002.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for path in sorted(P002.iterdir()):
            zf.write(path, path.name)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "out"
    run = subprocess.Popen(
        [sys.executable, "-m", "pneumolens", "analyze", str(archive), "--out", str(out), "--no-progress"],
        stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=SRC, TMPDIR=str(tmp)),
        # a shell without job control starts background jobs with SIGINT ignored, and Python then
        # never turns it into KeyboardInterrupt: give the child the default a terminal gives it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 - one async-signal-safe call
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(tmp.glob("pneumolens-zip-*/IM0133.dcm")):
        time.sleep(0.05)
    assert any(tmp.glob("pneumolens-zip-*/IM0133.dcm")), "the zip was never extracted"
    time.sleep(0.3)
    run.send_signal(sig)
    _, err = run.communicate(timeout=60)
    assert run.returncode == code, err
    assert err.strip().splitlines() == [f"pneumolens analyze: {word} ({'Ctrl-C' if code == 130 else 'SIGTERM'}); no output was written"]
    assert list(tmp.iterdir()) == []
    assert not out.exists()





def test_two_patients_in_one_folder_exit_2_unless_series_picks_one(tmp_path, capsys):
    import pydicom

    folder = tmp_path / "two"
    _slices(folder / "a")
    _slices(folder / "b")
    for path in (folder / "b").iterdir():
        ds = pydicom.dcmread(path)
        ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID = "OTHER", "1.2.3.4", "1.2.3.5"
        ds.save_as(path)
    code, err = _analyze(capsys, folder, "--out", tmp_path / "out")
    assert code == 2 and "2 patient(s) and 2 study(ies)" in err and "OTHER" not in err
    code, err = _analyze(capsys, folder, "--out", tmp_path / "out", "--series", "1.2.3.5")
    assert code == 0, err
    assert (tmp_path / "out" / "analysis.json").is_file()
