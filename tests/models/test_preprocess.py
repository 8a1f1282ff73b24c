"""Input normalisation shared by training and inference."""

from __future__ import annotations

import numpy as np
import pytest

from pneumolens.models import preprocess as pp


@pytest.mark.parametrize(("hu", "expected"), [(-2000, 0.0), (-1350, 0.0), (-600, 0.5), (150, 1.0), (3000, 1.0)])
def test_window_hu(hu: float, expected: float) -> None:
    assert pp.window_hu(np.array([hu], dtype=np.int16))[0] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("rows", "cols", "margin", "expected"),
    [
        ((10, 30), (20, 40), 0.0, pp.Box(10, 20, 20)),  # square already
        ((10, 20), (20, 60), 0.0, pp.Box(-5, 20, 40)),  # wide: squared around the centre
        ((10, 30), (20, 40), 0.25, pp.Box(5, 15, 30)),
    ],
)
def test_square_box(rows, cols, margin, expected) -> None:
    mask = np.zeros((64, 64), bool)
    mask[rows[0] : rows[1], cols[0] : cols[1]] = True
    assert pp.square_box(mask, margin=margin) == expected


def test_square_box_of_empty_mask_is_whole_image() -> None:
    assert pp.square_box(np.zeros((40, 60), bool)) == pp.Box(-10, 0, 60)


@pytest.mark.parametrize("box", [pp.Box(5, 7, 20), pp.Box(-6, -3, 50), pp.Box(30, 30, 40)])
def test_crop_uncrop_round_trip(box: pp.Box) -> None:
    img = np.arange(48 * 48, dtype=np.float32).reshape(48, 48) + 1
    back = pp.uncrop(pp.crop(img, box), box, img.shape)
    inside = np.zeros(img.shape, bool)
    inside[max(box.y0, 0) : box.y0 + box.side, max(box.x0, 0) : box.x0 + box.side] = True
    np.testing.assert_array_equal(back[inside], img[inside])
    assert (back[~inside] == 0).all()


@pytest.mark.parametrize("box", [pp.Box(10, 12, 70), pp.Box(-20, 30, 120), pp.Box(0, 0, 64)])
def test_restore_region_matches_resize_then_uncrop(box: pp.Box) -> None:
    stack = np.random.default_rng(0).random((3, 32, 32), dtype=np.float32)
    out, (ys, xs) = pp.restore_region(stack, box, (96, 96))
    ref = pp.uncrop(pp.resize(stack, box.side, order=1), box, (96, 96))[:, ys, xs]
    np.testing.assert_allclose(out, ref, atol=1e-5)


@pytest.mark.parametrize("box", [pp.Box(10, 12, 70), pp.Box(-20, 30, 120)])
def test_restore_region_into_out_is_identical_and_touches_only_the_box(box: pp.Box) -> None:
    stack = np.random.default_rng(2).random((3, 32, 32), dtype=np.float32)
    ref, (ys, xs) = pp.restore_region(stack, box, (96, 96))
    volume = np.full((3, 96, 96), -1.0, dtype=np.float32)
    view, same = pp.restore_region(stack, box, (96, 96), out=volume)
    assert same == (ys, xs) and np.shares_memory(view, volume)
    np.testing.assert_array_equal(volume[:, ys, xs], ref)  # bit-identical, not just close
    outside = np.ones(volume.shape, bool)
    outside[:, ys, xs] = False
    assert (volume[outside] == -1.0).all()
    with pytest.raises(ValueError, match="out has shape"):
        pp.restore_region(stack, box, (96, 96), out=np.zeros((2, 96, 96), np.float32))


@pytest.mark.parametrize(("n_in", "n_out"), [(4, 9), (192, 350), (10, 3)])
def test_interpolation_matrix_rows_sum_to_one(n_in: int, n_out: int) -> None:
    m = pp.interpolation_matrix(n_in, n_out)
    assert m.shape == (n_out, n_in)
    np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)


def test_enclosed_regions_drops_border_air_and_small_pockets() -> None:
    dark = np.zeros((40, 40), bool)
    dark[:, :3] = True  # air outside the body, touching the border
    dark[10:30, 8:18] = True  # a lung
    dark[33:35, 30:32] = True  # 4-pixel pocket
    out = pp.enclosed_regions(dark, min_pixels=10)
    assert out[20, 12] and not out[20, 1] and not out[34, 31]


def test_prepare_slice_shape_range_and_label_values() -> None:
    rng = np.random.default_rng(1)
    img = rng.random((80, 100), dtype=np.float32)
    box = pp.full_box(img.shape)
    x = pp.prepare_slice(img, box, 48)
    assert x.shape == (48, 48) and x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    lab = np.zeros((80, 100), np.uint8)
    lab[20:40, 30:60] = 2
    y = pp.prepare_label(lab, box, 48)
    assert set(np.unique(y)) == {0, 2}
