"""Projections along S besides the MIP, made in the MIP's streamed pass: what each line through
the volume holds, and how it becomes a network input channel.

A MIP is bone-bright across the whole cranium, so it hides the brain's outline. These planes see
it: the average HU (``mean``), the millimetres of bone and of soft tissue each line crosses
(``bone_mm``, ``tissue_mm``: a line along the skull wall runs through bone, one through the brain
mostly through tissue), and the soft tissue within 130 mm below the top of the head
(``top_tissue_mm``: the cranium's contents, without the neck that a head-and-neck field lays
beside them). docs/synthetic_data.md measures what they add.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from brainseg.data.cache import HU_OFFSET, from_png16, to_png16
from brainseg.data.nifti import NiftiVolume

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
        info = np.iinfo(self.stored.dtype) if bounds is not None else None
        if bounds is None or not all(float(b).is_integer() for b in bounds) or bounds[0] > info.max or bounds[1] < info.min:
            return np.clip(self.hu, low, high).sum(axis=axis, dtype=np.float64)  # float files, odd bounds, or a range the dtype cannot hold
        clipped = np.clip(self.stored, int(max(bounds[0], info.min)), int(min(bounds[1], info.max)))  # bounds outside the dtype clip nothing
        total = clipped.sum(axis=axis, dtype=np.int64)
        return total * self.volume.slope + self.volume.intercept * self.stored.shape[axis]


@dataclass(frozen=True, kw_only=True)
class ExtraProjection:
    """A projection along S besides the MIP: what each line through the volume holds, and how it
    becomes network input. Made in the MIP's streamed pass: each slab of the volume gives a
    partial sum (:meth:`slab_sum`), the slabs' sums are added, and the total is finished into the
    plane (:meth:`finish`)."""

    description: str
    air: float  # its value on a line through air only (padding around the field of view)
    span: float  # network input = (value - air) / span: about 0 to 1 over a head
    png_step: float  # resolution: values are kept as 16-bit round(value / png_step) + png_offset
    png_offset: int = 0

    def slab_sum(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> np.ndarray:
        """A slab's part of the sum, per line along ``axis``. ``ranks`` numbers the slab's voxels
        along it by their place along S in the volume (1 the most inferior, up to ``n_along``),
        ``slice_mm`` apart."""
        raise NotImplementedError

    def finish(self, total: np.ndarray, slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        """The sum over the whole volume -> the plane, in this projection's units."""
        raise NotImplementedError

    def normalize(self, values: np.ndarray) -> np.ndarray:
        return ((np.asarray(values, np.float32) - self.air) / self.span).astype(np.float32)

    def quantize(self, values: np.ndarray) -> np.ndarray:
        """Values -> their 16-bit cached form."""
        return to_png16(values, self.png_step, self.png_offset)

    def dequantize(self, stored: np.ndarray) -> np.ndarray:
        """The 16-bit cached form -> values (float32)."""
        return from_png16(stored, self.png_step, self.png_offset)


@dataclass(frozen=True, kw_only=True)
class LineTotal(ExtraProjection):
    """A line's voxels' HU clipped to ``hu_range`` and averaged (``average``), or the millimetres
    of it inside ``hu_range``."""

    hu_range: tuple[float, float]
    average: bool

    def slab_sum(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> np.ndarray:
        if self.average:
            return slab.clipped_sum(*self.hu_range, axis)
        return slab.within(*self.hu_range).sum(axis=axis, dtype=np.int32)

    def finish(self, total: np.ndarray, slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        return total * (1.0 / n_along if self.average else slice_mm)


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

    def slab_sum(self, slab: SlabValues, axis: int, ranks: np.ndarray, slice_mm: float, n_along: int) -> np.ndarray:
        """Per line, the tissue voxels in each layer (0 in the layers this slab does not reach)."""
        k = self.voxels_per_layer(slice_mm)
        layer = (ranks.astype(np.intp) - 1) // k
        bounds = np.flatnonzero(np.r_[True, layer[1:] != layer[:-1], True])  # runs of one layer along the axis
        tissue = slab.within(*SOFT_TISSUE_HU).view(np.uint8)
        counts = np.zeros((*np.delete(tissue.shape, axis), -(-n_along // k)), np.uint8)
        for start, stop in zip(bounds[:-1], bounds[1:]):  # a sum per run: numpy's reduceat is 20x slower here
            run = tissue[(slice(None),) * axis + (slice(start, stop),)]
            counts[..., layer[start]] = run.sum(axis=axis, dtype=np.uint8)
        return counts

    def finish(self, total: np.ndarray, slice_mm: float, n_along: int, pixel_mm2: float) -> np.ndarray:
        k = self.voxels_per_layer(slice_mm)  # total: tissue voxels per line and layer
        slices = np.bincount(np.arange(n_along) // k)  # per layer (the most superior one may be thinner)
        area_mm2 = total.reshape(-1, total.shape[-1]).sum(axis=0, dtype=np.int64) * pixel_mm2 / slices
        held = np.flatnonzero(area_mm2 >= self.top_area_mm2)
        if held.size == 0:  # no head: nothing below its top
            return np.zeros(total.shape[:-1], np.float32)
        top = int(held[-1])
        n_band = max(1, round(self.band_mm / (k * slice_mm)))
        band = total[..., max(0, top + 1 - n_band) : top + 1].sum(axis=-1, dtype=np.int32)
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
