"""Own-cohort classifier: learn P(label) from the features of a labelled cohort of analyses.

``pneumolens train classifier RESULTS.csv --label COLUMN`` reads one row per analysed case with
the feature columns of :data:`pneumolens.features.FEATURE_NAMES` (as written in
``analysis.json`` ``assessment.feature_vector``; a column may carry a prefix such as
``feature_vector.``) and the user's label, then

1. estimates performance by **nested cross-validation**: an outer stratified K-fold split; in
   each outer training part an inner grid search (stratified K-fold, ROC AUC) chooses between
   logistic regression (standardised features, C in {0.01, 0.1, 1, 10}) and gradient boosting
   (depth 1-2, 50/100 trees), and the chosen model is calibrated by Platt scaling
   (``CalibratedClassifierCV``, sigmoid, inner folds); the outer test part is predicted by a
   model that never saw it. The out-of-fold probabilities give the cross-validated AUC and the
   calibration curve, and are written to ``cv_predictions.csv`` for ``pneumolens evaluate``.
2. fits the same procedure on the whole cohort and saves it as one versioned file.

scikit-learn: Pedregosa et al., JMLR 2011; nested CV: Varma & Simon, BMC Bioinformatics 2006
(doi 10.1186/1471-2105-7-91); Platt scaling: Platt 1999 / Niculescu-Mizil & Caruana, ICML 2005.

The saved file is a joblib pickle: load only classifier files you made or trust.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from pneumolens import __version__
from pneumolens.errors import InputError
from pneumolens.features import FEATURE_NAMES

FILE_FORMAT = "pneumolens-cohort-classifier"
FORMAT_VERSION = 1
PREDICTS = ("p_pneumonia", "p_viral", "none")
MIN_PER_CLASS = 4


@dataclass(frozen=True)
class Cohort:
    """Features ``X`` (cases x :data:`FEATURE_NAMES`), binary truth ``y``, case ids and labels."""

    X: np.ndarray
    y: np.ndarray
    ids: tuple[str, ...]
    labels: tuple[str, ...]
    label: str
    positive: tuple[str, ...]


@dataclass(frozen=True)
class CohortClassifier:
    """A trained, calibrated cohort classifier and what it was checked on."""

    name: str
    version: str
    label: str
    positive: tuple[str, ...]
    predicts: str
    features: tuple[str, ...]
    model: Any = field(repr=False)
    cv: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    sklearn_version: str = ""
    pneumolens_version: str = __version__


def _column(columns: Sequence[str], name: str) -> str | None:
    """The CSV column holding feature ``name``: exact, or ``<prefix>.<name>``."""
    if name in columns:
        return name
    matches = [c for c in columns if c.endswith("." + name)]
    return matches[0] if len(matches) == 1 else None


def read_cohort(
    path: str | Path, *, label: str, positive: Sequence[str] | None = None, id_column: str | None = None
) -> Cohort:
    """Read a cohort CSV (one row per case) for training.

    Raises
    ------
    InputError
        The file or the label column is missing, feature columns are missing or not numeric,
        the label has one class only, or a class has fewer than :data:`MIN_PER_CLASS` cases.
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise InputError("the cohort CSV does not exist", where=path, todo="pass the results table of your analyses")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"the cohort CSV cannot be read ({exc})", where=path, todo="pass a comma-separated file") from None
    columns = list(table.columns)
    if label not in columns:
        raise InputError(f"no label column {label!r} (columns: {', '.join(columns[:20])})", where=path,
                         todo="pass --label with the column that holds each case's diagnosis")
    found = {name: _column(columns, name) for name in FEATURE_NAMES}
    missing = [name for name, col in found.items() if col is None]
    if missing:
        raise InputError(
            f"{len(missing)} feature column(s) missing: {', '.join(missing)}",
            where=path,
            todo="build the CSV from analysis.json 'assessment.feature_vector' of each case "
            "(every name of pneumolens.features.FEATURE_NAMES is needed)",
        )
    table = table[table[label].notna()]
    labels = tuple(str(v) for v in table[label])
    values = sorted(set(labels))
    if positive is None:
        if set(values) <= {"0", "1", "0.0", "1.0", "False", "True", "false", "true"}:
            positive = tuple(v for v in values if v in ("1", "1.0", "True", "true"))
        else:
            raise InputError(f"the label column {label!r} has values {values}: which are positive?",
                             where=path, todo="pass --positive VALUE[,VALUE]")
    positive = tuple(str(p) for p in positive)
    unknown = [p for p in positive if p not in values]
    if unknown:
        raise InputError(f"--positive value(s) {unknown} do not occur in {label!r} (values: {values})", where=path,
                         todo="use values of the label column")
    y = np.array([v in positive for v in labels], dtype=int)
    counts = {0: int((y == 0).sum()), 1: int((y == 1).sum())}
    if min(counts.values()) == 0:
        kind = "positive" if counts[1] else "negative"
        raise InputError(f"the cohort has one class only: all {len(y)} cases are {kind}", where=path,
                         todo="a classifier needs positive and negative cases")
    if min(counts.values()) < MIN_PER_CLASS:
        raise InputError(f"too few cases per class for cross-validation ({counts[1]} positive, {counts[0]} negative)",
                         where=path, todo=f"give at least {MIN_PER_CLASS} cases of each class")
    X = table[[found[name] for name in FEATURE_NAMES]].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = np.argwhere(~np.isfinite(X))
    if bad.size:
        row, col = bad[0]
        raise InputError(f"{len(bad)} empty or non-numeric feature value(s), e.g. row {row + 2} column "
                         f"{found[FEATURE_NAMES[col]]!r}", where=path, todo="fill them or drop those cases")
    ids = tuple(str(v) for v in table[id_column]) if id_column else tuple(str(i) for i in range(len(y)))
    return Cohort(X=X, y=y, ids=ids, labels=labels, label=label, positive=positive)


