"""Axial slice stacks: the representation behind 3-D brain masks (``mode=slices``).

A validated case (:func:`~brainseg.data.cases.open_case`) is reoriented to RAS voxel order
and cut into axial slices resampled in-plane to ``spacing_mm`` (:mod:`brainseg.data.axial`,
the same geometry volume inference uses). Stacks hold HU as int16 and masks as uint8, so a few
dozen cases fit in memory at 2 mm pixels; each is cached as ``<CaseID>.npz`` with its key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainseg.data.axial import plan_axial_grid, read_axial_hu, resample_mask
from brainseg.data.cache import write_atomically
from brainseg.data.cases import OpenedCase

SLICE_CACHE_VERSION = 1  # bump when the slicing code changes what it writes


@dataclass
class SliceStack:
    """One case as axial slices on the coarse grid, RAS voxel order: ``hu[z]`` is an (R, A) slice."""

    hu: np.ndarray  # int16 HU, (S, R, A)
    mask: np.ndarray | None  # uint8 {0, 1}, same shape
    spacing: tuple[float, float, float]  # mm: coarse pixel (R, A), then slice spacing (S)
    warnings: list[str] = field(default_factory=list)

    @property
    def brain_slices(self) -> np.ndarray:
        """Indices of the slices that hold brain."""
        return np.flatnonzero(self.mask.reshape(len(self.mask), -1).any(axis=1))


def stack_case(case: OpenedCase, spacing_mm: float) -> SliceStack:
    """A validated case as coarse axial slices of ``spacing_mm`` pixels.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    grid = plan_axial_grid(case.image.affine, case.image.shape, spacing_mm)
    hu = read_axial_hu(case.image, grid).round_().clamp_(-32768, 32767).numpy().astype(np.int16)
    spacing = (*grid.coarse_spacing, grid.spacing[2])
    mask = None if case.mask is None else resample_mask(case.mask, grid)
    return SliceStack(hu, mask, spacing, list(case.warnings))


class SliceCache:
    """``<root>/<CaseID>.npz`` per case, carrying its key; a stale or unreadable file is a miss."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, case_id: str) -> Path:
        return self.root / f"{case_id}.npz"

    def load(self, case_id: str, key: str) -> SliceStack | None:
        try:
            with np.load(self.path(case_id), allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                mask = data["mask"] if data["mask"].size else None
                return SliceStack(data["hu"], mask, tuple(float(v) for v in data["spacing"]), [str(w) for w in data["warnings"]])
        except (OSError, KeyError, ValueError):
            return None

    def store(self, case_id: str, key: str, stack: SliceStack) -> None:
        arrays = {
            "key": np.array(key),
            "hu": stack.hu,
            "mask": stack.mask if stack.mask is not None else np.zeros(0, np.uint8),
            "spacing": np.asarray(stack.spacing, np.float64),
            "warnings": np.array(stack.warnings, dtype=str),
        }
        write_atomically(self.path(case_id), lambda stream: np.savez(stream, **arrays))


@dataclass(frozen=True)
class SliceRepresentation:
    """A case as axial slices of ``spacing_mm`` pixels: what the 3-D mask model learns (``mode=slices``)."""

    spacing_mm: float = 2.0
    name: str = "slices"

    @property
    def cache_folder(self) -> str:
        return f"slices_{self.spacing_mm:g}mm"

    def settings(self) -> dict:
        return {"version": SLICE_CACHE_VERSION, "projection": "axial_slices", "orientation": "RAS", "spacing_mm": float(self.spacing_mm)}

    def make(self, case: OpenedCase) -> SliceStack:
        return stack_case(case, self.spacing_mm)

    def cache(self, root: str | Path) -> SliceCache:
        return SliceCache(root)
