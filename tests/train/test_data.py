"""Training data: splits never mix the held-out blocks, the test volume is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pneumolens.train import data as D


def test_test_volume_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="held-out test volume"):
        D.read_hu_volume(tmp_path / "covid_ct_md_P002" / "dicom")


@pytest.mark.realdata
def test_zenodo_split_is_contiguous_and_disjoint(shared_data: Path) -> None:
    train = D.zenodo_indices(shared_data, holdout=False)
    held = D.zenodo_indices(shared_data, holdout=True)
    assert train == list(range(D.ZENODO_HOLDOUT_START))
    assert held[0] == D.ZENODO_HOLDOUT_START and held == list(range(held[0], held[-1] + 1))
    assert len(train) + len(held) == 1614


@pytest.mark.realdata
def test_medseg_split_is_disjoint(shared_data: Path) -> None:
    train = D.medseg_names(shared_data, holdout=False)
    held = D.medseg_names(shared_data, holdout=True)
    assert not set(train) & set(held) and len(train) + len(held) == 50
    assert max(map(int, train)) < D.MEDSEG_HOLDOUT_FROM <= min(map(int, held))


@pytest.mark.realdata
def test_loaded_samples_have_matching_targets(shared_data: Path) -> None:
    z = D.load_zenodo(shared_data, [0, 1], 64)
    m = D.load_medseg(shared_data, D.medseg_names(shared_data, holdout=True, limit=2), 64)
    assert z.images.shape == (2, 64, 64) and set(z.kinds) == {D.BINARY}
    assert set(z.targets.ravel()) <= {0, 1} and z.targets.any()
    assert set(m.kinds) == {D.MULTICLASS} and set(m.targets.ravel()) <= {0, 1, 2}


def test_inserted_samples_carry_extents_and_diffuse_share() -> None:
    from pneumolens.synthetic import make_chest_phantom

    ph = make_chest_phantom(shape=(8, 128, 128), spacing=(10.0, 2.6, 2.6), seed=1, lesions=())
    kw = {"variants": 4, "negative_fraction": 0.0, "seed": 3}
    plain = D.inserted_samples([("ph", ph.volume.astype(np.float32), 2.6)], 64, **kw)
    diffuse = D.inserted_samples([("ph", ph.volume.astype(np.float32), 2.6)], 64, diffuse_fraction=1.0, **kw)
    assert len(plain) == len(diffuse) > 0 and np.isfinite(plain.extents).all()
    assert np.all((plain.extents >= 0) & (plain.extents <= 1))
    # All-diffuse variants cover far more of the lungs than the random focal patterns.
    assert np.median(diffuse.extents) > 0.3 > np.median(plain.extents)


def test_split_block_keeps_a_contiguous_validation_block_out_of_training() -> None:
    from pneumolens.train.data import split_block

    train, val = split_block(list(range(10)), (3, 6))
    assert val == [3, 4, 5] and train == [0, 1, 2, 6, 7, 8, 9]
    with pytest.raises(ValueError):
        split_block([1, 2], (5, 5))