def _search(inner_folds: int, seed: int):
    """The inner model selection: logistic regression vs gradient boosting, by ROC AUC."""
    from sklearn.ensemble import GradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=2000))])
    grid = [
        {"clf": [LogisticRegression(max_iter=2000)], "clf__C": [0.01, 0.1, 1.0, 10.0]},
        {
            "clf": [GradientBoostingClassifier(random_state=seed)],
            "clf__max_depth": [1, 2],
            "clf__n_estimators": [50, 100],
        },
    ]
    cv = StratifiedKFold(n_splits=inner_folds, shuffle=True, random_state=seed)
    return GridSearchCV(pipe, grid, scoring="roc_auc", cv=cv, n_jobs=1)


def _fit_procedure(X: np.ndarray, y: np.ndarray, *, inner_folds: int, seed: int) -> tuple[Any, str]:
    """Model selection then Platt calibration on ``X, y``; returns (model, chosen family)."""
    from sklearn.base import clone
    from sklearn.calibration import CalibratedClassifierCV

    folds = max(2, min(inner_folds, int(np.bincount(y).min())))
    search = _search(folds, seed).fit(X, y)
    best = search.best_estimator_
    family = type(best.named_steps["clf"]).__name__
    calibrated = CalibratedClassifierCV(clone(best), method="sigmoid", cv=folds).fit(X, y)
    return calibrated, family


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(set(y.tolist())) == 2 else float("nan")


