"""CT severity (Pan et al. 2020), PO/PHO and LSS (Chaganti et al. 2020), per-slice region counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumolens.scores import lss_lobe_score, opacity_percentages, pan_lobe_score, region_slice_counts


@pytest.mark.parametrize(
    ("percent", "score"),
    [(0.0, 0), (0.01, 1), (4.99, 1), (5.0, 2), (25.0, 2), (25.01, 3), (50.0, 3), (50.5, 4), (75.0, 4),
     (75.01, 5), (100.0, 5)],
)
def test_pan_lobe_score_edges(percent, score):
    assert pan_lobe_score(percent) == score


@pytest.mark.parametrize(("percent", "score"), [(0.0, 0), (0.5, 1), (25.0, 1), (26.0, 2), (50.0, 2), (60.0, 3),
                                                 (75.0, 3), (76.0, 4), (100.0, 4)])
def test_lss_edges(percent, score):
    assert lss_lobe_score(percent) == score


def test_scores_of_an_empty_region_are_none():
    assert pan_lobe_score(math.nan) is None and lss_lobe_score(math.nan) is None


def test_opacity_percentages_count_lesion_and_dense_lesion():
    volume = np.full((2, 4, 5), -850, dtype=np.int16)
    region = np.zeros(volume.shape, dtype=bool)
    region[:, :, :4] = True  # 32 voxels
    lesions = np.zeros(volume.shape, dtype=np.uint8)
    lesions[0, 0, :4] = 1  # 4 GGO voxels at -500 HU
    volume[0, 0, :4] = -500
    lesions[1, 0, :2] = 2  # 2 consolidation voxels at +20 HU
    volume[1, 0, :2] = 20
    lesions[1, 3, 4] = 2  # outside the region: not counted
    po, pho = opacity_percentages(volume, region, lesions)
    assert po == pytest.approx(100 * 6 / 32) and pho == pytest.approx(100 * 2 / 32)
    assert all(math.isnan(v) for v in opacity_percentages(volume, np.zeros_like(region), lesions))


def test_region_slice_counts():
    regions = np.zeros((3, 2, 2), dtype=np.uint8)
    regions[:, 0, :] = 1
    regions[:, 1, :] = 4
    lesions = np.zeros_like(regions)
    lesions[0, 0, 0] = 1
    lesions[2, 1, :] = 2
    counts = region_slice_counts(regions, lesions, {1: "RUL", 4: "LUL", 5: "LLL"})
    assert counts["RUL"].tolist() == [1, 0, 0] and counts["LUL"].tolist() == [0, 0, 2]
    assert counts["LLL"].tolist() == [0, 0, 0]
