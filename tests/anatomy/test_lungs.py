"""Lung segmentation on phantoms (known truth) and on the real volumes of ../shared/data."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from pneumolens.anatomy import segment_lungs
from pneumolens.errors import InputError
from pneumolens.masks import CONSOLIDATION, LEFT_LUNG, RIGHT_LUNG
from pneumolens.synthetic import (
    SLICE_GRIDS,
    make_abdomen_phantom,
    make_chest_phantom,
    make_head_phantom,
)
from pneumolens.validate.segmentation import dice

GRIDS = SLICE_GRIDS



@pytest.fixture(scope="module", params=list(GRIDS))
def case(request):
    shape, spacing = GRIDS[request.param]
    phantom = make_chest_phantom(shape, spacing, seed=1)
    return phantom, segment_lungs(phantom.volume, phantom.spacing)


def test_left_and_right_lungs_match_truth(case):
    phantom, lungs = case
    assert lungs.labels.shape == phantom.volume.shape and lungs.labels.dtype == np.uint8
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        assert dice(lungs.labels == lab, phantom.lung_labels == lab) > 0.95


def test_pleural_lesion_stays_inside_the_lung(case):
    phantom, lungs = case
    pleural = (phantom.lesion_labels == CONSOLIDATION) & (phantom.lung_labels == LEFT_LUNG)
    assert pleural.sum() > 0
    assert lungs.left[pleural].mean() > 0.9
    assert (lungs.union[phantom.lesion_labels > 0]).mean() > 0.9


def test_a_plain_threshold_loses_the_pleural_lesion(case):
    # The failure the hull step exists for: without it the lesion would be outside the lung.
    phantom, _ = case
    pleural = (phantom.lesion_labels == CONSOLIDATION) & (phantom.lung_labels == LEFT_LUNG)
    assert (phantom.volume[pleural] < -500).mean() < 0.2


def test_trachea_and_main_bronchi_are_excluded(case):
    phantom, lungs = case
    assert lungs.union[phantom.airways].mean() < 0.05
    assert lungs.airways[phantom.airways].mean() > 0.8
    assert not (lungs.airways & lungs.union).any()


def test_heart_is_not_swallowed():
    phantom = make_chest_phantom(*GRIDS["2.5mm"], lesions=("pleural",))
    lungs = segment_lungs(phantom.volume, phantom.spacing)
    body_not_lung = (phantom.lung_labels == 0) & (phantom.volume > -500) & ~phantom.airways
    assert lungs.union[body_not_lung].sum() * phantom.voxel_ml < 10.0


def test_touching_lungs_are_split():
    phantom = make_chest_phantom(*GRIDS["2.5mm"], lesions=())
    volume = phantom.volume.copy()
    # An anterior junction: a 6 mm bridge of lung tissue between the lungs over 30 mm of height.
    ys, _xs = np.nonzero((phantom.lung_labels == RIGHT_LUNG).any(axis=0))
    y = int(np.percentile(ys, 30))
    volume[28:40, y : y + 4, 40:90] = -850
    lungs = segment_lungs(volume, phantom.spacing)
    for lab in (RIGHT_LUNG, LEFT_LUNG):
        assert dice(lungs.labels == lab, phantom.lung_labels == lab) > 0.9


def test_input_is_not_modified():
    phantom = make_chest_phantom((40, 96, 96), (5.0, 2.0, 2.0))
    before = phantom.volume.copy()
    segment_lungs(phantom.volume, phantom.spacing)
    np.testing.assert_array_equal(phantom.volume, before)


@pytest.mark.parametrize("make", [make_head_phantom, make_abdomen_phantom])
def test_no_lungs_is_an_input_error(make):
    phantom = make()
    with pytest.raises(InputError, match="No lungs found in this series: is it a chest CT"):
        segment_lungs(phantom.volume, phantom.spacing)


@pytest.mark.parametrize("hu", [-1000, 40])
def test_blank_volumes_have_no_lungs(hu):
    with pytest.raises(InputError, match="No lungs found"):
        segment_lungs(np.full((20, 64, 64), hu, np.int16), (5.0, 3.0, 3.0))


@pytest.mark.parametrize("gone", [RIGHT_LUNG, LEFT_LUNG])
def test_a_single_lung_gets_the_right_side(gone):
    # The other lung fully collapsed (or removed): soft tissue where it was.
    phantom = make_chest_phantom(*GRIDS["5mm"], lesions=())
    volume = phantom.volume.copy()
    volume[phantom.lung_labels == gone] = 40
    lungs = segment_lungs(volume, phantom.spacing)
    kept = LEFT_LUNG + RIGHT_LUNG - gone
    assert dice(lungs.labels == kept, phantom.lung_labels == kept) > 0.95
    assert not (lungs.labels == gone).any()


@pytest.mark.parametrize("volume, spacing, message", [
    (np.zeros((64, 64), np.int16), (1.0, 1.0, 1.0), "must be 3D"),
    (np.zeros((8, 64, 64), np.int16), (1.0, 0.0, 1.0), "three positive mm values"),
])
def test_bad_arrays_are_refused(volume, spacing, message):
    with pytest.raises(ValueError, match=message):
        segment_lungs(volume, spacing)


# ---------------------------------------------------------------- real data (../shared/data)
REAL = {
    "lung1": "chest_ct_volumes/lung1_image.nrrd",
    "lung2": "chest_ct_volumes/lung2_image.nrrd",
    "cip": "cip_10002K_ct64_fissure_atlas/ct-64.nrrd",
    "p002": "covid_ct_md_P002/dicom",
}


@functools.lru_cache(maxsize=2)
def _load_and_segment(path):
    from pneumolens.io import load_scan

    scan = load_scan(path)
    return scan, segment_lungs(scan.volume, scan.spacing)


@pytest.mark.realdata
@pytest.mark.parametrize("name", list(REAL))
def test_real_volumes_give_two_plausible_lungs(shared_data, name):
    scan, lungs = _load_and_segment(shared_data / REAL[name])
    ml = float(np.prod(scan.spacing)) / 1000.0
    right, left = lungs.right.sum() * ml, lungs.left.sum() * ml
    assert 800 < right < 4000 and 600 < left < 4000
    # The right lung lies on the patient's right (small x), and is the larger one.
    xs = np.arange(scan.shape[2])
    assert xs[lungs.right.any(axis=(0, 1))].mean() < xs[lungs.left.any(axis=(0, 1))].mean()
    assert right > left * 0.9
    # The lungs are air, and the mask holds most of the air inside the chest.
    assert np.median(scan.volume[lungs.union]) < -750


@pytest.mark.realdata
def test_real_lungs_match_the_cip_reference_masks(shared_data):
    import SimpleITK as sitk

    folder = shared_data / "cip_10002K_ct64_fissure_atlas"
    image = sitk.ReadImage(str(folder / "ct-64.nrrd"))
    reference = sitk.ReadImage(str(folder / "10002K_INSP_STD_BWH_COPD_leftLungRightLung.nrrd"))
    reference = sitk.GetArrayFromImage(
        sitk.Resample(reference, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    )
    # Both files are LPS with identity directions, so the arrays are already [z, y, x] canonical.
    assert image.GetDirection() == (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    volume = sitk.GetArrayFromImage(image).astype(np.int16)
    lungs = segment_lungs(volume, image.GetSpacing()[::-1])
    assert dice(lungs.right, reference == 2) > 0.95  # CIP: 2 RightLung, 3 LeftLung
    assert dice(lungs.left, reference == 3) > 0.95


@pytest.mark.realdata
def test_covid_opacities_stay_in_the_left_lung(shared_data):
    import pandas as pd

    scan, lungs = _load_and_segment(shared_data / REAL["p002"])
    table = pd.read_csv(shared_data / "covid_ct_md_P002" / "labels.csv").set_index("file")
    lll = np.array([bool(table.loc[f, "LLL"]) for f in scan.info.source_files])
    left, right = scan.volume[lll][lungs.labels[lll] == LEFT_LUNG], scan.volume[lll][lungs.labels[lll] == RIGHT_LUNG]
    # On the slices with left-lower-lobe disease the left lung mask holds the opacities: it is
    # denser than the healthy right lung. A threshold mask would have left them out.
    assert left.mean() > right.mean() + 40
    assert (left > -500).mean() > 1.5 * (right > -500).mean()


@pytest.mark.realdata
def test_real_thin_slab_matches_the_cip_lobe_labels(shared_data):
    import SimpleITK as sitk

    from pneumolens.io import load_scan

    folder = shared_data / "cip_copdgene16021S_lobe_slab"
    scan = load_scan(folder / "crop_ct_2slices.nrrd")  # 2 slices, 1 mm: far below min_lung_ml
    lungs = segment_lungs(scan.volume, scan.spacing)
    lobes = sitk.GetArrayFromImage(sitk.ReadImage(str(folder / "lobes_2slices.nii.gz")))
    assert lobes.shape == lungs.labels.shape  # same LPS grid, identity directions
    assert dice(lungs.right, (lobes >= 1) & (lobes <= 3)) > 0.95  # 1 RUL 2 RML 3 RLL
    assert dice(lungs.left, lobes >= 4) > 0.95  # 4 LUL 5 LLL


@pytest.mark.realdata
def test_real_upper_abdomen_series_has_no_lungs(shared_data):
    from pneumolens.io import load_scan

    scan = load_scan(shared_data / "dicom_samples" / "siemens_20slice_series")  # liver, stomach
    with pytest.raises(InputError, match="No lungs found in this series"):
        segment_lungs(scan.volume, scan.spacing)
