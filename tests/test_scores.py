"""CT severity (Pan et al. 2020), PO/PHO and LSS (Chaganti et al. 2020), per-slice region counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pneumolens.scores import (
    lss_lobe_score,
    opacity_percentages,
    pan_lobe_score,
    region_slice_counts,
)


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


def test_region_scores_per_lung_and_lobe():
    from pneumolens.scores import region_scores

    volume = np.full((4, 4, 8), -850, dtype=np.int16)
    lungs = np.zeros(volume.shape, dtype=np.uint8)
    lungs[:, :, 1:4] = 1  # right: 48 voxels
    lungs[:, :, 4:7] = 2  # left: 48 voxels
    lobes = np.where(lungs == 1, 1, np.where(lungs == 2, 4, 0)).astype(np.uint8)
    lobes[:2][lungs[:2] == 1] = 3  # lower half of the right lung: RLL
    lesions = np.zeros_like(lungs)
    lesions[0, :, 1:4] = 2  # 12 voxels of RLL, consolidation at 0 HU
    volume[0, :, 1:4] = 0
    lesions[3, 0, 4] = 1  # one voxel of LUL, GGO at -600 HU
    volume[3, 0, 4] = -600
    out = region_scores(volume, lungs, lesions, lobes, {1: "RUL", 3: "RLL", 4: "LUL"})
    assert out["right_lung"]["po_percent"] == pytest.approx(25.0)
    assert out["right_lung"]["pho_percent"] == pytest.approx(25.0)
    assert out["left_lung"]["po_percent"] == pytest.approx(100 / 48) and out["left_lung"]["pho_percent"] == 0
    assert out["lungs"]["po_percent"] == pytest.approx(100 * 13 / 96)
    assert out["RLL"]["po_percent"] == pytest.approx(50.0) and out["RLL"]["score"] == 3 and out["RLL"]["lss"] == 2
    assert out["RUL"]["score"] == 0 and out["LUL"]["score"] == 1


def test_opacity_by_label_counts_each_label_like_count_nonzero() -> None:
    from pneumolens.scores import opacity_by_label

    rng = np.random.default_rng(11)
    labels = rng.integers(0, 4, (6, 15, 17)).astype(np.uint8)
    lesions = rng.integers(0, 3, labels.shape).astype(np.uint8)
    volume = rng.integers(-1000, 100, labels.shape).astype(np.int16)
    total, in_lesion, high = opacity_by_label(volume, labels, lesions, high_hu=-200.0)
    assert total[0] == in_lesion[0] == high[0] == 0
    for k in (1, 2, 3):
        region = labels == k
        assert total[k] == np.count_nonzero(region)
        assert in_lesion[k] == np.count_nonzero(region & (lesions > 0))
        assert high[k] == np.count_nonzero(region & (lesions > 0) & (volume > -200))
