"""Lesions inserted into HU slices: inside the lungs, with the HU their label says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from pneumolens.synthetic import make_chest_phantom
from pneumolens.train.insertion import (
    PATTERNS,
    insert_lesions,
    insert_lesions_3d,
    lung_mask_2d,
)


@pytest.fixture(scope="module")
def slice_and_lungs():
    ph = make_chest_phantom(shape=(8, 160, 160), spacing=(10.0, 2.2, 2.2), seed=2, lesions=())
    hu = ph.volume[4].astype(np.float32)
    return hu, lung_mask_2d(hu, pixel_mm=2.2), ph.lung_labels[4] > 0


def test_rough_lung_mask_matches_phantom_lungs(slice_and_lungs) -> None:
    _, rough, truth = slice_and_lungs
    dice = 2 * (rough & truth).sum() / (rough.sum() + truth.sum())
    assert dice > 0.9


@pytest.mark.parametrize("pattern", PATTERNS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_inserted_lesions_inside_lungs_with_expected_hu(slice_and_lungs, pattern: str, seed: int) -> None:
    hu, lungs, _ = slice_and_lungs
    out = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(seed), pattern=pattern)
    assert out.pattern == pattern and out.hu.shape == hu.shape
    assert out.labels.any(), "every pattern must insert something"
    assert not out.labels[~lungs].any()
    assert hu.dtype == np.float32 and not np.shares_memory(out.hu, hu)
    # GGO raises attenuation (vessels kept), consolidation raises it to soft-tissue levels.
    for label, lo, hi in ((1, -800.0, -250.0), (2, -250.0, 150.0)):
        sel = out.labels == label
        if sel.sum() > 20:
            assert lo <= float(np.median(out.hu[sel])) <= hi
            assert float(np.median(out.hu[sel] - hu[sel])) > 100.0


def test_same_seed_same_lesions(slice_and_lungs) -> None:
    hu, lungs, _ = slice_and_lungs
    a = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(7))
    b = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.hu, b.hu)


def test_unknown_pattern_raises(slice_and_lungs) -> None:
    hu, lungs, _ = slice_and_lungs
    with pytest.raises(ValueError, match="pattern must be one of"):
        insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(0), pattern="apical")


# ---------------------------------------------------------------- 3D
@pytest.fixture(scope="module")
def volume_and_lungs():
    ph = make_chest_phantom(shape=(24, 128, 128), spacing=(5.0, 2.6, 2.6), seed=4, lesions=())
    return ph.volume.astype(np.int16), ph.lung_labels > 0, ph.spacing


@pytest.mark.parametrize("pattern", PATTERNS)
def test_3d_lesions_span_slices_inside_lungs(volume_and_lungs, pattern: str) -> None:
    hu, lungs, spacing = volume_and_lungs
    out = insert_lesions_3d(hu, lungs, spacing=spacing, rng=np.random.default_rng(1), pattern=pattern)
    assert out.pattern == pattern and out.hu.shape == hu.shape and out.hu.dtype == np.float32
    assert out.foci >= 1 and out.labels.any()
    assert not out.labels[~lungs].any()
    assert np.count_nonzero(out.labels.any(axis=(1, 2))) >= 2, "a 3D lesion must cover more than one slice"
    # HU change inside the lungs, plus the partial-volume blur of consolidation at their edge.
    near = ndimage.distance_transform_edt(~lungs) <= 3.0
    assert not (np.abs(out.hu - hu) > 1.0)[~near].any()
    # Small consolidated foci on 5 mm slices are partly partial volume, hence the wider band.
    for label, lo, hi in ((1, -800.0, -250.0), (2, -400.0, 150.0)):
        sel = out.labels == label
        if sel.sum() > 20:
            assert lo <= float(np.median(out.hu[sel])) <= hi


def test_3d_peripheral_lesions_touch_the_pleura(volume_and_lungs) -> None:
    hu, lungs, spacing = volume_and_lungs
    out = insert_lesions_3d(hu, lungs, spacing=spacing, rng=np.random.default_rng(3), pattern="peripheral")
    border = lungs & ~ndimage.binary_erosion(lungs, iterations=2)
    assert (out.labels > 0)[border].any()


def test_3d_same_seed_same_lesions(volume_and_lungs) -> None:
    hu, lungs, spacing = volume_and_lungs
    a = insert_lesions_3d(hu, lungs, spacing=spacing, rng=np.random.default_rng(9))
    b = insert_lesions_3d(hu, lungs, spacing=spacing, rng=np.random.default_rng(9))
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.hu, b.hu)


def test_3d_bad_shapes_raise(volume_and_lungs) -> None:
    hu, lungs, spacing = volume_and_lungs
    with pytest.raises(ValueError, match="3D arrays of one shape"):
        insert_lesions_3d(hu[0], lungs[0], spacing=spacing, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="3D arrays of one shape"):
        insert_lesions_3d(hu, lungs[:-1], spacing=spacing, rng=np.random.default_rng(0))


# ---------------------------------------------------------------- diffuse disease
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_diffuse_covers_most_of_both_lungs(slice_and_lungs, seed: int) -> None:
    hu, lungs, _ = slice_and_lungs
    out = insert_lesions(hu, lungs, pixel_mm=2.2, rng=np.random.default_rng(seed), pattern="diffuse")
    lesion = out.labels > 0
    assert 0.3 <= lesion.sum() / lungs.sum() <= 1.0
    mid = lungs.shape[1] // 2
    assert lesion[:, :mid].sum() > 0.2 * lungs[:, :mid].sum(), "diffuse disease is bilateral"
    assert lesion[:, mid:].sum() > 0.2 * lungs[:, mid:].sum(), "diffuse disease is bilateral"
    assert (out.labels == 1).sum() > (out.labels == 2).sum(), "mostly ground glass"


def test_random_patterns_never_draw_diffuse(slice_and_lungs) -> None:
    # Earlier recipes drew from three patterns; their random streams must not change.
    hu, lungs, _ = slice_and_lungs
    rng = np.random.default_rng(0)
    drawn = {insert_lesions(hu, lungs, pixel_mm=2.2, rng=rng).pattern for _ in range(30)}
    assert drawn == {"peripheral", "multifocal", "lobar"}


@pytest.fixture(scope="module")
def phantom_3d():
    return make_chest_phantom(shape=(40, 96, 96), spacing=(5.0, 3.0, 3.0), seed=4, lesions=())


def test_effusion_is_a_dependent_layer_of_known_volume(phantom_3d) -> None:
    from pneumolens.train.insertion import insert_effusion_3d

    ph = phantom_3d
    lung = ph.lung_labels == 1
    out = insert_effusion_3d(ph.volume, lung, spacing=ph.spacing, rng=np.random.default_rng(0))
    assert out.mask.any() and not (out.mask & ~lung).any()  # the phantom's lung mask reaches the wall
    assert out.volume_ml == pytest.approx(out.mask.sum() * np.prod(ph.spacing) / 1000)
    assert -40 < out.hu[out.mask].mean() < 60  # water density
    ys = np.nonzero(out.mask)[1]
    assert ys.mean() > np.nonzero(lung)[1].mean()  # posterior (dependent)
    zs = np.flatnonzero(out.mask.any(axis=(1, 2)))
    lung_z = np.flatnonzero(lung.any(axis=(1, 2)))
    assert zs[0] == lung_z[0] and zs[-1] < lung_z[0] + 0.8 * (lung_z[-1] - lung_z[0])  # from the base up
    np.testing.assert_array_equal(out.hu[~out.mask], ph.volume[~out.mask])


def test_effusion_fills_the_aerated_rim_between_lung_mask_and_wall(phantom_3d) -> None:
    """Free fluid lies against the parietal pleura: the partly aerated voxels a lung mask leaves
    against the chest wall are fluid too (and counted in the volume); the random stream is the
    same with or without a rim."""
    from scipy import ndimage as ndi

    from pneumolens.train.insertion import insert_effusion_3d

    ph = phantom_3d
    lung = ph.lung_labels == 1
    mask = ndi.binary_erosion(lung, structure=ndi.generate_binary_structure(3, 1)[1:2])  # 1 voxel short in-plane
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    walled = np.where(lung & ~mask, 40, ph.volume)  # the same mask, no aerated rim
    no_rim = insert_effusion_3d(walled, mask, spacing=ph.spacing, rng=rng_a)
    short = insert_effusion_3d(ph.volume, mask, spacing=ph.spacing, rng=rng_b)
    assert not (no_rim.mask & ~mask).any()
    rim = short.mask & ~mask
    assert rim.any() and (ph.volume[rim] < -200).all()  # only aerated voxels outside the mask
    assert not (short.mask & ~lung).any()  # never beyond the real lung (the wall)
    assert short.volume_ml == pytest.approx(short.mask.sum() * np.prod(ph.spacing) / 1000)
    assert (short.hu[rim] > -60).all()  # fluid there
    assert rng_a.random() == rng_b.random()  # same draws after the effusion


def test_nodules_and_forced_kind(phantom_3d) -> None:
    from scipy import ndimage as ndi

    ph = make_chest_phantom(shape=(40, 160, 160), spacing=(5.0, 1.6, 1.6), seed=4, lesions=())
    lungs = ph.lung_labels > 0
    out = insert_lesions_3d(ph.volume, lungs, spacing=ph.spacing, rng=np.random.default_rng(1), pattern="nodules")
    assert out.pattern == "nodules" and 12 <= out.foci < 30
    assert set(np.unique(out.labels)) <= {0, 2}  # solid
    _, n = ndi.label(out.labels > 0)
    assert n >= 5
    ggo = insert_lesions_3d(ph.volume, lungs, spacing=ph.spacing, rng=np.random.default_rng(1), pattern="multifocal", kind="ggo")
    assert set(np.unique(ggo.labels)) <= {0, 1}
    with pytest.raises(ValueError, match="kind"):
        insert_lesions_3d(ph.volume, lungs, spacing=ph.spacing, rng=np.random.default_rng(1), kind="tumour")


def test_reading_scenarios(phantom_3d) -> None:
    from pneumolens.train.insertion import SCENARIOS, insert_scenario_3d

    ph = phantom_3d
    both = insert_scenario_3d(ph.volume, ph.lung_labels, spacing=ph.spacing, rng=np.random.default_rng(0),
                              scenario="bilateral_peripheral_ggo")
    assert all(((both.labels == 1) & (ph.lung_labels == s)).any() for s in (1, 2)) and not (both.labels == 2).any()
    lobar = insert_scenario_3d(ph.volume, ph.lung_labels, spacing=ph.spacing, rng=np.random.default_rng(0),
                               scenario="lobar_consolidation_effusion")
    assert lobar.effusion_ml > 0 and not (lobar.labels[lobar.effusion]).any()
    assert not ((lobar.labels > 0) & (ph.lung_labels != lobar.side)).any()  # one side only
    assert set(SCENARIOS.values()) == {"typical", "atypical"}
    with pytest.raises(ValueError):
        insert_scenario_3d(ph.volume, ph.lung_labels, spacing=ph.spacing, rng=np.random.default_rng(0), scenario="x")
