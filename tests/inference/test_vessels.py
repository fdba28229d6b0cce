"""Skull-free projections: the vessels inside the mask show, the skull does not."""

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from brainseg.inference.vessels import (
    brain_mip,
    masked_brain,
    slab_mips,
    write_vessel_views,
)
from tests.conftest import phantom, write_nifti


@pytest.fixture
def case(tmp_path):
    image, mask = phantom(shape=(32, 28, 20))  # skull shell, brain, a 300 HU vessel along z
    affine = np.diag([-0.8, -0.8, 2.0, 1.0])  # LPS storage
    return write_nifti(tmp_path / "img.nii.gz", image, affine), write_nifti(tmp_path / "mask.nii.gz", mask, affine), image, mask


def test_the_brain_mip_shows_the_vessel_and_no_skull(case):
    image_path, mask_path, image, _ = case
    hu, spacing, _ = masked_brain(image_path, mask_path, margin_mm=0)
    mip = brain_mip(hu)
    assert mip.max() == 300  # the vessel, not the 1200 HU skull
    assert spacing.tolist() == pytest.approx([0.8, 0.8, 2.0])
    raw_mip = image.max(axis=2)
    assert raw_mip.max() == 1200


def test_views_are_written_as_png_stack_and_nifti(case, tmp_path):
    image_path, mask_path, _, _ = case
    written = write_vessel_views("c1", image_path, mask_path, tmp_path / "out", slab_mm=10.0, overlap_mm=4.0)
    assert written[0].name == "c1_brain_mip.png"
    picture = np.asarray(Image.open(written[0]))
    assert picture.dtype == np.uint8 and picture.shape == (28, 32)  # display: rows A->P, cols R->L
    pngs = [p for p in written if p.suffix == ".png" and p.parent.name == "c1_slabs"]
    slabs = nib.load(written[-1])
    assert slabs.shape[:2] == (32, 28) and slabs.shape[2] == len(pngs) >= 2


def test_slab_affine_places_each_slab_at_its_centre():
    hu = np.full((4, 4, 12), -1024.0, np.float32)
    hu[:, :, 1:11] = 40.0  # brain in slices 1..10
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    slabs, slab_affine = slab_mips(hu, affine, slab_mm=6.0, overlap_mm=2.0)  # 3 slices thick, every 2
    assert slabs.shape[2] == 5  # slices 1-3, 3-5, 5-7, 7-9 and 9-11: the last reaches slice 10
    assert slab_affine[2, 2] == 4.0 and slab_affine[2, 3] == 2.0 * (1 + 1)  # centre of slices 1..3 at z = 4 mm


def test_overlap_must_be_smaller_than_the_slab():
    with pytest.raises(ValueError, match="overlap_mm"):
        slab_mips(np.zeros((2, 2, 4)), np.eye(4), slab_mm=2.0, overlap_mm=2.0)
