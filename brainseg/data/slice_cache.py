"""Axial slice stacks of a dataset: validated, resampled once, cached as ``.npz``, on all cores.

The slice counterpart of :mod:`brainseg.data.preparation`: the same discovery, validation
(:func:`open_nifti`, :func:`check_same_grid`), bad-case policy and cache keys (source files and
settings), but each case becomes a stack of axial slices on the coarse grid of
:mod:`brainseg.data.axial` instead of a MIP. Stacks hold HU as int16 and masks as uint8, so a
few dozen cases fit in memory at 2 mm pixels.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from brainseg.data.axial import plan_axial_grid, read_axial_hu, read_axial_mask
from brainseg.data.cache import cache_key
from brainseg.data.dicom import open_image
from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.nifti import DEFAULT_MAX_VOXELS, open_nifti
from brainseg.data.preparation import (
    BAD_CASE_POLICIES,
    report_bad_cases,
    run_cases,
    select_shard,
)
from brainseg.data.projection import check_same_grid
from brainseg.errors import BadCaseError

log = logging.getLogger(__name__)

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


def stack_case(
    record: CaseRecord, spacing_mm: float, affine_tolerance: float = 1e-3, max_voxels: int = DEFAULT_MAX_VOXELS
) -> SliceStack:
    """Validate a case and cut it into coarse axial slices.

    Raises:
        BadCaseError: with a one-line reason naming the offending file.
    """
    image = open_image(record.image_path, max_voxels)  # a NIfTI file or a DICOM series folder
    mask_volume = None
    if record.mask_path is not None:
        mask_volume = open_nifti(record.mask_path, max_voxels)
        check_same_grid(image, mask_volume, affine_tolerance)
    grid = plan_axial_grid(image.affine, image.shape, spacing_mm)
    hu = read_axial_hu(image, grid).round_().clamp_(-32768, 32767).numpy().astype(np.int16)
    spacing = (*grid.coarse_spacing, grid.spacing[2])
    if mask_volume is None:
        return SliceStack(hu, None, spacing)
    mask, warnings = read_axial_mask(mask_volume, grid)
    return SliceStack(hu, mask, spacing, warnings)


class SliceCache:
    """``<root>/<CaseID>.npz`` per case, carrying its key; a stale or unreadable file is a miss."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, case_id: str) -> Path:
        return self.root / f"{case_id}.npz"

    def load(self, case_id: str, key: str) -> SliceStack | None:
        path = self.path(case_id)
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["key"]) != key:
                    return None
                mask = data["mask"] if data["mask"].size else None
                return SliceStack(data["hu"], mask, tuple(float(v) for v in data["spacing"]), [str(w) for w in data["warnings"]])
        except (OSError, KeyError, ValueError):
            return None

    def store(self, case_id: str, key: str, stack: SliceStack) -> None:
        """Write to a temporary name and rename, so readers never see half a file."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(prefix=f".{case_id}-", suffix=".npz.tmp", dir=self.root)
        try:
            with os.fdopen(handle, "wb") as stream:
                np.savez(
                    stream,
                    key=np.array(key),
                    hu=stack.hu,
                    mask=stack.mask if stack.mask is not None else np.zeros(0, np.uint8),
                    spacing=np.asarray(stack.spacing, np.float64),
                    warnings=np.array(stack.warnings, dtype=str),
                )
            os.replace(temporary, self.path(case_id))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def slice_settings(spacing_mm: float) -> dict:
    """What changes the cached slices; part of every cache key."""
    return {"version": SLICE_CACHE_VERSION, "projection": "axial_slices", "orientation": "RAS", "spacing_mm": float(spacing_mm)}


@dataclass
class PreparedSlices:
    """Slice stacks of the usable cases, and why the others were left out."""

    stacks: dict[str, SliceStack] = field(default_factory=dict)
    records: dict[str, CaseRecord] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> one-line reason
    warnings: list[str] = field(default_factory=list)
    newly_cached: int = 0

    def summary(self) -> str:
        slices = sum(len(stack.hu) for stack in self.stacks.values())
        reused = len(self.stacks) - self.newly_cached
        return (
            f"{len(self.stacks)} cases ready, {slices} slices ({self.newly_cached} sliced, {reused} from cache), "
            f"{len(self.skipped)} skipped"
        )


def _prepare_case(record: CaseRecord, cache_root: str, spacing_mm: float, affine_tolerance: float, max_voxels: int):
    """Worker: the cached stack of one case, or the one-line reason it is unusable."""
    cache = SliceCache(cache_root)
    try:
        key = cache_key(record, slice_settings(spacing_mm))
        cached = cache.load(record.case_id, key)
        if cached is not None:
            return record, cached, None, False
        stack = stack_case(record, spacing_mm, affine_tolerance, max_voxels)
        cache.store(record.case_id, key, stack)
        return record, stack, None, True
    except BadCaseError as error:
        return record, None, error, False
    except (OSError, ValueError, MemoryError) as error:
        return record, None, BadCaseError(record.image_path, f"{type(error).__name__}: {error}"), False


def prepare_slice_dataset(
    root: str | Path,
    cache_dir: str | Path,
    spacing_mm: float,
    on_bad_case: str = "skip",
    workers: int | None = None,
    affine_tolerance: float = 1e-3,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    shard: int = 0,
    num_shards: int = 1,
    progress: bool = True,
) -> PreparedSlices:
    """Discover, validate, slice and cache every case under ``root`` (see :func:`prepare_dataset`).

    Raises:
        BadDatasetError: under ``on_bad_case='fail'``, if any case or file is unusable.
    """
    if on_bad_case not in BAD_CASE_POLICIES:
        raise ValueError(f"on_bad_case must be one of {BAD_CASE_POLICIES}, got {on_bad_case!r}")
    discovery = discover_cases(root)
    prepared = PreparedSlices(skipped=dict(discovery.problems))
    cases = select_shard(discovery.cases, shard, num_shards)
    arguments = [(record, str(cache_dir), float(spacing_mm), affine_tolerance, max_voxels) for record in cases]
    bar = tqdm(total=len(cases), desc="Preparing slices", unit="case", disable=not progress or not cases, leave=False)
    _collect(run_cases(_prepare_case, arguments, workers, chunksize=2), prepared, bar)
    bar.close()
    report_bad_cases(prepared.skipped, prepared.warnings, on_bad_case)
    return prepared


def _collect(results, prepared: PreparedSlices, bar) -> None:
    for record, stack, error, newly in results:
        bar.update()
        if error is not None:
            prepared.skipped[error.path] = error.problem
            continue
        prepared.stacks[record.case_id] = stack
        prepared.records[record.case_id] = record
        prepared.warnings.extend(stack.warnings)
        prepared.newly_cached += int(newly)
