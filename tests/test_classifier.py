"""Cohort classifier end to end on a synthetic cohort: train, save, reload, apply, evaluate."""

import json

import numpy as np
import pandas as pd
import pytest

from pneumolens.classifier import apply_classifier, load_classifier, read_cohort
from pneumolens.cli.main import main
from pneumolens.errors import InputError
from pneumolens.features import FEATURE_NAMES


def synthetic_cohort(n=60, seed=0) -> pd.DataFrame:
    """Pneumonia cases have more lesion and more multifocal, peripheral ground glass (noisy)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rows = []
    for label in y:
        row = {name: float(rng.normal(0, 1)) for name in FEATURE_NAMES}
        row["lesion_percent"] = float(np.exp(rng.normal(1.5 if label else -1.0, 1.0)))
        row["components"] = float(rng.poisson(8 if label else 3))
        row["peripheral_share"] = float(np.clip(rng.normal(0.6 if label else 0.4, 0.15), 0, 1))
        row["diagnosis"] = "pneumonia" if label else "normal"
        rows.append(row)
    df = pd.DataFrame(rows)
    df.insert(0, "case", [f"c{i:03d}" for i in range(n)])
    return df


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("clf")
    csv = tmp / "results.csv"
    df = synthetic_cohort()
    df = df.rename(columns={"lesion_ml": "feature_vector.lesion_ml"})  # prefixed columns are accepted
    df.to_csv(csv, index=False)
    out = tmp / "model"
    code = main(["train", "classifier", str(csv), "--label", "diagnosis", "--positive", "pneumonia",
                 "--predicts", "p_pneumonia", "--name", "synthetic", "--id", "case", "--folds", "3", "--out", str(out)])
    assert code == 0
    return tmp, out


def test_training_outputs_and_cv_auc(trained):
    _, out = trained
    assert {p.name for p in out.iterdir() if p.name != ".pneumolens-output"} == {"classifier.joblib", "cv_predictions.csv", "report.json", "calibration.png"}
    report = json.loads((out / "report.json").read_text())
    cv = report["cv"]
    assert cv["n_cases"] == 60 and cv["n_positive"] == 30 and len(cv["fold_auc"]) == 3
    assert 0.8 < cv["auc"] <= 1.0  # the signal is strong; a broken pipeline gives ~0.5
    assert {f["model"] for f in cv["folds"]} <= {"LogisticRegression", "GradientBoostingClassifier"}
    cal = cv["calibration"]
    assert len(cal["mean_predicted"]) == len(cal["fraction_positive"]) >= 2
    preds = pd.read_csv(out / "cv_predictions.csv")
    assert len(preds) == 60 and preds["cv_probability"].between(0, 1).all()
    assert list(preds["id"][:2]) == ["c000", "c001"]


def test_reload_and_apply(trained):
    _, out = trained
    clf = load_classifier(out / "classifier.joblib")
    assert clf.name == "synthetic" and clf.predicts == "p_pneumonia" and clf.features == FEATURE_NAMES
    sick = {name: 0.0 for name in FEATURE_NAMES} | {"lesion_percent": 20.0, "components": 10.0, "peripheral_share": 0.7}
    well = {name: 0.0 for name in FEATURE_NAMES} | {"lesion_percent": 0.2, "components": 2.0, "peripheral_share": 0.3}
    p_sick, p_well = apply_classifier(clf, sick)["probability"], apply_classifier(clf, well)["probability"]
    assert p_sick > 0.5 > p_well


def test_evaluate_reads_cross_validated_predictions(trained):
    tmp, out = trained
    study = tmp / "study"
    code = main(["evaluate", str(out / "cv_predictions.csv"), "--truth", "diagnosis", "--positive", "pneumonia",
                 "--score", "cv_probability", "--out", str(study)])
    assert code == 0
    report = json.loads((study / "report.json").read_text())
    text = json.dumps(report)
    cv_auc = json.loads((out / "report.json").read_text())["cv"]["auc"]
    assert f"{cv_auc:.4f}"[:5] in text or any(
        abs(v - cv_auc) < 1e-6 for v in _numbers(report) if isinstance(v, float)
    )


def _numbers(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _numbers(v)
    else:
        yield obj


def test_one_class_and_missing_features_are_clear_errors(tmp_path, capsys):
    df = synthetic_cohort(n=20)
    one = df.assign(diagnosis="pneumonia")
    one.to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(InputError, match="one class only"):
        read_cohort(tmp_path / "one.csv", label="diagnosis", positive=["pneumonia"])
    df.drop(columns=["effusion_ml", "nodule_count"]).to_csv(tmp_path / "missing.csv", index=False)
    code = main(["train", "classifier", str(tmp_path / "missing.csv"), "--label", "diagnosis",
                 "--positive", "pneumonia", "--out", str(tmp_path / "m")])
    assert code == 2 and not (tmp_path / "m").exists()
    err = capsys.readouterr().err
    assert "feature column(s) missing" in err and "effusion_ml" in err and "Traceback" not in err
    with pytest.raises(InputError, match="which are positive"):
        read_cohort(tmp_path / "one.csv", label="diagnosis")
    with pytest.raises(InputError, match="no label column"):
        read_cohort(tmp_path / "one.csv", label="dx")
    (tmp_path / "x.joblib").write_bytes(b"not a pickle")
    with pytest.raises(InputError, match="cannot be read"):
        load_classifier(tmp_path / "x.joblib")
    import joblib

    joblib.dump({"model": None}, tmp_path / "y.joblib")
    with pytest.raises(InputError, match="not a pneumolens cohort classifier"):
        load_classifier(tmp_path / "y.joblib")
