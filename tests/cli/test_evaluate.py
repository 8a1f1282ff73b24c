"""Bad input to ``pneumolens evaluate``: a clear message on stderr, exit code 2, no output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pneumolens.cli import main

GOOD = "case_id,truth,score,site\nc1,pos,0.9,A\nc2,neg,0.1,A\nc3,pos,0.7,B\nc4,neg,0.4,B\nc5,neg,0.2,A\nc6,pos,0.6,B\n"


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cases.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "extra", "message"),
    [
        (GOOD, ["--score", "nope"], "column(s) 'nope' not found"),
        (GOOD, ["--score", "score", "--subgroup", "scanner"], "column(s) 'scanner' not found"),
        (
            GOOD.replace("neg", "pos"),
            ["--score", "score", "--positive", "pos"],
            "one class only (6 positive(s), 0 negative(s)",
        ),
        (
            GOOD.replace("c2,neg", "c2,unsure"),
            ["--score", "score"],
            "has values ['neg', 'pos', 'unsure'] and no positive value was given",
        ),
        (GOOD, ["--score", "score"], "What to do: give --positive VALUE"),
        (
            GOOD.replace("0.9", "").replace("0.7", "high"),
            ["--score", "score", "--positive", "pos", "--strict"],
            "score column 'score' has 1 missing and 1 non-numeric",
        ),
        (
            GOOD.replace("c3,", "c1,"),
            ["--score", "score", "--positive", "pos"],
            "duplicate case ids in column 'case_id': 1 repeated (CSV lines 2, 4)",
        ),
        (
            GOOD.replace("case_id", "key"),
            ["--score", "score", "--positive", "pos", "--id", "key", "--id", "site"],
            "duplicate case ids in column 'site'",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "yes"],
            "value(s) ['yes'] not found in truth column 'truth'",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "pos", "--task", "broken"],
            "cannot read the task 'broken'",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "pos", "--threshold", "best"],
            "--threshold must be 'youden' or a number",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "pos", "--subgroup", "score:<=0.6,>=0.6"],
            "overlap",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "pos", "--subgroup", "site:<=1,>1"],
            "non-numeric value(s)",
        ),
        (
            GOOD,
            ["--score", "score", "--positive", "pos", "--ci-method", "bootstrap"],
            "needs bootstrap replicates",
        ),
        ("", ["--score", "score"], "cannot read the cases table"),
    ],
)
def test_bad_input_exits_2_with_message(tmp_path, capsys, text, extra, message):
    out = tmp_path / "out"
    rc = main(
        ["evaluate", str(_csv(tmp_path, text)), "--truth", "truth", *extra, "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert rc == 2
    assert message in err
    assert err.startswith("pneumolens evaluate: error:")
    assert "Traceback" not in err
    assert not out.exists()


def test_missing_file_exits_2(tmp_path, capsys):
    rc = main(
        [
            "evaluate",
            str(tmp_path / "none.csv"),
            "--truth",
            "t",
            "--score",
            "s",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert "the cases table does not exist" in capsys.readouterr().err


def test_bad_scores_are_dropped_and_counted_without_strict(tmp_path):
    text = GOOD.replace("0.9", "").replace("0.7", "high")
    out = tmp_path / "out"
    rc = main(
        [
            "evaluate",
            str(_csv(tmp_path, text)),
            "--truth",
            "truth",
            "--positive",
            "pos",
            "--score",
            "score",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert report["scores"] == [{"score": "score", "missing": 1, "non_numeric": 1}]
    task = report["tasks"][0]
    assert (task["positives"], task["negatives"], task["excluded_missing_score"]) == (1, 3, 2)


def test_numeric_binary_truth_needs_no_positive(tmp_path):
    text = GOOD.replace(",pos,", ",1,").replace(",neg,", ",0,")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                str(_csv(tmp_path, text)),
                "--truth",
                "truth",
                "--score",
                "score",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    task = json.loads((out / "report.json").read_text())["tasks"][0]
    assert (task["task"], task["positives"], task["negatives"]) == ("1 vs 0", 3, 3)
    assert task["auc"] == 1.0


def test_messages_go_to_stderr_and_stdout_stays_for_data(tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["evaluate", str(_csv(tmp_path, GOOD)), "--truth", "truth", "--positive", "pos", "--score", "score",
            "--out", str(out)]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "file(s) in" in captured.err
