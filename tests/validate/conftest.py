"""Fixtures of the validation tests: pROC's aSAH data (real data) and a synthetic cohort."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm


@pytest.fixture(scope="session")
def asah_csv(shared_data: Path) -> Path:
    """pROC's aSAH table (113 patients), as shipped in ../shared/data/asah/."""
    path = shared_data / "asah" / "asah.csv"
    if not path.is_file():
        pytest.skip(f"aSAH data not present at {path}")
    return path


@pytest.fixture(scope="session")
def asah(asah_csv: Path) -> pd.DataFrame:
    return pd.read_csv(asah_csv)


@pytest.fixture(scope="session")
def asah_truth(asah: pd.DataFrame) -> np.ndarray:
    """True where outcome is Poor (pROC's cases: level 2 of the factor)."""
    return (asah["outcome"] == "Poor").to_numpy()


CLASSES = ("normal", "bacterial", "covid", "other_viral", "other")
# Mean of model_a's score per class (normal is 0, unit variance): binormal model, so the true AUC
# of "class vs normal" is Phi(shift / sqrt(2)).
SHIFT_A = {"normal": 0.0, "bacterial": 1.5, "covid": 2.5, "other_viral": 2.0, "other": 1.0}


def true_auc(shift: float) -> float:
    return float(norm.cdf(shift / np.sqrt(2.0)))


def make_cohort(n_per_class: int = 80, seed: int = 7) -> pd.DataFrame:
    """A synthetic cohort with known ground truth.

    ``model_a`` follows the binormal shifts of ``SHIFT_A``, except on vendor ``C`` where it is
    pure noise for every class (a known subgroup failure); ``model_b`` is ``model_a``'s signal
    halved; ``p_viral`` separates viral (covid, other_viral) from non-viral pneumonia.
    """
    rng = np.random.default_rng(seed)
    diagnosis = np.repeat(CLASSES, n_per_class)
    n = diagnosis.size
    vendor = rng.choice(["A", "B", "C"], size=n, p=[0.4, 0.4, 0.2])
    shift = np.array([SHIFT_A[d] for d in diagnosis])
    shift_a = np.where(vendor == "C", 0.0, shift)
    viral = np.isin(diagnosis, ["covid", "other_viral"])
    table = pd.DataFrame(
        {
            "case_id": [f"case{i:04d}" for i in range(n)],
            "diagnosis": diagnosis,
            "sex": rng.choice(["F", "M"], size=n),
            "age": rng.integers(18, 90, size=n),
            "vendor": vendor,
            "model_a": shift_a + rng.normal(size=n),
            "model_b": shift / 2.0 + rng.normal(size=n),
            "p_viral": 1.8 * viral + rng.normal(size=n),
        }
    )
    return table.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture()
def cohort_csv(tmp_path: Path) -> Path:
    path = tmp_path / "cohort.csv"
    make_cohort().to_csv(path, index=False)
    return path
