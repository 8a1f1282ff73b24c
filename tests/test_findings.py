import math

import numpy as np
import pytest

from pneumolens.findings import HU_BANDS, quantify, region_findings
from pneumolens.masks import LesionMasks, LungMasks


def _toy(shape=(4, 10, 10)):
    volume = np.full(shape, -850, dtype=np.int16)
    lungs = np.zeros(shape, dtype=np.uint8)
    lungs[:, 1:9, 1:5] = 1  # right lung: 4*8*4 = 128 voxels
    lungs[:, 1:9, 5:9] = 2  # left lung: 128 voxels
    lesions = np.zeros(shape, dtype=np.uint8)
    lesions[1, 2:4, 2:4] = 1  # 4 GGO voxels, right
    lesions[2, 2:4, 6:8] = 2  # 4 consolidation voxels, left
    volume[lesions == 1] = -500
    volume[lesions == 2] = 20
    return volume, LungMasks(lungs, np.zeros(shape, bool)), LesionMasks(lesions, (lesions > 0).astype(np.float32), "test")


def test_quantify_volumes_and_split():
    volume, lungs, lesions = _toy()
    spacing = (2.0, 1.0, 0.5)  # 1 mm^3 = 0.001 mL per voxel
    f = quantify(volume, lungs, lesions, spacing=spacing, z_positions_mm=(0.0, 2.0, 4.0, 6.0))
    both = f.region("lungs")
    assert both.volume_ml == pytest.approx(256 * 0.001)
    assert both.lesion_ml == pytest.approx(8 * 0.001)
    assert both.lesion_percent == pytest.approx(100 * 8 / 256)
    assert f.region("right_lung").ggo_ml == pytest.approx(0.004)
    assert f.region("right_lung").consolidation_ml == 0
    assert f.region("left_lung").consolidation_ml == pytest.approx(0.004)
    assert f.region("left_lung").lesion_mean_hu == pytest.approx(20)
    assert sum(both.hu_band_fractions.values()) == pytest.approx(1.0)
    assert both.hu_band_fractions["-950_to_-700"] == pytest.approx(248 / 256)


def test_slice_profile_one_entry_per_slice():
    volume, lungs, lesions = _toy()
    z = (10.0, 12.0, 14.0, 16.0)
    f = quantify(volume, lungs, lesions, spacing=(1, 1, 1), z_positions_mm=z, source_files=("a", "b", "c", "d"))
    assert [s.z_mm for s in f.slices] == list(z)
    assert [s.lesion_voxels for s in f.slices] == [0, 4, 4, 0]
    assert [s.ggo_voxels for s in f.slices] == [0, 4, 0, 0]
    assert f.slices[2].source_file == "c"
    assert all(s.lung_voxels == 64 for s in f.slices)


def test_empty_region_gives_nan_not_zero():
    volume, _, lesions = _toy()
    r = region_findings("empty", np.zeros(volume.shape, bool), volume, lesions.labels, voxel_ml=1.0)
    assert r.volume_ml == 0
    assert math.isnan(r.lesion_percent) and math.isnan(r.mean_hu)
    assert all(math.isnan(v) for v in r.hu_band_fractions.values())
    assert set(r.hu_band_fractions) == {b[0] for b in HU_BANDS}


def test_quantify_rejects_mismatched_shapes():
    volume, lungs, lesions = _toy()
    with pytest.raises(ValueError, match="one z position per slice"):
        quantify(volume, lungs, lesions, spacing=(1, 1, 1), z_positions_mm=(0.0,))
