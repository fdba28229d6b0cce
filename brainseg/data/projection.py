"""Maximum intensity projection along the patient's superior-inferior axis, streamed from disk.

Each volume is projected along the storage axis that nibabel's orientation maps to S, whatever
the file's storage order (RAS, LPS, permuted axes), and the 2-D result is put in one display
orientation: radiological axial view, anterior at the top and the patient's right on the left.
The same volume stored in any orientation gives the same MIP.

The image MIP is the maximum of the stored values (the minimum when the rescale slope is
negative), scaled to HU afterwards. The mask projection is the union of the mask along the
axis and stays {0, 1}. This is one of the two representations of a case
(:class:`MipRepresentation`; the other is :mod:`brainseg.data.slices`), with its cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from brainseg.data.cache import read_png, write_png_atomically
from brainseg.data.cases import OpenedCase
from brainseg.data.nifti import NiftiVolume
from brainseg.errors import BadCaseError

SUPERIOR_AXIS = 2  # index of S in RAS
HU_OFFSET = 32768  # 16-bit MIP PNGs hold HU + 32768


@dataclass
class Projection:
    """A case's MIPs in display orientation, with the pixel size they came with."""

    image: np.ndarray  # float32 HU, (rows, cols)
    mask: np.ndarray | None  # uint8 {0, 1}, same shape
    spacing: tuple[float, float]  # mm per pixel along (rows, cols)
    warnings: list[str] = field(default_factory=list)


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


def _reduce_slabs(volume: NiftiVolume, axis: int, reduce_slab, combine) -> np.ndarray:
    """Stream ``volume`` and reduce it along storage ``axis`` with ``reduce_slab(slab, axis)``."""
    nx, ny, nz = volume.shape
    result = None
    for start, slab in volume.iter_slabs():
        part = reduce_slab(slab, axis)
        if axis == 2:
            result = part if result is None else combine(result, part)
        else:
            if result is None:
                result = np.empty((ny if axis == 0 else nx, nz), dtype=part.dtype)
            result[:, start : start + slab.shape[2]] = part
    return result


def project_image(volume: NiftiVolume) -> tuple[np.ndarray, tuple[float, float]]:
    """HU MIP of a CT volume, in display orientation, with its pixel spacing.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    axis = _projection_axis(volume)
    take_max = volume.slope > 0
    is_float = volume.dtype.kind == "f"

    def reduce_slab(slab: np.ndarray, ax: int) -> np.ndarray:
        if is_float and not np.isfinite(slab).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        return slab.max(axis=ax) if take_max else slab.min(axis=ax)

    projected = _reduce_slabs(volume, axis, reduce_slab, np.maximum if take_max else np.minimum)
    return _to_display(volume, volume.scale(projected), axis)


def project_mask(mask: np.ndarray, volume: NiftiVolume) -> np.ndarray:
    """Union of a bool mask (``volume``'s stored order) along S, as uint8 {0, 1} in display orientation."""
    axis = _projection_axis(volume)
    projected, _ = _to_display(volume, mask.any(axis=axis).astype(np.uint8), axis)
    return projected


def project_case(case: OpenedCase) -> Projection:
    """The MIP of a validated case's image, and the union of its mask (if it has one), along S.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    image_mip, spacing = project_image(case.image)
    mask_mip = None if case.mask is None else project_mask(case.mask, case.image)
    return Projection(image_mip, mask_mip, spacing, list(case.warnings))


class MipCache:
    """Cached MIP pairs under ``root``: ``images/<CaseID>.png`` (16-bit, HU + 32768, so any window
    or normalization can be applied later without re-reading the volume) and ``masks/<CaseID>.png``
    (8-bit, 0/255). Each PNG carries its cache key in a text chunk; a stale or unreadable PNG is a miss."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.masks_dir = self.root / "masks"

    def image_path(self, case_id: str) -> Path:
        return self.images_dir / f"{case_id}.png"

    def mask_path(self, case_id: str) -> Path:
        return self.masks_dir / f"{case_id}.png"

    def load(self, case_id: str, key: str) -> Projection | None:
        """The cached projection if both PNGs exist, decode and carry ``key``; else ``None``."""
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
        hu = pixels.astype(np.float32) - HU_OFFSET
        spacing = tuple(float(s) for s in text["spacing"].split(","))
        return Projection(hu, mask, spacing, json.loads(text.get("warnings", "[]")))

    def store(self, case_id: str, key: str, projection: Projection) -> None:
        """Write the pair atomically; the mask first, so a found image implies a complete pair."""
        text = {
            "brainseg-key": key,
            "spacing": ",".join(repr(float(s)) for s in projection.spacing),  # exact: a cached case equals a fresh one
            "has-mask": "1" if projection.mask is not None else "0",
            "warnings": json.dumps(projection.warnings),
        }
        if projection.mask is not None:
            write_png_atomically((projection.mask > 0).astype(np.uint8) * 255, self.mask_path(case_id), text)
        stored = np.clip(np.rint(projection.image) + HU_OFFSET, 0, 65535).astype(np.uint16)
        write_png_atomically(stored, self.image_path(case_id), text)


@dataclass(frozen=True)
class MipRepresentation:
    """A case as its MIP along S: the 2-D footprint the MIP model learns (``mode=mip``)."""

    name: str = "MIPs"
    cache_folder: str = "mip"

    def settings(self) -> dict:
        return {"projection": "mip", "axis": "S", "orientation": "radiological"}

    def make(self, case: OpenedCase) -> Projection:
        return project_case(case)

    def cache(self, root: str | Path) -> MipCache:
        return MipCache(root)
