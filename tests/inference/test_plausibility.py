"""Plausibility warnings: adult volume, one piece, nothing below the skull base."""

import numpy as np
import pytest

from brainseg.inference.plausibility import (
    PlausibilityLimits,
    below_skull_base,
    check_plausibility,
)

SPACING = (2.0, 2.0, 2.0)  # 8 mm^3 voxels: 125 voxels = 1 mL


def brain(shape=(70, 80, 70)) -> np.ndarray:
    """A 1.2 L ellipsoid in RAS voxel order."""
    x, y, z = np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in shape], indexing="ij")
    return ((x / 32) ** 2 + (y / 38) ** 2 + (z / 30) ** 2 < 1).astype(np.uint8)


def test_a_plausible_mask_has_no_warnings():
    mask = brain()
    assert 1100 < mask.sum() / 125 < 1300
    assert check_plausibility(mask, SPACING) == []


def test_a_small_mask_is_outside_the_adult_range():
    (warning,) = check_plausibility(brain(), (1.0, 1.0, 1.0))  # 8 times smaller: 150 mL
    assert "below the adult range" in warning


def test_islands_of_at_least_a_millilitre_are_reported():
    mask = brain()
    mask[0:5, 0:5, 0:5] = 1  # 1 mL island
    mask[-1, -1, -1] = 1  # a single voxel: noise, not reported
    (warning,) = check_plausibility(mask, SPACING)
    assert "2 pieces" in warning and "1.0 mL" in warning


def test_mask_under_the_cranial_floor_is_below_the_skull_base():
    mask = np.pad(brain(), [(0, 0), (0, 0), (15, 0)])  # room for a neck
    hu = np.where(mask, 35, -1000).astype(np.int16)
    floor = np.flatnonzero(mask.any(axis=(0, 1)))[0]
    hu[20:50, 20:60, floor - 3 : floor] = 1500  # bone plate under the brain
    assert check_plausibility(mask, SPACING, hu) == []
    leak = mask.copy()
    leak[25:45, 25:55, floor - 12 : floor - 3] = 1  # 9 slices of neck tissue right under the plate: 43 mL
    assert below_skull_base(leak, hu, SPACING, bone_hu=700, depth_mm=4).sum() == 20 * 30 * 9
    assert below_skull_base(leak, hu, SPACING, bone_hu=700, depth_mm=10).sum() == 20 * 30 * 7  # 10 mm under its top
    warnings = check_plausibility(leak, SPACING, hu)
    assert any("below the skull base" in w for w in warnings)
    tolerant = PlausibilityLimits(below_skull_base_ml=50)
    assert not any("below the skull base" in w for w in check_plausibility(leak, SPACING, hu, tolerant))


def test_an_empty_mask_says_so():
    assert check_plausibility(np.zeros((4, 4, 4)), SPACING) == ["mask is empty: no brain found"]


# ---- is it CT in HU? -------------------------------------------------------------------------------

def head_ct(shape=(60, 60, 40)) -> np.ndarray:
    """HU: air around a skull shell holding brain (35 HU) and CSF (5 HU)."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    r = np.sqrt(x**2 + y**2 + z**2)
    hu = np.full(shape, -1000.0, np.float32)
    hu[r < 0.9] = 1200.0
    hu[r < 0.8] = 35.0
    hu[r < 0.2] = 5.0
    return hu


def test_ct_in_hu_raises_no_doubt():
    from brainseg.inference.plausibility import ct_problems

    assert ct_problems(head_ct()) == []
    assert ct_problems(head_ct().max(axis=2), projection=True) == []  # a MIP: bone hides the soft tissue


def test_mri_like_values_have_no_air():
    from brainseg.inference.plausibility import ct_problems

    mri = np.clip(head_ct() + 1000.0, 0.0, 1000.0)  # 0..1000, background 0
    (problem,) = ct_problems(mri)
    assert "no air near -1000 HU" in problem


def test_an_8_bit_export_is_named_as_such():
    from brainseg.inference.plausibility import ct_problems

    exported = np.round((np.clip(head_ct(), -100, 200) + 100) / 300 * 255)
    assert ct_problems(exported) == ["values lie in 0..255: an 8-bit picture export, not HU"]


def test_non_ct_warns_in_one_line_or_is_refused():
    import pytest

    from brainseg.errors import BadCaseError
    from brainseg.inference.plausibility import check_ct_input

    mri = np.clip(head_ct() + 1000.0, 0.0, 1000.0)
    (warning,) = check_ct_input(mri, "scan.nii.gz")
    assert warning.startswith("input does not look like CT in HU") and "\n" not in warning
    with pytest.raises(BadCaseError, match="scan.nii.gz: input does not look like CT.*on_non_ct=fail"):
        check_ct_input(mri, "scan.nii.gz", on_non_ct="fail")


# ---- MIP footprints ------------------------------------------------------------------------------

def footprint(shape=(200, 200), side=100) -> np.ndarray:
    """A centred ``side`` x ``side`` square: its area is side^2 pixels."""
    mask = np.zeros(shape, np.uint8)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    mask[top : top + side, left : left + side] = 1
    return mask


@pytest.mark.parametrize(
    "mask, spacing, expected",
    [
        (footprint(), (1.0, 1.0), []),  # 100^2 = 10000 mm2
        (footprint(), (0.5, 0.5), ["mask area 2500 mm2 is below the adult range 8000-32000 mm2"]),
        (footprint(), (2.0, 1.0), []),  # 20000 mm2
        (footprint(), (2.0, 2.0), ["mask area 40000 mm2 is above the adult range 8000-32000 mm2"]),
        (np.zeros((50, 50), np.uint8), (1.0, 1.0), ["mask is empty: no brain found"]),
        (footprint((100, 200)), (1.0, 1.0), ["mask touches the image border: the head may be cut off by the field of view"]),
    ],
)
def test_mip_footprints_are_checked_for_area_emptiness_and_the_border(mask, spacing, expected):
    from brainseg.inference.plausibility import check_mip_plausibility

    assert check_mip_plausibility(mask, spacing) == expected
