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
also make :data:`EXTRA_PROJECTIONS`, which see what the MIP hides: how many millimetres of bone
and of soft tissue each line crosses (a line along the skull wall runs through bone, one through
the brain mostly through tissue), the average HU, and the soft tissue within 130 mm of the top
of the head (the cranium's contents, without the neck that a head-and-neck field lays over
them). The MIP model takes them as extra input channels (docs/synthetic_data.md measures what
they add).
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


SOFT_TISSUE_HU = (0.0, 100.0)  # brain, muscle, blood; not fat, contrast-filled vessels or bone


class SlabValues:
    """One slab of a volume's stored values, and what the extra projections ask of it, each made
    once: the voxels within an HU range, and HU clipped to a range and summed along an axis.

    Integer files (nearly all CT) are tested and summed in their stored integers, with the HU
    bounds mapped through the rescale slope and intercept: exact, and without converting the
    slab to float. Float files, and clip bounds that fall between stored integers, use HU.
    """

    def __init__(self, stored: np.ndarray, volume: NiftiVolume):
        self.stored, self.volume = stored, volume
        self._hu: np.ndarray | None = None
        self._within: dict[tuple[float, float], np.ndarray] = {}

    @property
    def hu(self) -> np.ndarray:
        if self._hu is None:
            self._hu = self.volume.scale(self.stored)
        return self._hu

    def _stored_bounds(self, low: float, high: float) -> tuple[float, float] | None:
        """The stored values whose HU lie in [low, high], as a real interval (None for float files)."""
        if self.stored.dtype.kind not in "iu":
            return None
        slope, intercept = self.volume.slope, self.volume.intercept
        bounds = sorted(((low - intercept) / slope, (high - intercept) / slope))
        return bounds[0], bounds[1]

    def within(self, low: float, high: float) -> np.ndarray:
        """Voxels whose HU lie in [low, high] (``high`` may be inf)."""
        key = (low, high)
        if key not in self._within:
            bounds = self._stored_bounds(low, high)
            if bounds is None:
                values, first, last, lowest, highest = self.hu, low, high, -np.inf, np.inf
            else:  # whole-number bounds inside the dtype's range: compared without casting the slab
                info = np.iinfo(self.stored.dtype)
                values, lowest, highest = self.stored, info.min, info.max
                first, last = int(max(np.ceil(bounds[0]), lowest)), int(min(np.floor(bounds[1]), highest))
            inside = values >= first if first > lowest else np.ones(values.shape, bool)
            if last < highest:
                inside &= values <= last
            self._within[key] = inside
        return self._within[key]

    def clipped_sum(self, low: float, high: float, axis: int) -> np.ndarray:
        """Per line along ``axis``: the sum of its voxels' HU clipped to [low, high] (float64)."""
        bounds = self._stored_bounds(low, high)
        if bounds is None or not all(float(b).is_integer() for b in bounds):
            return np.clip(self.hu, low, high).sum(axis=axis, dtype=np.float64)
        info = np.iinfo(self.stored.dtype)
        clipped = np.clip(self.stored, int(max(bounds[0], info.min)), int(min(bounds[1], info.max)))  # bounds outside the dtype clip nothing
        total = clipped.sum(axis=axis, dtype=np.int64)
        return total * self.volume.slope + self.volume.intercept * self.stored.shape[axis]


