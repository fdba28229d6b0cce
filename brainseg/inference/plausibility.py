"""Plausibility checks on a predicted 3-D brain mask: what a radiologist would glance at first.

Three checks, each a warning (a mask is still written; a person decides):

* **volume**: the intracranial volume of adults is about 1100-1800 mL (smaller in women and
  children, smaller still when the field of view cuts the vertex); outside
  ``volume_ml`` something is wrong, usually a leak or a truncated scan.
* **one piece**: the cranial cavity is one connected region; several pieces of noticeable
  size (``min_piece_ml``) mean islands of false positives or a broken mask.
* **nothing below the skull base**: in each column of voxels (along S), mask found under
  bone (HU >= ``bone_hu``, outside the mask) that lies under mask is below the cranial floor, i.e. in the
  skull base or the neck. Real anatomy has small overhangs (the sella, temporal poles under
  the sphenoid ridge, the cerebellum under the petrous ridges), so only more than
  ``below_skull_base_ml`` mL, at least ``depth_mm`` under the top of that bone, is reported.

Arrays are in RAS voxel order (axis 2 runs inferior -> superior), as
:func:`brainseg.data.axial.to_ras` gives them.

A 2-D footprint from a MIP gets its own checks (:func:`check_mip_plausibility`: area, empty,
touching the border), and every input is first checked to look like CT in HU
(:func:`check_ct_input`): air near -1000 HU, soft tissue in its range, not an 8-bit export.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from brainseg.errors import BadCaseError, ConfigError

NON_CT_POLICIES = ("warn", "fail")
AIR_MAX_HU = -800.0  # the darkest 1 % of a CT (air around the head, or padding outside the field of view) is below this
SOFT_TISSUE_HU = (-100.0, 100.0)  # fat, CSF, brain, muscle
MIN_SOFT_TISSUE = 0.05  # of the voxels denser than air: a head CT has far more (MIP pictures are not checked for it)


@dataclass(frozen=True)
class PlausibilityLimits:
    """What a plausible adult brain mask looks like. Volumes in mL, lengths in mm, CT in HU."""

    volume_ml: tuple[float, float] = (900.0, 2100.0)
    min_piece_ml: float = 1.0
    below_skull_base_ml: float = 10.0
    depth_mm: float = 4.0
    bone_hu: float = 700.0


def voxel_ml(spacing) -> float:
    """Volume of one voxel in mL from its spacing in mm."""
    return float(np.prod(np.asarray(spacing, float))) / 1000.0


def count_pieces(mask: np.ndarray, spacing, min_piece_ml: float) -> list[float]:
    """Volumes (mL, largest first) of the 26-connected pieces of at least ``min_piece_ml``."""
    labels, n = ndimage.label(mask > 0, structure=np.ones((3, 3, 3), bool))
    if n == 0:
        return []
    sizes = np.bincount(labels.ravel())[1:] * voxel_ml(spacing)
    return sorted((float(s) for s in sizes if s >= min_piece_ml), reverse=True)


def below_skull_base(mask: np.ndarray, hu: np.ndarray, spacing, bone_hu: float, depth_mm: float) -> np.ndarray:
    """Mask voxels at least ``depth_mm`` under the top of bone (outside the mask) that lies under mask, per column."""
    inside = mask > 0
    above = np.flip(np.logical_or.accumulate(np.flip(inside, 2), axis=2), 2)  # mask at or above
    mask_above = np.zeros_like(above)
    mask_above[:, :, :-1] = above[:, :, 1:]  # mask strictly above
    floor = (hu >= bone_hu) & ~inside & mask_above  # bone the mask itself covers (partial volume at its edge) is no floor
    under_floor = np.flip(np.logical_or.accumulate(np.flip(floor, 2), axis=2), 2)  # floor at or above
    shift = max(1, int(np.ceil(depth_mm / float(spacing[2]))))
    deep = np.zeros_like(under_floor)
    deep[:, :, :-shift] = under_floor[:, :, shift:]
    return inside & deep


def check_plausibility(
    mask: np.ndarray,
    spacing,
    hu: np.ndarray | None = None,
    limits: PlausibilityLimits = PlausibilityLimits(),
    volume_ml: float | None = None,
) -> list[str]:
    """Warnings (possibly none) about a (R, A, S) brain mask with voxel ``spacing`` in mm.

    Args:
        mask: the mask, RAS voxel order.
        spacing: voxel size along (R, A, S), mm.
        hu: the CT on the same grid, for the skull-base check; ``None`` skips that check.
        limits: thresholds of the checks.
        volume_ml: the mask's volume if known more precisely (e.g. measured on the full-resolution
            mask when ``mask`` is a coarse copy); ``None`` counts ``mask``.
    """
    warnings = []
    volume = float(np.count_nonzero(mask)) * voxel_ml(spacing) if volume_ml is None else volume_ml
    low, high = limits.volume_ml
    if volume == 0:
        return ["mask is empty: no brain found"]
    if not low <= volume <= high:
        side = "below" if volume < low else "above"
        warnings.append(f"mask volume {volume:.0f} mL is {side} the adult range {low:.0f}-{high:.0f} mL")
    pieces = count_pieces(mask, spacing, limits.min_piece_ml)
    if len(pieces) > 1:
        shown = ", ".join(f"{p:.1f}" for p in pieces[1:6])
        warnings.append(f"mask has {len(pieces)} pieces; besides the largest ({pieces[0]:.0f} mL): {shown} mL")
    if hu is not None:
        below = float(np.count_nonzero(below_skull_base(mask, hu, spacing, limits.bone_hu, limits.depth_mm))) * voxel_ml(spacing)
        if below > limits.below_skull_base_ml:
            warnings.append(f"{below:.1f} mL of mask lies below the skull base (under bone of >= {limits.bone_hu:g} HU)")
    return warnings


@dataclass(frozen=True)
class MipLimits:
    """What a plausible adult brain footprint in an axial MIP looks like (area in mm²)."""

    area_mm2: tuple[float, float] = (8000.0, 32000.0)


def check_mip_plausibility(mask: np.ndarray, spacing, limits: MipLimits = MipLimits()) -> list[str]:
    """Warnings (possibly none) about a 2-D brain footprint with pixel ``spacing`` in mm: empty,
    an area outside ``limits.area_mm2``, or touching the image border (a head cut off by the field of view)."""
    inside = np.asarray(mask) > 0
    if not inside.any():
        return ["mask is empty: no brain found"]
    warnings = []
    area = float(np.count_nonzero(inside)) * float(spacing[0]) * float(spacing[1])
    low, high = limits.area_mm2
    if not low <= area <= high:
        side = "below" if area < low else "above"
        warnings.append(f"mask area {area:.0f} mm2 is {side} the adult range {low:.0f}-{high:.0f} mm2")
    if inside[0].any() or inside[-1].any() or inside[:, 0].any() or inside[:, -1].any():
        warnings.append("mask touches the image border: the head may be cut off by the field of view")
    return warnings


def ct_problems(hu: np.ndarray, projection: bool = False, samples: int = 1_000_000) -> list[str]:
    """Why ``hu`` does not look like CT in HU (an empty list when it does).

    Args:
        hu: the image's values, any shape.
        projection: ``hu`` is a MIP, whose pixels are the densest along each line: its soft
            tissue is hidden behind bone and vessels, so only air and the value range are checked.
        samples: at most this many values are looked at (evenly spaced).
    """
    values = np.asarray(hu, np.float32).ravel()
    values = values[:: max(1, values.size // samples)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return ["no finite values"]
    low, high = float(values.min()), float(values.max())
    if low > -0.5 and high < 255.5:  # resampled values stray from integers by rounding
        return [f"values lie in {low:.0f}..{high:.0f}: an 8-bit picture export, not HU"]
    problems = []
    darkest = float(np.percentile(values, 1))
    if darkest > AIR_MAX_HU:
        problems.append(f"no air near -1000 HU (the darkest 1 % is at {darkest:.0f}): MRI, or CT without its rescale intercept?")
    dense = values[values > -500.0]
    if not projection and dense.size:
        tissue = float(np.mean((dense >= SOFT_TISSUE_HU[0]) & (dense <= SOFT_TISSUE_HU[1])))
        if tissue < MIN_SOFT_TISSUE:
            problems.append(f"only {tissue:.1%} of the head lies in the soft-tissue range {SOFT_TISSUE_HU[0]:.0f}..{SOFT_TISSUE_HU[1]:.0f} HU")
    return problems


def check_ct_input(hu: np.ndarray, path: str | Path, on_non_ct: str = "warn", projection: bool = False) -> list[str]:
    """One warning when ``hu`` does not look like CT in HU; with ``on_non_ct='fail'`` a refusal instead.

    Raises:
        BadCaseError: under ``on_non_ct='fail'``, naming the input and the reasons.
        ConfigError: an unknown policy.
    """
    if on_non_ct not in NON_CT_POLICIES:
        raise ConfigError(f"on_non_ct must be one of {NON_CT_POLICIES}, got {on_non_ct!r}")
    problems = ct_problems(hu, projection)
    if not problems:
        return []
    message = "input does not look like CT in HU (" + "; ".join(problems) + "); the model expects CT in HU"
    if on_non_ct == "fail":
        raise BadCaseError(path, message + " (refused: on_non_ct=fail)")
    return [message]
