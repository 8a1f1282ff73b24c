"""Lobes (model, external maps) and zones on phantoms; the shipped lobe model on real lobe maps."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pneumolens.anatomy.lobe_grid import GRID_SHAPE, lung_input
from pneumolens.anatomy.lobes import (
    CONVENTIONS,
    LOBE_NAMES,
    external_lobes,
    keep_largest_components,
    labels_from_probabilities,
    lung_zones,
    predict_lobes,
    read_label_map,
    smooth_probabilities,
)
from pneumolens.errors import InputError
from pneumolens.export.nifti import write_mask_nifti
from pneumolens.io.scan import scan_from_array
from pneumolens.masks import LEFT_LUNG, RIGHT_LUNG
from pneumolens.synthetic import make_chest_phantom


@functools.lru_cache(maxsize=1)
def _phantom():
    phantom = make_chest_phantom((60, 96, 96), (4.0, 3.0, 3.0), seed=2, lesions=())
    scan = scan_from_array(phantom.volume, phantom.spacing, origin_lps=(-150.0, -140.0, -300.0))
    return phantom, scan


def _plane_lobes(lungs: np.ndarray) -> np.ndarray:
    """Toy lobes: right lung cut in 3 along z, left in 2 (pneumolens labels)."""
    out = np.zeros(lungs.shape, dtype=np.uint8)
    z = np.arange(lungs.shape[0])[:, None, None]
    for side, labels in ((RIGHT_LUNG, (3, 2, 1)), (LEFT_LUNG, (5, 4))):
        zs = np.flatnonzero((lungs == side).any(axis=(1, 2)))
        edges = np.linspace(zs[0], zs[-1] + 1, len(labels) + 1)
        for lab, lo, hi in zip(labels, edges[:-1], edges[1:]):
            out[(lungs == side) & (z >= lo) & (z < hi)] = lab
    return out


# ----------------------------------------------------------------------------- zones
def test_zones_are_thirds_of_each_lung_by_volume():
    phantom, _ = _phantom()
    zones = lung_zones(phantom.lung_labels)
    assert zones.kind == "zones" and set(zones.names) == {1, 2, 3, 4, 5, 6}
    assert np.array_equal(zones.labels > 0, phantom.lung_labels > 0)
    for side, first in ((RIGHT_LUNG, 1), (LEFT_LUNG, 4)):
        n = int((phantom.lung_labels == side).sum())
        counts = [int((zones.labels == first + k).sum()) for k in range(3)]
        assert max(counts) - min(counts) <= 1 and sum(counts) == n
        z = np.arange(zones.labels.shape[0])[:, None, None] * np.ones_like(zones.labels)
        means = [z[zones.labels == first + k].mean() for k in range(3)]
        assert means[0] > means[1] > means[2]  # upper zone superior (z increases superiorly)
        assert np.all(zones.labels[phantom.lung_labels == side] >= first)
        assert np.all(zones.labels[phantom.lung_labels == side] <= first + 2)


# ----------------------------------------------------------------------------- external maps
@pytest.mark.parametrize("convention", ["pneumolens", "lungmask", "totalsegmentator", "totalsegmentator_v1"])
def test_external_map_in_each_convention_is_read_back(tmp_path, convention):
    phantom, scan = _phantom()
    lobes = _plane_lobes(phantom.lung_labels)
    inverse = {lobe: value for value, lobe in CONVENTIONS[convention].items()}
    raw = np.vectorize(lambda v: inverse.get(int(v), 0), otypes=[np.uint8])(lobes)
    path = write_mask_nifti(raw, scan.affine, tmp_path / "lobes.nii.gz")
    result, _ = external_lobes(path, phantom.lung_labels, scan.affine, convention="auto")
    assert np.array_equal(result.labels, lobes)
    assert result.method.startswith("external:") and result.kind == "lobes"
    # lungmask's 1-5 and ours overlap in values: auto must pick the one that fits the lungs.
    assert result.method.split(":")[1] == convention


def test_external_map_gaps_take_the_nearest_lobe_of_the_same_lung(tmp_path):
    phantom, scan = _phantom()
    lobes = _plane_lobes(phantom.lung_labels)
    holed = lobes.copy()
    holed[:, :, 40:44] = 0  # a gap of 12 mm across the right lung
    path = write_mask_nifti(holed, scan.affine, tmp_path / "lobes.nii.gz")
    result, _ = external_lobes(path, phantom.lung_labels, scan.affine, convention="pneumolens")
    assert np.array_equal(result.labels > 0, phantom.lung_labels > 0)
    right = phantom.lung_labels == RIGHT_LUNG
    assert set(np.unique(result.labels[right]).tolist()) <= {1, 2, 3}
    assert (result.labels == lobes).mean() > 0.99


def test_read_label_map_returns_the_canonical_array_and_affine(tmp_path):
    phantom, scan = _phantom()
    lobes = _plane_lobes(phantom.lung_labels)
    back, affine = read_label_map(write_mask_nifti(lobes, scan.affine, tmp_path / "x.nii.gz"))
    assert np.array_equal(back, lobes)
    assert np.allclose(affine, scan.affine, atol=1e-4)


def _bad(tmp_path, name, array, affine, **kw):
    path = write_mask_nifti(array, affine, tmp_path / name)
    phantom, _ = _phantom()
    with pytest.raises(InputError) as exc:
        external_lobes(path, phantom.lung_labels, _phantom()[1].affine, **kw)
    return str(exc.value)


def test_bad_external_maps_are_input_errors(tmp_path):
    phantom, scan = _phantom()
    lobes = _plane_lobes(phantom.lung_labels)
    # wrong grid
    msg = _bad(tmp_path, "crop.nii.gz", lobes[:, :, :-4], scan.affine)
    assert "grid" in msg and "What to do" in msg
    # same grid, shifted 10 mm in patient space
    moved = scan.affine.copy()
    moved[0, 3] += 10.0
    assert "away from the scan" in _bad(tmp_path, "moved.nii.gz", lobes, moved)
    # left and right swapped (mirrored map)
    assert "lies in the" in _bad(tmp_path, "mirror.nii.gz", lobes[:, :, ::-1].copy(), scan.affine,
                                 convention="pneumolens")
    # a lobe missing
    assert "absent" in _bad(tmp_path, "four.nii.gz", np.where(lobes == 2, 3, lobes).astype(np.uint8), scan.affine)
    # a map of something else (a lung mask, labels 1-2 only)
    assert "does not match" in _bad(tmp_path, "lungs.nii.gz", phantom.lung_labels, scan.affine)
    # a map covering a small part of the lungs
    part = np.where(np.arange(lobes.shape[1])[None, :, None] % 4 < 2, lobes, 0).astype(np.uint8)  # half the rows
    assert "cover" in _bad(tmp_path, "part.nii.gz", part, scan.affine, convention="pneumolens")
    # unknown convention
    assert "unknown" in _bad(tmp_path, "conv.nii.gz", lobes, scan.affine, convention="nnunet")


def test_non_label_files_are_input_errors(tmp_path):
    phantom, scan = _phantom()
    probs = (phantom.lung_labels > 0).astype(np.float32) * 0.5
    assert "non-integer" in _bad(tmp_path, "prob.nii.gz", probs, scan.affine)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not a nifti file at all")
    with pytest.raises(InputError):
        external_lobes(junk, phantom.lung_labels, scan.affine)
    with pytest.raises(InputError):
        external_lobes(tmp_path / "absent.nii.gz", phantom.lung_labels, scan.affine)


# ----------------------------------------------------------------------------- lobe model
def test_lung_input_is_centred_and_keeps_volume():
    phantom, _ = _phantom()
    right, left = phantom.lung_labels == RIGHT_LUNG, phantom.lung_labels == LEFT_LUNG
    x, _ = lung_input(right, left, phantom.spacing)
    assert x.shape == (2,) + GRID_SHAPE
    voxel_ml = float(np.prod(phantom.spacing)) / 1000
    for channel, mask in zip(x, (right, left)):
        assert channel.sum() * 0.125 == pytest.approx(mask.sum() * voxel_ml, rel=0.03)
    # Right lung on the low-x side of the grid (canonical x runs patient right -> left).
    xs = np.arange(GRID_SHAPE[2])
    assert (x[0].sum(axis=(0, 1)) * xs).sum() / x[0].sum() < (x[1].sum(axis=(0, 1)) * xs).sum() / x[1].sum()


def test_lung_input_offset_moves_the_grid_by_that_many_millimetres():
    phantom, _ = _phantom()
    right, left = phantom.lung_labels == RIGHT_LUNG, phantom.lung_labels == LEFT_LUNG
    x, centre = lung_input(right, left, phantom.spacing)
    moved, moved_centre = lung_input(right, left, phantom.spacing, offset_mm=(0.0, 0.0, 5.0))
    assert np.allclose(moved_centre - centre, (0.0, 0.0, 5.0))
    # One 5 mm grid voxel along x: the moved grid's voxel k sees what voxel k + 1 saw.
    assert np.allclose(moved[..., :-1], x[..., 1:], atol=1e-5)


def _two_lobe_probabilities(shape=(12, 10, 10)) -> np.ndarray:
    """``(5, *shape)`` probabilities: right lung RUL above z = 6, RLL below, RML nowhere; left LUL/LLL alike."""
    p = np.zeros((5,) + shape, dtype=np.float32)
    upper = (np.arange(shape[0]) >= 6)[:, None, None] * np.ones(shape, dtype=bool)
    p[0], p[1], p[2] = np.where(upper, 0.8, 0.1), 0.1, np.where(upper, 0.1, 0.8)
    p[3], p[4] = np.where(upper, 0.9, 0.1), np.where(upper, 0.1, 0.9)
    return p


def test_keep_largest_components_gives_islands_to_the_most_probable_touching_lobe():
    p = _two_lobe_probabilities()
    lung = np.ones(p.shape[1:], dtype=bool)
    lung[:, :, 8:] = False
    lung[0:2, 0:2, 9] = True  # a separate little piece of lung beyond a gap
    labels = np.where(p[0] > p[2], 1, 3).astype(np.uint8)
    labels[2:4, 2:4, 2:4] = 1  # an RUL island inside the RLL
    labels[6, 5, 5] = 2  # an RML speck at the RUL/RLL border, where RLL is the more probable
    p[2][6, 5, 5], p[0][6, 5, 5] = 0.6, 0.3
    labels[9:11, 2:4, 2:4] = 2  # the RML's largest piece, inside the RUL: kept
    labels[0:2, 0:2, 9] = 1  # an RUL piece alone in the separate bit of lung, touching no other lobe: kept
    out = keep_largest_components(labels, lung, p, (1, 2, 3), connectivity=6)
    assert np.all(out[2:4, 2:4, 2:4] == 3)
    assert out[6, 5, 5] == 3
    assert np.all(out[9:11, 2:4, 2:4] == 2)
    assert np.all(out[0:2, 0:2, 9] == 1)
    assert np.array_equal(out[~lung], labels[~lung])
    assert labels[2, 2, 2] == 1  # input not modified


def test_largest_component_cleanup_leaves_one_piece_per_lobe():
    from scipy import ndimage

    p = _two_lobe_probabilities((20, 16, 24))
    p[0][3:5, 4:6, 4:6], p[2][3:5, 4:6, 4:6] = 0.85, 0.05  # a small RUL-probable island low in the right lung
    lungs = np.zeros(p.shape[1:], dtype=np.uint8)
    lungs[:, 2:14, 2:11], lungs[:, 2:14, 13:22] = RIGHT_LUNG, LEFT_LUNG
    centre = np.array([(n - 1) / 2.0 * 5.0 for n in p.shape[1:]])
    grid = np.zeros((5,) + GRID_SHAPE, dtype=np.float32)
    sl = tuple(slice((g - n) // 2, (g - n) // 2 + n) for g, n in zip(GRID_SHAPE, p.shape[1:]))
    grid[(slice(None),) + sl] = p
    grid[(slice(0, 3),)] += (grid[0:3].sum(axis=0) == 0) / 3.0
    grid[(slice(3, 5),)] += (grid[3:5].sum(axis=0) == 0) / 2.0
    plain, _ = labels_from_probabilities(grid, centre, lungs, (5.0, 5.0, 5.0))
    cleaned, confidence = labels_from_probabilities(grid, centre, lungs, (5.0, 5.0, 5.0), cleanup="6")
    assert ndimage.label(plain == 1)[1] == 2
    for lobe in (1, 3, 4, 5):
        assert ndimage.label(cleaned == lobe)[1] == 1
    assert np.all(cleaned[3:5, 4:6, 4:6] == 3)
    assert np.array_equal(cleaned > 0, lungs > 0)
    assert all(0.0 < c <= 1.0 for c in confidence.values() if np.isfinite(c))


def test_smoothing_keeps_each_lung_a_partition_of_unity():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(5, 8, 9, 10)).astype(np.float32)
    from pneumolens.anatomy.lobes import side_softmax

    prob = side_softmax(logits)
    smooth = smooth_probabilities(prob, 10.0)
    assert np.allclose(smooth[0:3].sum(axis=0), 1.0, atol=1e-5)
    assert np.allclose(smooth[3:5].sum(axis=0), 1.0, atol=1e-5)
    assert smooth.std() < prob.std()
    assert smooth_probabilities(prob, 0.0) is prob


def test_model_lobes_partition_each_lung():
    phantom, _ = _phantom()
    result, _ = predict_lobes(phantom.lung_labels, phantom.spacing)
    labels = result.labels
    assert labels.dtype == np.uint8 and labels.shape == phantom.lung_labels.shape
    assert np.array_equal(labels > 0, phantom.lung_labels > 0)
    assert set(np.unique(labels[phantom.lung_labels == RIGHT_LUNG]).tolist()) <= {1, 2, 3}
    assert set(np.unique(labels[phantom.lung_labels == LEFT_LUNG]).tolist()) <= {4, 5}
    assert set(np.unique(labels).tolist()) == {0, 1, 2, 3, 4, 5}
    z = np.arange(labels.shape[0])[:, None, None] * np.ones_like(labels)
    assert z[labels == 1].mean() > z[labels == 3].mean() and z[labels == 4].mean() > z[labels == 5].mean()
    assert set(result.confidence) == set(LOBE_NAMES.values())
    assert all(0.0 < c <= 1.0 for c in result.confidence.values())
    assert result.method.startswith("model:")


def test_model_needs_both_lungs():
    phantom, _ = _phantom()
    with pytest.raises(InputError, match="left lung is missing"):
        predict_lobes(np.where(phantom.lung_labels == RIGHT_LUNG, 1, 0).astype(np.uint8), phantom.spacing)


@pytest.mark.realdata
def test_model_on_held_out_real_lobe_maps(shared_data):
    """Three held-out maps of the fixed split: mean Dice over lobes well above chance (card: full numbers)."""
    from pneumolens.train.lobes import split_cases

    root = shared_data / "lobe_label_maps" / "maps"
    cases = split_cases([p.name.split(".")[0] for p in root.glob("*.nii.gz")])["test"][:3]
    for case in cases:
        truth, affine = read_label_map(root / f"{case}.nii.gz")
        lungs = np.where((truth >= 1) & (truth <= 3), 1, np.where(truth >= 4, 2, 0)).astype(np.uint8)
        result, _ = predict_lobes(lungs, tuple(np.linalg.norm(affine[:3, :3], axis=0)))
        dices = []
        for lab in LOBE_NAMES:
            a, b = result.labels == lab, truth == lab
            dices.append(2 * (a & b).sum() / (a.sum() + b.sum()))
        assert np.mean(dices) > 0.8, (case, dices)


def test_lobe_and_lesion_weights_are_not_interchangeable():
    from pneumolens import models
    from pneumolens.errors import ModelError

    with pytest.raises(ModelError, match="kind"):
        models.load("lobes_unet3d")  # fed as CT slices
    with pytest.raises(ModelError, match="kind"):
        models.load(models.LESION_MODEL, kind="lung_mask_grid")
