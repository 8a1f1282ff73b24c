"""Phantoms: deterministic, consistent masks, anatomy independent of the voxel size."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pneumolens.masks import CONSOLIDATION, GGO, LEFT_LUNG, RIGHT_LUNG
from pneumolens.synthetic import (
    make_abdomen_phantom,
    make_benchmark_phantom,
    make_chest_phantom,
    make_head_phantom,
)

SMALL = {"shape": (40, 64, 64), "spacing": (5.0, 3.0, 3.0)}


@pytest.fixture(scope="module")
def chest():
    return make_chest_phantom()


@pytest.mark.parametrize("make", [make_chest_phantom, make_head_phantom, make_abdomen_phantom])
def test_same_seed_same_phantom_other_seed_other_phantom(make):
    a, b, c = make(**SMALL, seed=3), make(**SMALL, seed=3), make(**SMALL, seed=4)
    for field in ("volume", "lung_labels", "lesion_labels", "airways", "vessels"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.volume, c.volume)


def test_types_shapes_and_hu_ranges(chest):
    assert chest.volume.dtype == np.int16 and chest.volume.shape == (80, 128, 128)
    assert chest.lung_labels.dtype == np.uint8 and chest.lesion_labels.dtype == np.uint8
    assert chest.spacing == (2.5, 1.5, 1.5)
    v = chest.volume
    parenchyma = (chest.lung_labels > 0) & (chest.lesion_labels == 0) & ~chest.vessels
    assert -880 < np.median(v[parenchyma]) < -820
    assert -660 < np.median(v[chest.lesion_labels == GGO]) < -300
    assert -120 < np.median(v[chest.lesion_labels == CONSOLIDATION]) < 60
    assert np.median(v[chest.airways]) < -950
    assert v[0, 0, 0] < -950  # air outside the body
    assert (v > 400).sum() > 1000  # ribs and spine


def test_masks_are_consistent(chest):
    assert not (chest.airways & (chest.lung_labels > 0)).any()
    assert (chest.lung_labels[chest.lesion_labels > 0] > 0).all()
    assert (chest.lung_labels[chest.vessels] > 0).all()
    # Right lung at small x (patient right is image left in LPS / radiological view).
    xs = np.arange(chest.volume.shape[2])
    right_x = xs[(chest.lung_labels == RIGHT_LUNG).any(axis=(0, 1))].mean()
    left_x = xs[(chest.lung_labels == LEFT_LUNG).any(axis=(0, 1))].mean()
    assert right_x < left_x
    # The pleural lesion: consolidation in the left lung touching the lung border.
    pleural = (chest.lesion_labels == CONSOLIDATION) & (chest.lung_labels == LEFT_LUNG)
    assert pleural.sum() * chest.voxel_ml > 5
    outside = np.pad(chest.lung_labels == 0, 1)[1:-1, 1:-1, 2:]  # neighbour at x + 1
    assert (pleural & outside).any()


@pytest.mark.parametrize("lesions, ggo, cons", [((), False, False), (("ggo",), True, False),
                                                (("consolidation", "pleural"), False, True)])
def test_lesion_selection(lesions, ggo, cons):
    p = make_chest_phantom(**SMALL, lesions=lesions)
    assert (p.lesion_labels == GGO).any() == ggo
    assert (p.lesion_labels == CONSOLIDATION).any() == cons


def test_unknown_lesion_kind_is_refused():
    with pytest.raises(ValueError, match="unknown lesion kinds"):
        make_chest_phantom(**SMALL, lesions=("tumour",))


def test_anatomy_does_not_depend_on_voxel_size():
    thin = make_chest_phantom((200, 64, 64), (1.0, 3.0, 3.0), noise_hu=0)
    thick = make_chest_phantom((40, 64, 64), (5.0, 3.0, 3.0), noise_hu=0)
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        a = (thin.lung_labels == lab).sum() * thin.voxel_ml
        b = (thick.lung_labels == lab).sum() * thick.voxel_ml
        assert a == pytest.approx(b, rel=0.05)


@pytest.mark.parametrize("make", [make_head_phantom, make_abdomen_phantom])
def test_no_lung_phantoms_have_little_air_inside(make):
    p = make()
    assert not p.lung_labels.any() and not p.lesion_labels.any()
    dense = p.volume > -500
    enclosed_air = ndimage.binary_fill_holes(dense) & ~dense  # sinuses, bowel gas
    assert p.volume[0, 0, 0] < -950
    assert 1 < enclosed_air.sum() * p.voxel_ml < 300


def test_benchmark_phantom_is_full_size():
    p = make_benchmark_phantom(40, slice_mm=5.0)
    assert p.volume.shape == (40, 512, 512) and p.spacing == (5.0, 0.7, 0.7)
    # Same anatomy scaled to the 358 mm field of view: two lungs of 1-4 L.
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        assert 1000 < (p.lung_labels == lab).sum() * p.voxel_ml < 4000
