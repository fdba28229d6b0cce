"""Maximum intensity projection along the patient's superior-inferior axis, streamed from disk.

Each volume is projected along the storage axis that nibabel's orientation maps to S, whatever
the file's storage order (RAS, LPS, permuted axes), and the 2-D result is put in one display
orientation: radiological axial view, anterior at the top and the patient's right on the left.
The same volume stored in any orientation gives the same MIP.

The image MIP is the maximum of the stored values (the minimum when the rescale slope is
negative), scaled to HU afterwards. The mask projection is the union of the mask along the
axis and stays {0, 1}. This is one of the two representations of a case
(:class:`MipRepresentation`; the other is :mod:`brainseg.data.slices`), with its cache.

A MIP hides the brain's outline: every line through the cranium meets bone at the vertex or the
skull base, so the MIP is bone-bright from the outer table inwards. The same streamed pass can
also make the planes of :mod:`brainseg.data.extra_projections`, which see what the MIP hides;
the MIP model takes them as extra input channels.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainseg.data.cache import from_png16, read_png, to_png16, write_png_atomically
from brainseg.data.cases import OpenedCase
from brainseg.data.extra_projections import (
    EXTRA_PROJECTIONS,
    SlabValues,
    check_extra_projections,
)
from brainseg.data.nifti import NiftiVolume
from brainseg.errors import BadCaseError

SUPERIOR_AXIS = 2  # index of S in RAS


@dataclass
class Projection:
    """A case's MIPs in display orientation, with the pixel size they came with."""

    image: np.ndarray  # float32 HU, (rows, cols)
    mask: np.ndarray | None  # uint8 {0, 1}, same shape
    spacing: tuple[float, float]  # mm per pixel along (rows, cols)
    warnings: list[str] = field(default_factory=list)
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32 (rows, cols), EXTRA_PROJECTIONS' units


def ras_to_display(ras: np.ndarray) -> np.ndarray:
    """(R, A)-ordered 2-D array -> radiological view: rows anterior->posterior, cols right->left."""
    return np.ascontiguousarray(ras[::-1, ::-1].T)


