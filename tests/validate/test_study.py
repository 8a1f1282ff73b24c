"""Whole studies through ``pneumolens evaluate``: a synthetic cohort with known ground truth, and
pROC conformance of report.json on aSAH."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pneumolens.cli import main
from pneumolens.validate.specs import parse_subgroup, parse_task

from .conftest import SHIFT_A, make_cohort, true_auc

TASK_KEYS = {
    "task",
    "score",
    "positives",
    "negatives",
    "auc",
    "auc_ci",
    "auc_ci_method",
    "operating_point",
}
OP_KEYS = {
    "rule",
    "threshold",
    "sensitivity",
    "sensitivity_ci",
    "specificity",
    "specificity_ci",
    "ppv",
    "npv",
    "tp",
    "fp",
    "tn",
    "fn",
}
COMPARISON_KEYS = {
    "a",
    "b",
    "paired",
    "method",
    "statistic",
    "df",
    "p_value",
    "difference",
    "difference_ci",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("covid:diagnosis=covid/normal", ("covid", "diagnosis", ("covid",), ("normal",), None)),
        (
            "viral:dx=covid,other_viral/bacterial,other@p_viral",
            ("viral", "dx", ("covid", "other_viral"), ("bacterial", "other"), ("p_viral",)),
        ),
        ("any:dx=1", ("any", "dx", ("1",), None, None)),
        ("two:dx=a@s1+s2", ("two", "dx", ("a",), None, ("s1", "s2"))),
    ],
)
def test_parse_task(text, expected):
    t = parse_task(text)
    assert (t.name, t.column, t.positives, t.negatives, t.scores) == expected


def test_parse_subgroup():
    assert parse_subgroup("sex").bins is None
    assert parse_subgroup("age:<=40,>40").bins == ("<=40", ">40")


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def cohort_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One run (about 20 s on 2 shared cores, mostly the 39 figures) serves the tests below.
    folder = tmp_path_factory.mktemp("cohort")
    cohort_csv = folder / "cohort.csv"
    make_cohort().to_csv(cohort_csv, index=False)
    out = folder / "study"
    rc = main(
        [
            "evaluate",
            str(cohort_csv),
            "--truth",
            "diagnosis",
            "--positive",
            "bacterial,covid,other_viral,other",
            "--negative",
            "normal",
            "--reference",
            "normal",
            "--task",
            "viral vs non-viral:diagnosis=covid,other_viral/bacterial,other@p_viral",
            "--score",
            "model_a",
            "--score",
            "model_b",
            "--subgroup",
            "sex",
            "--subgroup",
            "age:<=40,>40",
            "--subgroup",
            "vendor",
            "--bootstrap",
            "200",
            "--seed",
            "11",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    return out


@pytest.mark.slow
def test_synthetic_cohort_outputs(cohort_study: Path):
    out = cohort_study
    for name in (
        "report.json",
        "report.html",
        "table2.csv",
        "table2.md",
        "table3.csv",
        "table3.md",
        "comparisons.csv",
        "comparisons.md",
        "subgroup_comparisons.csv",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())

    # Tasks: pneumonia vs normal, 4 x "type vs normal" (2 scores each) + viral (p_viral only).
    tasks = {(t["task"], t["score"]): t for t in report["tasks"]}
    assert len(tasks) == 11
    pneumonia = "bacterial+covid+other_viral+other vs normal"
    assert (
        tasks[(pneumonia, "model_a")]["positives"],
        tasks[(pneumonia, "model_a")]["negatives"],
    ) == (320, 80)
    assert (
        tasks[("covid vs normal", "model_b")]["positives"],
        tasks[("covid vs normal", "model_b")]["negatives"],
    ) == (80, 80)
    viral = tasks[("viral vs non-viral", "p_viral")]
    assert (viral["positives"], viral["negatives"]) == (160, 160)
    assert ("viral vs non-viral", "model_a") not in tasks
    for t in report["tasks"]:
        assert TASK_KEYS <= set(t) and OP_KEYS <= set(t["operating_point"])
        lo, hi = t["auc_ci"]
        assert 0.0 <= lo < t["auc"] < hi <= 1.0
        assert t["auc_ci_bootstrap"] is not None
        op = t["operating_point"]
        assert op["tp"] + op["fn"] == t["positives"] and op["tn"] + op["fp"] == t["negatives"]
        assert op["sensitivity"] == pytest.approx(op["tp"] / t["positives"])

    # Known ground truth: model_b follows the binormal model everywhere (shift halved).
    for cls, shift in SHIFT_A.items():
        if cls != "normal":
            assert tasks[(f"{cls} vs normal", "model_b")]["auc"] == pytest.approx(
                true_auc(shift / 2), abs=0.09
            )
    assert viral["auc"] == pytest.approx(true_auc(1.8), abs=0.06)

    # Paired comparisons: every pair of scores per task (one pair here), with the contract keys.
    comps = report["comparisons"]
    assert len(comps) == 5 and all(
        c["paired"] and c["method"] == "delong_paired" and c["df"] is None for c in comps
    )
    assert all(COMPARISON_KEYS <= set(c) for c in comps)
    covid = next(c for c in comps if c["task"] == "covid vs normal")
    assert (
        covid["difference"] > 0 and covid["p_value"] < 0.05
    )  # model_a's signal is twice model_b's

    # Subgroups: vendor C is pure noise for model_a, a known failure the unpaired test must find.
    subgroups = {s["variable"]: s for s in report["subgroups"]}
    assert set(subgroups) == {"sex", "age", "vendor"}
    assert [g["group"] for g in subgroups["age"]["groups"]] == ["age<=40", "age>40"]
    vendor = {
        g["group"]: {(t["task"], t["score"]): t for t in g["tasks"]}
        for g in subgroups["vendor"]["groups"]
    }
    assert vendor["vendor=C"][("covid vs normal", "model_a")]["auc"] == pytest.approx(0.5, abs=0.2)
    assert vendor["vendor=A"][("covid vs normal", "model_a")]["auc"] == pytest.approx(
        true_auc(2.5), abs=0.06
    )
    ac = next(
        c
        for c in subgroups["vendor"]["comparisons"]
        if (c["task"], c["score"], c["a"], c["b"])
        == ("covid vs normal", "model_a", "vendor=A", "vendor=C")
    )
    assert ac["method"] == "delong_unpaired_t" and ac["df"] > 1 and not ac["paired"]
    assert ac["p_value"] < 0.001 and ac["p_adjusted"] >= ac["p_value"]
    # Three vendors: 3 pairwise comparisons per task x score, Holm-adjusted.
    assert len(subgroups["vendor"]["comparisons"]) == 3 * 11
    # Subgroups are cut at the whole task's threshold.
    overall = tasks[("covid vs normal", "model_a")]["operating_point"]["threshold"]
    sub_op = vendor["vendor=A"][("covid vs normal", "model_a")]["operating_point"]
    assert sub_op["threshold"] == overall and sub_op["rule"] == "youden (all cases)"


@pytest.mark.slow
def test_synthetic_cohort_tables_and_figures(cohort_study: Path):
    out = cohort_study
    table2 = _read_csv(out / "table2.csv")
    assert len(table2) == 11
    assert list(table2[0]) == [
        "Task",
        "Score",
        "Positives",
        "Negatives",
        "Threshold",
        "AUC (95% CI)",
        "Sensitivity, % (95% CI)",
        "Specificity, % (95% CI)",
    ]
    assert table2[0]["AUC (95% CI)"].count("(") == 1
    table3 = _read_csv(out / "table3.csv")
    assert len(table3) == (2 + 2 + 3) * 11
    assert all(r["P (vs other groups)"].startswith("vs ") for r in table3)
    md = (out / "table2.md").read_text()
    assert md.startswith("| Task | Score |") and md.count("\n") == 13

    figures = sorted((out / "figures").glob("*.png"))
    # 6 task figures + one per subgroup variable x task x score.
    assert len(figures) == 6 + 3 * 11
    for png in figures:
        assert png.with_suffix(".svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    with Image.open(out / "figures" / "roc_covid_vs_normal.png") as img:
        assert img.size == (1500, 1500)
        # Not blank: the curves put colour on the white background.
        assert len(np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)) > 10

    html = (out / "report.html").read_text()
    for png in figures:
        assert f'src="figures/{png.name}"' in html
    assert "Table 2" in html and "Table 3" in html and "<table>" in html


def test_rerun_into_used_folder_needs_overwrite_and_leaves_no_stale_file(cohort_csv: Path, tmp_path: Path, capsys):
    """The one --out rule: a used folder is refused, and --overwrite replaces it as a whole
    (a first run's table3 and comparisons must not stay beside the second run's report.json)."""
    out = tmp_path / "again"
    common = ["evaluate", str(cohort_csv), "--truth", "diagnosis", "--positive", "covid", "--negative", "normal"]
    first_args = [*common, "--score", "model_a", "--score", "model_b", "--subgroup", "sex", "--out", str(out)]
    assert main(first_args) == 0
    assert (out / "table3.csv").is_file() and (out / "comparisons.csv").is_file()
    first = json.loads((out / "report.json").read_text())
    second_args = [*common, "--score", "model_a", "--threshold", "0.5", "--out", str(out)]

    assert main(second_args) == 2
    assert "not empty" in capsys.readouterr().err
    assert json.loads((out / "report.json").read_text()) == first  # untouched

    assert main([*second_args, "--overwrite"]) == 0
    second = json.loads((out / "report.json").read_text())
    assert first["tasks"][0]["operating_point"]["rule"] == "youden"
    assert second["tasks"][0]["operating_point"]["rule"] == "fixed"
    assert second["tasks"][0]["operating_point"]["threshold"] == 0.5
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not {"table3.csv", "table3.md", "comparisons.csv", "comparisons.md"} & names
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".again.")]  # no staging left


@pytest.mark.realdata
def test_asah_report_matches_pROC(asah_csv: Path, tmp_path: Path):
    out = tmp_path / "asah"
    rc = main(
        [
            "evaluate",
            str(asah_csv),
            "--truth",
            "outcome",
            "--positive",
            "Poor",
            "--score",
            "wfns",
            "--score",
            "s100b",
            "--score",
            "ndka",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    tasks = {t["score"]: t for t in report["tasks"]}
    # ../shared/data/README.md (pROC printed output, 4 decimals).
    assert round(tasks["s100b"]["auc"], 4) == 0.7314
    assert [round(x, 4) for x in tasks["s100b"]["auc_ci"]] == [0.6301, 0.8326]
    assert round(tasks["ndka"]["auc"], 4) == 0.6120
    assert [round(x, 4) for x in tasks["ndka"]["auc_ci"]] == [0.5012, 0.7227]
    op = tasks["s100b"]["operating_point"]
    assert op["threshold"] == pytest.approx(0.205, abs=1e-12)
    assert (round(op["sensitivity"], 4), round(op["specificity"], 4)) == (0.6341, 0.8056)
    # Full precision: xrobin/pROC tests/testthat/test-auc.R, test-ci.auc.R, test-roc.test.R.
    assert tasks["wfns"]["auc"] == pytest.approx(0.823678861788618, abs=1e-6)
    assert tasks["ndka"]["auc_ci"] == pytest.approx(
        [0.501244999271703, 0.722670989888189], abs=1e-6
    )
    comp = next(c for c in report["comparisons"] if (c["a"], c["b"]) == ("wfns", "s100b"))
    assert round(comp["statistic"], 3) == 2.209 and float(f"{comp['p_value']:.4g}") == 0.02718
    assert comp["statistic"] == pytest.approx(2.20898359144091, abs=1e-6)
    assert comp["difference_ci"] == pytest.approx([0.0104061769564846, 0.174214419249478], abs=1e-6)
    assert np.isclose(comp["p_value"], 0.0271757822291882, atol=1e-6)


def test_bootstrap_and_normal_reference_options(tmp_path: Path):
    csv_path = tmp_path / "small.csv"
    make_cohort(n_per_class=25, seed=3).to_csv(csv_path, index=False)
    out = tmp_path / "o"
    base = [
        "evaluate",
        str(csv_path),
        "--truth",
        "diagnosis",
        "--positive",
        "covid",
        "--negative",
        "normal",
        "--score",
        "model_a",
        "--score",
        "model_b",
        "--subgroup",
        "sex",
        "--bootstrap",
        "300",
        "--seed",
        "5",
    ]
    assert main([*base, "--ci-method", "bootstrap", "--unpaired", "normal", "--out", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    task = report["tasks"][0]
    assert task["auc_ci_method"] == "bootstrap" and task["auc_ci"] == task["auc_ci_bootstrap"]
    assert task["auc_ci"] != task["auc_ci_delong"]
    assert report["comparisons"][0]["method"] == "delong_paired"
    sub = report["subgroups"][0]["comparisons"][0]
    assert sub["method"] == "delong_unpaired_z" and sub["df"] is None

    out2 = tmp_path / "o2"
    assert main([*base, "--compare-method", "bootstrap", "--out", str(out2)]) == 0
    report2 = json.loads((out2 / "report.json").read_text())
    assert report2["comparisons"][0]["method"] == "bootstrap_paired"
    assert report2["subgroups"][0]["comparisons"][0]["method"] == "bootstrap_unpaired"
    # Same seed, same bootstrap CI.
    assert report2["tasks"][0]["auc_ci_bootstrap"] == task["auc_ci_bootstrap"]
