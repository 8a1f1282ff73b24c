"""Grid helpers: small-component removal and component sizes against cc3d's own."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize(("connectivity", "min_voxels"), [(6, 3), (26, 5), (18, 2), (26, 1)])
def test_remove_small_equals_cc3d_dust(connectivity: int, min_voxels: int) -> None:
    import cc3d

    from pneumolens.grid import remove_small

    mask = np.random.default_rng(connectivity + min_voxels).random((12, 30, 25)) > 0.7
    expected = cc3d.dust(mask, threshold=min_voxels, connectivity=connectivity, in_place=False) > 0
    got = remove_small(mask, min_voxels, connectivity=connectivity)
    assert got.dtype == bool and got.shape == mask.shape
    np.testing.assert_array_equal(got, expected)
    assert (got.sum() < mask.sum()) == (min_voxels > 1)


def test_component_sizes_counts_each_label_and_not_the_background() -> None:
    import cc3d

    from pneumolens.grid import component_sizes

    mask = np.random.default_rng(7).random((10, 20, 20)) > 0.6
    labels, n = cc3d.connected_components(mask, connectivity=6, return_N=True)
    sizes = component_sizes(labels, mask, n)
    assert sizes.shape == (n + 1,) and sizes[0] == 0
    np.testing.assert_array_equal(sizes[1:], np.bincount(labels.ravel(), minlength=n + 1)[1:])
