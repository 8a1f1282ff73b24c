"""Features on synthetic lungs with lesions placed by hand (known answers) and on a phantom."""

import math

import numpy as np
import pytest

from pneumolens.features import (
    FEATURE_NAMES,
    burden_features,
    compute_features,
    detect_effusion,
    distribution_features,
    lesion_components,
    lung_thirds,
    nodule_count,
    pattern_features,
    severity_score,
)
from pneumolens.masks import CONSOLIDATION, GGO

SPACING = (2.5, 1.5, 1.5)


def _lungs(shape=(60, 100, 120)):
    """Two box-shaped lungs (1 right at small x, 2 left) in a soft-tissue body."""
    lungs = np.zeros(shape, np.uint8)
    lungs[5:55, 20:80, 10:50] = 1
    lungs[5:55, 20:80, 70:110] = 2
    volume = np.full(shape, 40, np.int16)
    volume[lungs > 0] = -850
    return volume, lungs


def _ball(shape, centre, radius_vox):
    zz, yy, xx = np.ogrid[: shape[0], : shape[1], : shape[2]]
    return ((zz - centre[0]) / radius_vox[0]) ** 2 + ((yy - centre[1]) / radius_vox[1]) ** 2 + (
        (xx - centre[2]) / radius_vox[2]
    ) ** 2 <= 1


def test_severity_score_follows_pan_et_al():
    assert [severity_score(p) for p in (0, 1, 5, 6, 25, 30, 50, 60, 75, 80)] == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
    assert severity_score(float("nan")) == 0


def test_lung_thirds_split_each_lung_by_volume():
    _, lungs = _lungs()
    thirds = lung_thirds(lungs)
    for side in (1, 2):
        counts = [np.count_nonzero((lungs == side) & (thirds == t)) for t in (1, 2, 3)]
        assert max(counts) - min(counts) <= np.count_nonzero(lungs[5] == side)  # within one slice
    assert thirds[6][lungs[6] > 0].min() == 1 and thirds[54][lungs[54] > 0].max() == 3


def test_burden_and_shares():
    _volume, lungs = _lungs()
    lesions = np.zeros_like(lungs)
    lesions[10:20, 30:50, 15:30] = GGO  # right lung, lower third
    lesions[10:14, 30:50, 15:30] = CONSOLIDATION
    b = burden_features(lungs, lesions, SPACING)
    voxel_ml = np.prod(SPACING) / 1000
    assert b.lesion_ml == pytest.approx(10 * 20 * 15 * voxel_ml)
    assert b.consolidation_share == pytest.approx(0.4)
    assert b.left_percent == 0 and b.right_percent > 0
    assert b.worst_region == "right_lower"
    assert b.regions["right_lower"]["score"] == severity_score(b.regions["right_lower"]["lesion_percent"])
    empty = burden_features(lungs, np.zeros_like(lungs), SPACING)
    assert math.isnan(empty.ggo_share) and empty.worst_region is None


def test_peripheral_vs_central_and_bilateral():
    _volume, lungs = _lungs()
    shape = lungs.shape
    peripheral = np.zeros_like(lungs)
    for x in (12, 108):  # against the lateral (costal) walls of both lungs
        peripheral[_ball(shape, (30, 50, x), (3, 9, 4)) & (lungs > 0)] = GGO
    central = np.zeros_like(lungs)
    central[_ball(shape, (30, 50, 30), (3, 6, 6))] = GGO  # middle of the right lung
    d_per = distribution_features(lungs, peripheral, SPACING)
    d_cen = distribution_features(lungs, central, SPACING)
    assert d_per.bilateral and not d_cen.bilateral
    assert d_per.peripheral_share > 0.9 and d_per.peripheral_predominant
    assert d_cen.peripheral_share < 0.2 and not d_cen.peripheral_predominant
    assert d_per.components == 2 and d_cen.components == 1


def test_lower_zone_and_posterior_predominance():
    _volume, lungs = _lungs()
    lesions = np.zeros_like(lungs)
    lesions[6:20, 60:79, 12:48] = GGO  # low and dorsal (large y) in the right lung
    d = distribution_features(lungs, lesions, SPACING)
    assert d.lower_zone_share > 0.9 and d.lower_zone_predominant
    assert d.posterior_share > 0.9 and d.posterior_predominant
    lesions = np.zeros_like(lungs)
    lesions[40:54, 21:40, 12:48] = GGO  # high and ventral
    d = distribution_features(lungs, lesions, SPACING)
    assert not d.lower_zone_predominant and not d.posterior_predominant