def train_classifier(
    cohort: Cohort,
    *,
    name: str = "cohort",
    predicts: str = "none",
    outer_folds: int = 5,
    inner_folds: int = 3,
    seed: int = 0,
) -> tuple[CohortClassifier, np.ndarray]:
    """Nested cross-validation, then the final fit on the whole cohort.

    Returns the classifier (with ``cv``: per-fold AUC and chosen family, pooled out-of-fold AUC,
    Brier score, calibration curve) and the out-of-fold probabilities (one per case).
    """
    import sklearn
    from sklearn.calibration import calibration_curve
    from sklearn.metrics import brier_score_loss
    from sklearn.model_selection import StratifiedKFold

    if predicts not in PREDICTS:
        raise InputError(f"predicts must be one of {PREDICTS}, got {predicts!r}")
    X, y = cohort.X, cohort.y
    k = max(2, min(outer_folds, int(np.bincount(y).min())))
    oof = np.full(len(y), np.nan)
    folds = []
    splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    for i, (train, test) in enumerate(splitter.split(X, y)):
        model, family = _fit_procedure(X[train], y[train], inner_folds=inner_folds, seed=seed)
        oof[test] = model.predict_proba(X[test])[:, 1]
        folds.append({"fold": i, "n_test": len(test), "model": family, "auc": _auc(y[test], oof[test])})
    bins = max(2, min(10, len(y) // 10))
    frac_pos, mean_pred = calibration_curve(y, oof, n_bins=bins, strategy="quantile")
    model, family = _fit_procedure(X, y, inner_folds=inner_folds, seed=seed)
    cv = {
        "outer_folds": k,
        "inner_folds": inner_folds,
        "seed": seed,
        "n_cases": len(y),
        "n_positive": int(y.sum()),
        "auc": _auc(y, oof),
        "fold_auc": [f["auc"] for f in folds],
        "folds": folds,
        "brier": float(brier_score_loss(y, oof)),
        "calibration": {"mean_predicted": mean_pred.tolist(), "fraction_positive": frac_pos.tolist()},
        "final_model": family,
    }
    clf = CohortClassifier(
        name=name,
        version=f"{FORMAT_VERSION}.{datetime.now(timezone.utc).strftime('%Y%m%d%H%M%S')}",
        label=cohort.label,
        positive=cohort.positive,
        predicts=predicts,
        features=FEATURE_NAMES,
        model=model,
        cv=cv,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        sklearn_version=sklearn.__version__,
    )
    return clf, oof


def save_classifier(clf: CohortClassifier, path: str | Path) -> Path:
    """Write ``clf`` as one versioned joblib file."""
    import joblib

    path = Path(path)
    payload = {"format": FILE_FORMAT, "format_version": FORMAT_VERSION, **clf.__dict__}
    joblib.dump(payload, path)
    return path


def load_classifier(path: str | Path) -> CohortClassifier:
    """Read a file written by :func:`save_classifier`, checking its format and features.

    Raises
    ------
    InputError
        Missing file, not a pneumolens classifier, a newer format, or features this version
        does not compute.
    """
    import joblib

    path = Path(path)
    if not path.is_file():
        raise InputError("the classifier file does not exist", where=path,
                         todo="pass a file written by 'pneumolens train classifier'")
    try:
        payload = joblib.load(path)
    except (pickle.UnpicklingError, EOFError, KeyError, ValueError, AttributeError, ImportError, TypeError, IndexError) as exc:
        raise InputError(f"the classifier file cannot be read ({type(exc).__name__})", where=path,
                         todo="pass a file written by 'pneumolens train classifier'") from None
    if not isinstance(payload, dict) or payload.get("format") != FILE_FORMAT:
        raise InputError("not a pneumolens cohort classifier", where=path,
                         todo="pass a file written by 'pneumolens train classifier'")
    if int(payload.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"classifier format {payload['format_version']} is newer than this pneumolens reads "
                         f"({FORMAT_VERSION})", where=path, todo="update pneumolens")
    unknown = [f for f in payload["features"] if f not in FEATURE_NAMES]
    if unknown:
        raise InputError(f"the classifier uses features this version does not compute: {unknown}", where=path,
                         todo="retrain it with this version")
    fields_ = {k: v for k, v in payload.items() if k not in ("format", "format_version")}
    return CohortClassifier(**fields_)


def apply_classifier(clf: CohortClassifier, vector: Mapping[str, float]) -> dict[str, Any]:
    """P(positive label) for one case's feature vector (:meth:`Features.vector`)."""
    x = np.array([[float(vector[name]) for name in clf.features]])
    p = float(clf.model.predict_proba(x)[0, 1])
    return {
        "name": clf.name,
        "version": clf.version,
        "label": f"{clf.label} in {{{', '.join(clf.positive)}}}",
        "predicts": clf.predicts,
        "probability": p,
        "cv_auc": clf.cv.get("auc"),
    }


def write_training_outputs(clf: CohortClassifier, cohort: Cohort, oof: np.ndarray, out: Path) -> dict[str, Any]:
    """``classifier.joblib``, ``cv_predictions.csv`` (for ``pneumolens evaluate``),
    ``report.json`` and ``calibration.png`` into the folder ``out``."""
    import json

    import pandas as pd

    from pneumolens.analysis import finite_or_none

    save_classifier(clf, out / "classifier.joblib")
    pd.DataFrame({
        "id": cohort.ids,
        cohort.label: cohort.labels,
        "truth": cohort.y,
        "cv_probability": oof,
    }).to_csv(out / "cv_predictions.csv", index=False)
    report = finite_or_none({
        "name": clf.name, "version": clf.version, "label": clf.label, "positive": list(clf.positive),
        "predicts": clf.predicts, "features": list(clf.features), "created": clf.created,
        "sklearn_version": clf.sklearn_version, "pneumolens_version": clf.pneumolens_version, "cv": clf.cv,
    })
    (out / "report.json").write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    _calibration_figure(clf.cv["calibration"], clf.cv["auc"], out / "calibration.png")
    return report


def _calibration_figure(calibration: Mapping[str, list[float]], auc: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=1, label="perfect")
    ax.plot(calibration["mean_predicted"], calibration["fraction_positive"], "o-", label="cross-validated")
    ax.set_xlabel("predicted probability")
    ax.set_ylabel("observed fraction positive")
    ax.set_title(f"calibration (CV AUC {auc:.3f})" if math.isfinite(auc) else "calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
