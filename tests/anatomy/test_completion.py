"""Lung completion: dense lesion the lung mask lost is given back to the lungs, before the lesion
masks are taken inside them (the anatomy step ``pipeline.analyze`` runs after the lesion evidence)."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens import models
from pneumolens.anatomy import complete_lungs
from pneumolens.lesions.model import predict_lesions_model
from pneumolens.masks import LungMasks
from pneumolens.synthetic import make_chest_phantom


@pytest.fixture(scope="module")
def model() -> models.Model:
    return models.load(models.LESION_MODEL, threads=2)


def _completed(volume, spacing, lungs, model):
    """(lesions without completion, lesions after completion, completed lungs)."""
    evidence = predict_lesions_model(volume, spacing, lungs, weights=model)
    final = complete_lungs(lungs, volume, spacing, dense_lesion=evidence.outside(lungs))
    return evidence.within(lungs, spacing), evidence.within(final, spacing), final


@pytest.mark.realdata
def test_lobar_consolidation_in_real_ct_survives_the_lung_mask(model, shared_data) -> None:
    """3D lobar consolidation inserted into a real CT: the classical lung mask of the lesioned
    scan loses most of it, lung completion adds it back (measured on lung1, seed 0: 0.90 vs 0.51)."""
    from pneumolens.anatomy import segment_lungs
    from pneumolens.io import load_scan
    from pneumolens.train.insertion import insert_lesions_3d
    from pneumolens.validate.segmentation import dice

    scan = load_scan(shared_data / "chest_ct_volumes" / "lung1_image.nrrd")
    volume, spacing = scan.volume, scan.spacing
    clean = segment_lungs(volume, spacing)
    ins = insert_lesions_3d(volume, clean.union, spacing=spacing, rng=np.random.default_rng(0), pattern="lobar")
    lesioned = np.round(ins.hu).astype(np.int16)
    lungs = segment_lungs(lesioned, spacing)
    truth = ins.labels > 0
    plain, completed, _ = _completed(lesioned, spacing, lungs, model)
    assert dice(completed.labels > 0, truth) >= 0.8
    assert dice(completed.labels > 0, truth) >= dice(plain.labels > 0, truth) + 0.2


def test_consolidation_the_lung_mask_lost_is_added_back(model) -> None:
    """Lobar consolidation cut out of the lung mask (as a threshold lung mask does against the
    chest wall) is found again and added to the lungs (measured: Dice 0.65 vs 0.0)."""
    from pneumolens.train.insertion import insert_lesions_3d
    from pneumolens.validate.segmentation import dice

    ph = make_chest_phantom(shape=(24, 128, 128), spacing=(5.0, 2.6, 2.6), seed=4, lesions=())
    ins = insert_lesions_3d(ph.volume, ph.lung_labels > 0, spacing=ph.spacing, rng=np.random.default_rng(1), pattern="lobar")
    lost = ins.labels == 2
    assert lost.sum() > 3000
    cut = LungMasks(labels=np.where(lost, 0, ph.lung_labels).astype(np.uint8), airways=ph.airways)
    volume = np.round(ins.hu).astype(np.int16)
    plain, completed, final = _completed(volume, ph.spacing, cut, model)
    assert dice(plain.labels > 0, ins.labels > 0) < 0.1
    assert dice(completed.labels > 0, ins.labels > 0) > 0.5
    added = final.union & ~cut.union
    assert added.any() and (added & lost).sum() >= 0.9 * added.sum(), "additions must be the lost lung"
    assert not completed.labels[~final.union].any()
    np.testing.assert_array_equal(final.labels[cut.union], cut.labels[cut.union])  # old lung keeps its label


def test_healthy_phantom_gets_no_lung_additions(model) -> None:
    ph = make_chest_phantom(shape=(24, 128, 128), spacing=(5.0, 2.6, 2.6), seed=4, lesions=())
    lungs = LungMasks(labels=ph.lung_labels, airways=ph.airways)
    evidence = predict_lesions_model(ph.volume, ph.spacing, lungs, weights=model)
    assert complete_lungs(lungs, ph.volume, ph.spacing, dense_lesion=evidence.outside(lungs)) is lungs


def test_small_thin_or_aerated_components_are_not_added() -> None:
    """The three rules on a box phantom: contact, volume and density decide."""
    shape = (10, 40, 40)
    lungs = np.zeros(shape, np.uint8)
    lungs[:, 5:35, 5:20] = 1
    volume = np.full(shape, -850, np.int16)
    dense = np.zeros(shape, bool)
    dense[:, 5:35, 20:25] = True  # a slab against the lung face: 1.5 mL, contact 10*30 voxels
    volume[dense] = 20
    masks = LungMasks(lungs, np.zeros(shape, bool))
    grown = complete_lungs(masks, volume, (1.0, 1.0, 1.0), dense_lesion=dense)
    assert (grown.union & dense).sum() == dense.sum()
    assert complete_lungs(masks, volume, (1.0, 1.0, 1.0), dense_lesion=dense, min_added_ml=10.0) is masks
    aerated = volume.copy()
    aerated[dense] = -600
    assert complete_lungs(masks, aerated, (1.0, 1.0, 1.0), dense_lesion=dense) is masks
    assert complete_lungs(masks, volume, (1.0, 1.0, 1.0), dense_lesion=None) is masks