def test_nodules_are_small_round_solid_components():
    volume, lungs = _lungs()
    shape = lungs.shape
    lesions = np.zeros_like(lungs)
    rng = np.random.default_rng(0)
    for _ in range(8):
        c = (rng.integers(10, 50), rng.integers(30, 70), rng.choice([rng.integers(15, 45), rng.integers(75, 105)]))
        ball = _ball(shape, c, (1.6, 3, 3))
        lesions[ball] = CONSOLIDATION
        volume[ball] = 20
    lesions[40:42, 25:75, 30:32] = CONSOLIDATION  # a long band: not a nodule
    volume[40:42, 25:75, 30:32] = 20
    labels, sizes = lesion_components(lesions > 0, SPACING)
    count, share = nodule_count(labels, sizes, SPACING)
    assert 6 <= count <= 8 and 0 < share < 1
    f = compute_features(volume, lungs, lesions, SPACING)
    assert f.pattern.nodular and f.pattern.nodule_count >= 6
    faint = np.where(lesions > 0, -600, volume).astype(np.int16)  # same shapes, ground-glass density
    assert compute_features(faint, lungs, lesions, SPACING).pattern.nodule_count == 0


def test_blobs_along_an_effusion_are_not_nodules():
    """Compressed lung on the surface of a pleural effusion (passive atelectasis) is not a nodule."""
    volume, lungs = _lungs()
    lesions = np.zeros_like(lungs)
    centres = [(c, 70, 30) for c in (12, 20, 28, 36, 44)] + [(20, 40, 90), (35, 40, 90)]
    for c in centres:
        ball = _ball(lungs.shape, c, (1.6, 3, 3))
        lesions[ball] = CONSOLIDATION
        volume[ball] = 20
    labels, sizes = lesion_components(lesions > 0, SPACING)
    assert nodule_count(labels, sizes, SPACING)[0] == 7
    effusion = np.zeros(lungs.shape, bool)
    effusion[5:55, 76:80, 10:50] = True  # a fluid layer 3 mm behind the first five blobs
    assert pattern_features(volume, lungs, lesions, SPACING).nodule_count == 7
    assert pattern_features(volume, lungs, lesions, SPACING, effusion=effusion).nodule_count == 2


def test_lobar_consolidation_and_air_bronchograms():
    volume, lungs = _lungs()
    lesions = np.zeros_like(lungs)
    lesions[5:22, 45:80, 10:50] = CONSOLIDATION  # the dorsal lower right lung, confluent
    volume[lesions > 0] = 30
    volume[8:20, 60, 20:40] = -900  # an air-filled bronchus inside it
    f = compute_features(volume, lungs, lesions, SPACING)
    assert f.pattern.lobar and f.pattern.lobar_fraction > 0.3
    assert f.pattern.air_bronchograms and f.pattern.air_bronchogram_ml > 0.1
    assert not f.pattern.nodular


def test_vector_has_every_feature_name():
    volume, lungs = _lungs()
    f = compute_features(volume, lungs, np.zeros_like(lungs), SPACING)
    vec = f.vector()
    assert tuple(vec) == FEATURE_NAMES
    assert all(math.isfinite(v) for v in vec.values())
    assert f.to_dict()["effusion"]["detected"] is False


def test_effusion_on_phantom_within_20_percent():
    from pneumolens.anatomy import segment_lungs
    from pneumolens.synthetic import make_chest_phantom
    from pneumolens.train.insertion import insert_effusion_3d

    ph = make_chest_phantom(shape=(60, 128, 128), spacing=(2.5, 1.8, 1.8), seed=2, lesions=())
    clean = segment_lungs(ph.volume, ph.spacing)
    assert not detect_effusion(ph.volume, clean.labels, ph.spacing).detected  # no false alarm
    ins = insert_effusion_3d(ph.volume, ph.lung_labels == 1, spacing=ph.spacing, rng=np.random.default_rng(0))
    vol = np.round(ins.hu).astype(np.int16)
    lungs = segment_lungs(vol, ph.spacing)
    e = detect_effusion(vol, lungs.labels, ph.spacing)
    assert e.detected and e.right_ml > 0.9 * e.volume_ml
    assert e.volume_ml == pytest.approx(ins.volume_ml, rel=0.2)
    assert e.mask is not None and (e.mask & ins.mask).sum() > 0.7 * ins.mask.sum()
