import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from pneumolens.export.nifti import write_mask_nifti


def _oblique_free_affine():
    # canonical (k, j, i) -> LPS (x, y, z): x from i, y from j, z from k, with origin offset
    a = np.zeros((4, 4))
    a[0, 2] = 0.7  # x spacing
    a[1, 1] = 0.7  # y spacing
    a[2, 0] = 2.5  # z spacing
    a[:3, 3] = (-180.0, -150.0, -320.0)
    a[3, 3] = 1
    return a


@pytest.mark.parametrize("dtype", [np.uint8, bool])
def test_mask_lands_at_the_same_patient_point(tmp_path, dtype):
    affine = _oblique_free_affine()
    mask = np.zeros((5, 6, 7), dtype=dtype)
    mask[3, 1, 5] = 1
    path = write_mask_nifti(mask, affine, tmp_path / "m.nii.gz")

    lps_expected = (affine @ np.array([3, 1, 5, 1]))[:3]
    # nibabel: RAS world coordinates
    img = nib.load(str(path))
    i, j, k = np.argwhere(np.asarray(img.dataobj) > 0)[0]
    ras = (img.affine @ np.array([i, j, k, 1]))[:3]
    np.testing.assert_allclose(ras * np.array([-1, -1, 1]), lps_expected, atol=1e-4)
    # SimpleITK: LPS physical points, array indexed (z, y, x)
    itk = sitk.ReadImage(str(path))
    zyx = np.argwhere(sitk.GetArrayFromImage(itk) > 0)[0]
    point = itk.TransformIndexToPhysicalPoint([int(zyx[2]), int(zyx[1]), int(zyx[0])])
    np.testing.assert_allclose(point, lps_expected, atol=1e-4)
    np.testing.assert_allclose(itk.GetSpacing(), (0.7, 0.7, 2.5), atol=1e-6)
