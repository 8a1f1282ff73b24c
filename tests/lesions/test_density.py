"""Density lesion segmentation: phantom truth, vessel suppression, the dispatcher, real data."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from pneumolens.anatomy import segment_lungs
from pneumolens.lesions import segment_lesions, segment_lesions_density
from pneumolens.masks import CONSOLIDATION, GGO, LesionEvidence, LungMasks
from pneumolens.synthetic import SLICE_GRIDS, make_chest_phantom
from pneumolens.validate.segmentation import dice

GRIDS = SLICE_GRIDS



@pytest.fixture(scope="module", params=list(GRIDS))
def case(request):
    shape, spacing = GRIDS[request.param]
    phantom = make_chest_phantom(shape, spacing, seed=2)
    lungs = segment_lungs(phantom.volume, phantom.spacing)
    return phantom, lungs, segment_lesions_density(phantom.volume, phantom.spacing, lungs)


def test_lesions_match_truth(case):
    phantom, _, lesions = case
    assert lesions.method == "density"
    assert dice(lesions.any, phantom.lesion_labels > 0) > 0.8
    assert dice(lesions.labels == GGO, phantom.lesion_labels == GGO) > 0.7
    assert dice(lesions.labels == CONSOLIDATION, phantom.lesion_labels == CONSOLIDATION) > 0.65


def test_ground_glass_and_consolidation_are_told_apart(case):
    phantom, _, lesions = case
    found = lesions.labels
    truth_ggo, truth_cons = phantom.lesion_labels == GGO, phantom.lesion_labels == CONSOLIDATION
    assert (found[truth_ggo] == GGO).sum() > 5 * (found[truth_ggo] == CONSOLIDATION).sum()
    assert (found[truth_cons] == CONSOLIDATION).sum() > 2 * (found[truth_cons] == GGO).sum()


def test_vessels_are_not_lesions(case):
    phantom, _, lesions = case
    assert phantom.vessels.sum() > 100
    assert lesions.any[phantom.vessels].mean() < 0.1


def test_lesions_only_inside_lungs_and_probability_is_consistent(case):
    _, lungs, lesions = case
    assert not (lesions.any & ~lungs.union).any()
    p = lesions.probability
    assert p.dtype == np.float32 and p.min() >= 0.0 and p.max() <= 1.0
    assert (p[~lungs.union] == 0).all()
    assert (p[lesions.any] >= 0.5).mean() > 0.95


@pytest.mark.parametrize("grid", list(GRIDS))
def test_normal_phantom_lungs_have_almost_no_lesion(grid):
    shape, spacing = GRIDS[grid]
    phantom = make_chest_phantom(shape, spacing, lesions=())
    lungs = segment_lungs(phantom.volume, phantom.spacing)
    lesions = segment_lesions_density(phantom.volume, phantom.spacing, lungs)
    assert lesions.any.sum() / lungs.union.sum() < 0.005


def test_small_component_cleanup_is_in_ml():
    phantom = make_chest_phantom(*GRIDS["2.5mm"], lesions=("ggo",))
    lungs = segment_lungs(phantom.volume, phantom.spacing)
    ml = phantom.voxel_ml
    every = segment_lesions_density(phantom.volume, phantom.spacing, lungs, min_lesion_ml=0.0)
    none = segment_lesions_density(phantom.volume, phantom.spacing, lungs, min_lesion_ml=1000.0)
    truth_ml = (phantom.lesion_labels > 0).sum() * ml
    assert every.any.sum() * ml > 0.7 * truth_ml
    assert not none.any.any()


def test_empty_lungs_give_empty_lesions():
    volume = np.full((8, 16, 16), -850, np.int16)
    empty = LungMasks(labels=np.zeros(volume.shape, np.uint8), airways=np.zeros(volume.shape, bool))
    lesions = segment_lesions_density(volume, (2.0, 1.0, 1.0), empty)
    assert not lesions.any.any() and not lesions.probability.any()


@pytest.mark.parametrize("kwargs, message", [
    ({"ggo_hu": (-300.0, -700.0)}, "low < high"),
    ({"consolidation_hu": (100.0, -300.0)}, "low < high"),
])
def test_bad_bands_are_refused(kwargs, message):
    volume = np.full((8, 16, 16), -850, np.int16)
    lungs = LungMasks(labels=np.ones(volume.shape, np.uint8), airways=np.zeros(volume.shape, bool))
    with pytest.raises(ValueError, match=message):
        segment_lesions_density(volume, (2.0, 1.0, 1.0), lungs, **kwargs)


def test_shape_mismatch_is_refused():
    lungs = LungMasks(labels=np.ones((8, 16, 16), np.uint8), airways=np.zeros((8, 16, 16), bool))
    with pytest.raises(ValueError, match="differ in shape"):
        segment_lesions_density(np.zeros((8, 16, 17), np.int16), (2.0, 1.0, 1.0), lungs)


# ---------------------------------------------------------------- dispatcher
def test_dispatcher_density_is_the_density_function():
    phantom = make_chest_phantom((40, 64, 64), (5.0, 3.0, 3.0))
    lungs = segment_lungs(phantom.volume, phantom.spacing)
    a = segment_lesions(phantom.volume, phantom.spacing, lungs, method="density", min_lesion_ml=0.2)
    b = segment_lesions_density(phantom.volume, phantom.spacing, lungs, min_lesion_ml=0.2)
    np.testing.assert_array_equal(a.labels, b.labels)


def test_dispatcher_loads_the_model_method_lazily(monkeypatch):
    calls = {}

    def fake(volume, spacing, lungs, *, weights=None):
        calls["weights"] = weights
        z = np.zeros(volume.shape, np.uint8)
        return LesionEvidence(labels=z, probability=z.astype(np.float32), method="model:fake")

    monkeypatch.setitem(sys.modules, "pneumolens.lesions.model",
                        types.SimpleNamespace(predict_lesions_model=fake))
    volume = np.zeros((4, 8, 8), np.int16)
    lungs = LungMasks(labels=np.zeros(volume.shape, np.uint8), airways=np.zeros(volume.shape, bool))
    out = segment_lesions(volume, (1.0, 1.0, 1.0), lungs, method="model", weights="w.onnx")
    assert out.method == "model:fake" and calls["weights"] == "w.onnx"


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "magic"}, "unknown lesion method 'magic'"),
    ({"method": "density", "weights": "w.onnx"}, "only used by method='model'"),
])
def test_dispatcher_refuses_bad_choices(kwargs, message):
    volume = np.zeros((4, 8, 8), np.int16)
    lungs = LungMasks(labels=np.zeros(volume.shape, np.uint8), airways=np.zeros(volume.shape, bool))
    with pytest.raises(ValueError, match=message):
        segment_lesions(volume, (1.0, 1.0, 1.0), lungs, **kwargs)


# ---------------------------------------------------------------- real data (../shared/data)
def _analyse(path):
    from pneumolens.io import load_scan

    scan = load_scan(path)
    lungs = segment_lungs(scan.volume, scan.spacing)
    return scan, lungs, segment_lesions_density(scan.volume, scan.spacing, lungs)


@pytest.mark.realdata
@pytest.mark.parametrize("name", ["lung1_image.nrrd", "lung2_image.nrrd"])
def test_normal_looking_real_lungs_have_low_lesion_volume(shared_data, name):
    _, lungs, lesions = _analyse(shared_data / "chest_ct_volumes" / name)
    # These carry one tumour/nodule each and no pneumonia.
    assert lesions.any.sum() / lungs.union.sum() < 0.015


@pytest.mark.realdata
def test_covid_lesions_are_on_the_slices_the_radiologists_marked(shared_data):
    import pandas as pd

    scan, lungs, lesions = _analyse(shared_data / "covid_ct_md_P002" / "dicom")
    table = pd.read_csv(shared_data / "covid_ct_md_P002" / "labels.csv").set_index("file")
    truth = np.array([bool(table.loc[f, "infection"]) for f in scan.info.source_files])
    per_slice_ml = lesions.any.sum(axis=(1, 2)) * float(np.prod(scan.spacing)) / 1000.0
    found = per_slice_ml > 0.1
    sensitivity = (found & truth).sum() / truth.sum()
    specificity = (~found & ~truth).sum() / (~truth).sum()
    assert sensitivity > 0.6 and specificity > 0.85
    # Only left lobes are involved.
    assert (lesions.any & lungs.left).sum() > 5 * (lesions.any & lungs.right).sum()
