"""Plausibility warnings: adult volume, one piece, nothing below the skull base."""

import numpy as np

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