def display_to_ras(display: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ras_to_display`."""
    return np.ascontiguousarray(display.T[::-1, ::-1])


def _projection_axis(volume: NiftiVolume) -> int:
    """The storage axis along the patient's superior-inferior direction."""
    return int(np.flatnonzero(volume.orientation[:, 0] == SUPERIOR_AXIS)[0])


def _to_display(volume: NiftiVolume, projected: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Put a 2-D projection (remaining storage axes, in order) into display orientation."""
    kept = [a for a in range(3) if a != axis]
    ras_axes = volume.orientation[kept, 0].astype(int)
    flips = volume.orientation[kept, 1]
    for position, flip in enumerate(flips):
        if flip < 0:
            projected = np.flip(projected, axis=position)
    spacing = volume.spacing[kept]
    if ras_axes[0] > ras_axes[1]:  # stored (A, R): transpose to (R, A)
        projected, spacing = projected.T, spacing[::-1]
    return ras_to_display(projected), (float(spacing[1]), float(spacing[0]))


def _reduce_slabs(volume: NiftiVolume, axis: int, reduce_slab, combine) -> list[np.ndarray]:
    """Stream ``volume`` and reduce it along storage ``axis``: ``reduce_slab(slab, axis, indices)``
    (``indices``: the slab's voxel indices along ``axis``) gives a list of arrays per slab,
    combined across slabs with ``combine`` (one function per array)."""
    nx, ny, nz = volume.shape
    results = None
    for start, slab in volume.iter_slabs():
        indices = np.arange(start, start + slab.shape[2]) if axis == 2 else np.arange(slab.shape[axis])
        parts = reduce_slab(slab, axis, indices)
        if axis == 2:
            results = parts if results is None else [join(result, part) for join, result, part in zip(combine, results, parts)]
        else:
            if results is None:
                results = [np.empty((ny if axis == 0 else nx, nz, *part.shape[2:]), dtype=part.dtype) for part in parts]
            for result, part in zip(results, parts):
                result[:, start : start + slab.shape[2]] = part
    return results


def project_volume(volume: NiftiVolume, extra: tuple[str, ...] = ()) -> tuple[np.ndarray, dict[str, np.ndarray], tuple[float, float]]:
    """HU MIP of a CT volume and the ``extra`` projections (:data:`EXTRA_PROJECTIONS`), in one
    streamed pass, in display orientation, with their pixel spacing.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    extra = check_extra_projections(extra)
    axis = _projection_axis(volume)
    take_max = volume.slope > 0
    is_float = volume.dtype.kind == "f"
    n_along = volume.shape[axis]
    slice_mm = float(volume.spacing[axis])
    pixel_mm2 = float(np.prod([volume.spacing[a] for a in range(3) if a != axis]))
    rank_type = np.uint16 if n_along < 65536 else np.uint32

    def reduce_slab(slab: np.ndarray, ax: int, indices: np.ndarray) -> list[np.ndarray]:
        if is_float and not np.isfinite(slab).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        parts = [slab.max(axis=ax) if take_max else slab.min(axis=ax)]
        if extra:
            values = SlabValues(slab, volume)
            ranks = (indices + 1 if volume.orientation[axis, 1] > 0 else n_along - indices).astype(rank_type)  # 1 = most inferior
            for name in extra:
                parts.append(EXTRA_PROJECTIONS[name].slab_sum(values, ax, ranks, slice_mm, n_along))
        return parts

    combine = [np.maximum if take_max else np.minimum] + [np.add] * len(extra)
    mip, *totals = _reduce_slabs(volume, axis, reduce_slab, combine)
    mip, spacing = _to_display(volume, volume.scale(mip), axis)
    mip = from_png16(to_png16(mip))  # whole HU, as the cache holds them: a fresh case equals a cached one
    planes = {}
    for name, total in zip(extra, totals):  # at the cache's resolution, so a cached case equals a fresh one
        kind = EXTRA_PROJECTIONS[name]
        plane = kind.finish(total, slice_mm, n_along, pixel_mm2)
        planes[name] = kind.dequantize(kind.quantize(_to_display(volume, plane, axis)[0]))
    return mip, planes, spacing


def project_image(volume: NiftiVolume) -> tuple[np.ndarray, tuple[float, float]]:
    """HU MIP of a CT volume, in display orientation, with its pixel spacing.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    mip, _, spacing = project_volume(volume)
    return mip, spacing


def project_mask(mask: np.ndarray, volume: NiftiVolume) -> np.ndarray:
    """Union of a bool mask (``volume``'s stored order) along S, as uint8 {0, 1} in display orientation."""
    axis = _projection_axis(volume)
    projected, _ = _to_display(volume, mask.any(axis=axis).astype(np.uint8), axis)
    return projected


def project_case(case: OpenedCase, extra: tuple[str, ...] = ()) -> Projection:
    """The MIP (and ``extra`` projections) of a validated case's image, and the union of its mask
    (if it has one), along S.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    image_mip, planes, spacing = project_volume(case.image, extra)
    mask_mip = None if case.mask is None else project_mask(case.mask, case.image)
    return Projection(image_mip, mask_mip, spacing, list(case.warnings), planes)


class MipCache:
    """Cached MIP pairs under ``root``: ``images/<CaseID>.png`` (16-bit, HU + 32768, so any window
    or normalization can be applied later without re-reading the volume), ``masks/<CaseID>.png``
    (8-bit, 0/255) and, for each of ``extra``, ``extra/<CaseID>_<name>.png`` (16-bit, see
    :class:`ExtraProjection`). Each PNG carries its cache key in a text chunk; a stale or
    unreadable PNG is a miss."""

    def __init__(self, root: str | Path, extra: tuple[str, ...] = ()):
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.masks_dir = self.root / "masks"
        self.extra = check_extra_projections(extra)

    def image_path(self, case_id: str) -> Path:
        return self.images_dir / f"{case_id}.png"

    def mask_path(self, case_id: str) -> Path:
        return self.masks_dir / f"{case_id}.png"

    def extra_path(self, case_id: str, name: str) -> Path:
        return self.root / "extra" / f"{case_id}_{name}.png"

    def load(self, case_id: str, key: str) -> Projection | None:
        """The cached projection if all its PNGs exist, decode and carry ``key``; else ``None``."""
        image = read_png(self.image_path(case_id))
        if image is None or image[1].get("brainseg-key") != key:
            return None
        pixels, text = image
        mask = None
        if text.get("has-mask") == "1":
            cached_mask = read_png(self.mask_path(case_id))
            if cached_mask is None or cached_mask[1].get("brainseg-key") != key:
                return None
            mask = (cached_mask[0] > 0).astype(np.uint8)
        planes = {}
        for name in self.extra:
            cached = read_png(self.extra_path(case_id, name))
            if cached is None or cached[1].get("brainseg-key") != key:
                return None
            planes[name] = EXTRA_PROJECTIONS[name].dequantize(cached[0])
        hu = from_png16(pixels)
        spacing = tuple(float(s) for s in text["spacing"].split(","))
        return Projection(hu, mask, spacing, json.loads(text.get("warnings", "[]")), planes)

    def store(self, case_id: str, key: str, projection: Projection) -> None:
        """Write the PNGs atomically; the image last, so a found image implies a complete set."""
        text = {
            "brainseg-key": key,
            "spacing": ",".join(repr(float(s)) for s in projection.spacing),  # exact: a cached case equals a fresh one
            "has-mask": "1" if projection.mask is not None else "0",
            "warnings": json.dumps(projection.warnings),
        }
        if projection.mask is not None:
            write_png_atomically((projection.mask > 0).astype(np.uint8) * 255, self.mask_path(case_id), text)
        for name in self.extra:
            write_png_atomically(EXTRA_PROJECTIONS[name].quantize(projection.extra[name]), self.extra_path(case_id, name), text)
        write_png_atomically(to_png16(projection.image), self.image_path(case_id), text)


@dataclass(frozen=True)
class MipRepresentation:
    """A case as its MIP along S (and ``extra`` projections): the 2-D footprint the MIP model learns (``mode=mip``)."""

    extra: tuple[str, ...] = ()
    name: str = "MIPs"

    def __post_init__(self) -> None:
        object.__setattr__(self, "extra", check_extra_projections(self.extra))

    @property
    def cache_folder(self) -> str:
        """``mip``, or ``mip-<extra>-...`` with extra projections (so switching does not evict either)."""
        return "-".join(["mip", *self.extra])

    def settings(self) -> dict:
        settings = {"projection": "mip", "axis": "S", "orientation": "radiological"}
        if self.extra:  # a MIP-only cache keeps the key it always had
            settings["extra"] = list(self.extra)
        return settings

    def make(self, case: OpenedCase) -> Projection:
        return project_case(case, self.extra)

    def cache(self, root: str | Path) -> MipCache:
        return MipCache(root, self.extra)