@dataclass(frozen=True, kw_only=True)
class ExtraProjection:
    """A projection along S besides the MIP: what each line through the volume holds, and how it
    becomes network input. Made in the MIP's streamed pass: each slab of the volume gives partial
    planes (:meth:`slab_parts`), joined across slabs with :attr:`combine` and finished into one
    plane (:meth:`finish`)."""

    description: str
    air: float  # its value on a line through air only (padding around the field of view)
    span: float  # network input = (value - air) / span: about 0 to 1 over a head
    png_step: float  # resolution: values are kept as 16-bit round(value / png_step) + png_offset
    png_offset: int = 0
    combine: tuple = (np.add,)  # one ufunc per partial plane, joining two slabs' partial planes

    def slab_parts(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> list[np.ndarray]:
        """Partial planes of a slab whose lines run along ``axis``. ``ranks`` numbers the
        slab's voxels along it by their place along S in the volume (1 the most inferior, up to
        ``n_along``), ``slice_mm`` apart."""
        raise NotImplementedError

    def finish(self, parts: list[np.ndarray], slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        """The whole volume's joined partial planes -> the plane, in this projection's units."""
        raise NotImplementedError

    def normalize(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, np.float32) - self.air) / self.span).astype(np.float32)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Values -> their 16-bit cached form."""
        return np.clip(np.rint(np.asarray(values) / self.png_step) + self.png_offset, 0, 65535).astype(np.uint16)

    def dequantize(self, stored: np.ndarray) -> np.ndarray:
        """The 16-bit cached form -> values (float32)."""
        return ((stored.astype(np.float32) - self.png_offset) * np.float32(self.png_step)).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class LineTotal(ExtraProjection):
    """A line's voxels' HU clipped to ``hu_range`` and averaged (``average``), or the millimetres
    of it inside ``hu_range``."""

    hu_range: tuple[float, float]
    average: bool

    def slab_parts(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> list[np.ndarray]:
        if self.average:
            return [slab.clipped_sum(*self.hu_range, axis)]
        return [slab.within(*self.hu_range).sum(axis=axis, dtype=np.int32)]

    def finish(self, parts: list[np.ndarray], slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        return parts[0] * (1.0 / n_along if self.average else slice_mm)


@dataclass(frozen=True, kw_only=True)
class TissueBelowTop(ExtraProjection):
    """Millimetres of soft tissue a line crosses within ``band_mm`` below the top of the head.

    The top of the head is the most superior layer of the volume (``layer_mm`` thick) holding on
    average ``top_area_mm2`` of soft tissue per slice. Below it, the cranium fills the band: a
    line through the brain crosses about 100 mm of tissue there, a line beside it a few mm of
    scalp. The neck, face and shoulders, which an axial MIP of a head-and-neck field lays over
    and beside the brain's footprint, lie below the band and leave this plane dark. A
    craniectomy's brain still fills the band, so the plane does not need the vault.

    One pass: each line's tissue is counted per layer along S, and the band, known only once
    the top is, sums whole layers."""

    band_mm: float = 130.0
    layer_mm: float = 5.0
    top_area_mm2: float = 500.0

    def voxels_per_layer(self, slice_mm: float) -> int:
        return int(np.clip(round(self.layer_mm / slice_mm), 1, 255))  # counts are kept as uint8

    def slab_parts(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> list[np.ndarray]:
        """Per line, the tissue voxels in each layer (0 in the layers this slab does not reach)."""
        k = self.voxels_per_layer(slice_mm)
        layer = (ranks.astype(np.intp) - 1) // k
        bounds = np.flatnonzero(np.r_[True, layer[1:] != layer[:-1], True])  # runs of one layer along the axis
        tissue = slab.within(*SOFT_TISSUE_HU).view(np.uint8)
        counts = np.zeros((*np.delete(tissue.shape, axis), -(-n_along // k)), np.uint8)
        for start, stop in zip(bounds[:-1], bounds[1:]):  # a sum per run: numpy's reduceat is 20x slower here
            run = tissue[(slice(None),) * axis + (slice(start, stop),)]
            counts[..., layer[start]] = run.sum(axis=axis, dtype=np.uint8)
        return [counts]

    def finish(self, parts: list[np.ndarray], slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        counts = parts[0]
        k = self.voxels_per_layer(slice_mm)
        slices = np.bincount(np.arange(n_along) // k)  # per layer (the most superior one may be thinner)
        area_mm2 = counts.reshape(-1, counts.shape[-1]).sum(axis=0, dtype=np.int64) * pixel_mm2 / slices
        held = np.flatnonzero(area_mm2 >= self.top_area_mm2)
        if held.size == 0:  # no head: nothing below its top
            return np.zeros(counts.shape[:-1], np.float32)
        top = int(held[-1])
        n_band = max(1, round(self.band_mm / (k * slice_mm)))
        band = counts[..., max(0, top + 1 - n_band) : top + 1].sum(axis=-1, dtype=np.int32)
        return band.astype(np.float32) * np.float32(slice_mm)


EXTRA_PROJECTIONS = {
    "mean": LineTotal(description="average HU along the line, each voxel clipped to [-1000, 2000]", hu_range=(-1000.0, 2000.0),
                      average=True, air=-1000.0, span=2000.0, png_step=1.0, png_offset=HU_OFFSET),
    "bone_mm": LineTotal(description="millimetres of bone (>= 300 HU) along the line", hu_range=(300.0, np.inf), average=False,
                         air=0.0, span=100.0, png_step=0.1),
    "tissue_mm": LineTotal(description="millimetres of soft tissue (0 to 100 HU) along the line", hu_range=SOFT_TISSUE_HU,
                           average=False, air=0.0, span=200.0, png_step=0.1),
    "top_tissue_mm": TissueBelowTop(description="millimetres of soft tissue (0 to 100 HU) along the line within 130 mm below "
                                    "the top of the head", air=0.0, span=130.0, png_step=0.1),
}


def check_extra_projections(names) -> tuple[str, ...]:
    """``names`` as a tuple, each one of :data:`EXTRA_PROJECTIONS`, none twice.

    Raises:
        ValueError: an unknown or repeated name.
    """
    names = tuple(str(name) for name in (names or ()))
    unknown = [name for name in names if name not in EXTRA_PROJECTIONS]
    if unknown or len(set(names)) != len(names):
        raise ValueError(f"extra projections must be distinct names among {', '.join(EXTRA_PROJECTIONS)}; got {list(names)}")
    return names


def normalize_extra(planes: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(len(names), H, W) extra projections in their own units -> network input channels."""
    return np.stack([EXTRA_PROJECTIONS[name].normalize(plane) for name, plane in zip(names, planes, strict=True)]) if names else np.zeros((0, *planes.shape[1:]), np.float32)


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
                parts += EXTRA_PROJECTIONS[name].slab_parts(values, ax, ranks, slice_mm, n_along)
        return parts

    combine = [np.maximum if take_max else np.minimum] + [join for name in extra for join in EXTRA_PROJECTIONS[name].combine]
    mip, *partials = _reduce_slabs(volume, axis, reduce_slab, combine)
    mip, spacing = _to_display(volume, volume.scale(mip), axis)
    planes = {}
    for name in extra:  # at the cache's resolution, so a cached case equals a fresh one
        kind = EXTRA_PROJECTIONS[name]
        parts, partials = partials[: len(kind.combine)], partials[len(kind.combine) :]
        plane = kind.finish(parts, slice_mm, n_along, pixel_mm2)
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
        hu = pixels.astype(np.float32) - HU_OFFSET
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
        stored = np.clip(np.rint(projection.image) + HU_OFFSET, 0, 65535).astype(np.uint16)
        write_png_atomically(stored, self.image_path(case_id), text)


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
