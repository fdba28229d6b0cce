"""Axial slices on a coarse in-plane grid, and the exact way back to the stored voxel grid.

Training and volume inference share this geometry, so a network sees the same kind of slice
in both. A volume is reoriented to RAS voxel order by flips and axis permutations only
(nibabel's ``io_orientation``: no interpolation, so the inverse is exact), cut into axial
slices along the axis nearest to S, and each slice is resampled to ``spacing_mm`` pixels
(antialiased bilinear, pixel areas aligned: ``align_corners=False``). Going back, values are
upsampled to the stored in-plane shape with the same alignment and un-flipped/un-permuted;
the through-plane grid is never resampled. Gantry tilt (a sheared affine) is kept as it is:
slices are taken in voxel space. Flips and transposes commute with the resampling, so volumes
are read and written in their stored layout and only the coarse slices are reoriented
(:class:`StoredSlices`): the same result up to float rounding, without a full-resolution copy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    io_orientation,
    ornt_transform,
)

from brainseg.data.nifti import NiftiVolume
from brainseg.errors import BadCaseError

RAS = axcodes2ornt("RAS")


@dataclass(frozen=True)
class AxialGrid:
    """How a stored volume maps to RAS-ordered axial slices at ``spacing_mm``."""

    orientation: np.ndarray  # nibabel ornt: storage axis -> (RAS axis, flip)
    shape: tuple[int, int, int]  # RAS voxel order (R, A, S)
    spacing: tuple[float, float, float]  # mm along (R, A, S) voxel axes
    coarse_shape: tuple[int, int]  # in-plane (R, A) shape after resampling
    spacing_mm: float  # in-plane target pixel size

    @property
    def n_slices(self) -> int:
        return self.shape[2]

    @property
    def coarse_spacing(self) -> tuple[float, float]:
        """Actual pixel size (mm) on the coarse grid, (R, A); close to ``spacing_mm``."""
        return (self.shape[0] * self.spacing[0] / self.coarse_shape[0], self.shape[1] * self.spacing[1] / self.coarse_shape[1])


def plan_axial_grid(affine: np.ndarray, shape: tuple[int, int, int], spacing_mm: float | None) -> AxialGrid:
    """The axial grid of a volume with this stored ``affine`` and ``shape``.

    Args:
        spacing_mm: in-plane pixel size of the slices; ``None`` keeps the stored pixels.
    """
    orientation = io_orientation(affine)
    order = np.argsort(orientation[:, 0])  # storage axis that holds R, A, S
    voxel = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    ras_shape = tuple(int(shape[axis]) for axis in order)
    ras_spacing = tuple(float(voxel[axis]) for axis in order)
    if spacing_mm is None:
        coarse = ras_shape[:2]
    else:
        if spacing_mm <= 0:
            raise ValueError(f"spacing_mm must be > 0, got {spacing_mm}")
        coarse = tuple(max(1, int(round(n * s / spacing_mm))) for n, s in zip(ras_shape[:2], ras_spacing[:2]))
    return AxialGrid(orientation, ras_shape, ras_spacing, coarse, float(spacing_mm or min(ras_spacing[:2])))


def to_ras(array: np.ndarray, grid: AxialGrid) -> np.ndarray:
    """Stored-order array -> RAS voxel order (a view: flips and transposes only)."""
    return apply_orientation(array, grid.orientation)


def from_ras(array: np.ndarray, grid: AxialGrid) -> np.ndarray:
    """Inverse of :func:`to_ras` (a view)."""
    return apply_orientation(array, ornt_transform(RAS, grid.orientation))


def resample_slices(slices: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Resize a (N, H, W) or (N, C, H, W) float stack in-plane; antialiased when shrinking."""
    batch = slices[:, None] if slices.ndim == 3 else slices
    if tuple(batch.shape[-2:]) == tuple(shape):
        out = batch
    else:
        shrink = shape[0] < batch.shape[-2] or shape[1] < batch.shape[-1]
        out = F.interpolate(batch, size=tuple(shape), mode="bilinear", align_corners=False, antialias=shrink)
    return out[:, 0] if slices.ndim == 3 else out


def context_indices(index: int | np.ndarray, n_slices: int, context: int) -> np.ndarray:
    """Slice indices ``index - context ... index + context``, clamped at the ends of the stack."""
    offsets = np.arange(-context, context + 1)
    return np.clip(np.asarray(index)[..., None] + offsets, 0, n_slices - 1)


def pad_to_multiple(stack: torch.Tensor, divisor: int, value: float) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Pad the last two dims up to multiples of ``divisor``, centred; returns the padding (l, r, t, b)."""
    height, width = stack.shape[-2:]
    extra_h, extra_w = -height % divisor, -width % divisor
    pad = (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2)
    if not any(pad):
        return stack, pad
    return F.pad(stack, pad, value=value), pad


def crop_padding(stack: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:
    """Undo :func:`pad_to_multiple`."""
    left, right, top, bottom = pad
    return stack[..., top : stack.shape[-2] - bottom, left : stack.shape[-1] - right]


def crop_around(stack: np.ndarray, size: int | tuple[int, int], centre: tuple[float, float], value: float) -> np.ndarray:
    """Cut a ``size`` crop (a side, or (rows, cols)) centred near ``centre`` from the last two
    dims, padding with ``value``.

    The crop stays inside the image when the image is larger (training crops around the brain),
    and the image sits in the middle of the crop when it is smaller (whole slices padded to a
    common shape for validation).
    """
    rows, cols = (size, size) if isinstance(size, int) else size
    out = np.full((*stack.shape[:-2], rows, cols), value, dtype=stack.dtype)
    starts = []
    for length, middle, side in zip(stack.shape[-2:], centre, (rows, cols)):
        if length <= side:
            starts.append(-((side - length) // 2))
        else:
            starts.append(int(np.clip(round(middle - side / 2), 0, length - side)))
    (r0, c0), (h, w) = starts, stack.shape[-2:]
    src_r, src_c = slice(max(r0, 0), min(r0 + rows, h)), slice(max(c0, 0), min(c0 + cols, w))
    dst_r = slice(src_r.start - r0, src_r.stop - r0)
    dst_c = slice(src_c.start - c0, src_c.stop - c0)
    out[..., dst_r, dst_c] = stack[..., src_r, src_c]
    return out


def iter_axial_batches(ras: np.ndarray, batch_slices: int):
    """Yield ``(z0, slices)`` with ``slices`` a (B, R, A) array copied out of a RAS-ordered volume."""
    for z0 in range(0, ras.shape[2], batch_slices):
        yield z0, np.ascontiguousarray(np.moveaxis(ras[:, :, z0 : z0 + batch_slices], 2, 0))


@dataclass(frozen=True)
class StoredSlices:
    """How axial slices lie in a stored volume: along storage ``axis``, each a (rows, cols) plane
    of the other two storage axes, last first (the order their voxels lie in memory in a
    Fortran-ordered array, as NIfTI stores them). Planes convert to and from RAS (R, A) order by
    a transpose and flips, which commute with in-plane resampling: so full-resolution slices
    are resampled in their stored layout and only coarse ones are reoriented."""

    axis: int  # storage axis along S
    rows: int  # storage axis of a plane's rows
    cols: int  # storage axis of a plane's columns
    ras_axis: tuple[int, int, int]  # RAS axis of each storage axis
    flipped: tuple[bool, bool, bool]  # storage axis runs against RAS

    @classmethod
    def of(cls, grid: AxialGrid) -> "StoredSlices":
        ras_axis = tuple(int(a) for a in grid.orientation[:, 0])
        axis = ras_axis.index(2)
        rows, cols = [a for a in range(3) if a != axis][::-1]
        return cls(axis, rows, cols, ras_axis, tuple(bool(f < 0) for f in grid.orientation[:, 1]))

    def plane_shape(self, ras_shape: tuple[int, int]) -> tuple[int, int]:
        """A plane's stored (rows, cols) shape, from its (R, A) shape."""
        return ras_shape[self.ras_axis[self.rows]], ras_shape[self.ras_axis[self.cols]]

    def to_ras(self, planes: torch.Tensor) -> torch.Tensor:
        """(B, rows, cols) stored planes -> (B, R, A)."""
        if self.ras_axis[self.rows] == 1:  # rows run along A
            planes = planes.transpose(1, 2)
        flips = [1 + self.ras_axis[a] for a in (self.rows, self.cols) if self.flipped[a]]
        return planes.flip(flips) if flips else planes

    def from_ras(self, planes: torch.Tensor) -> torch.Tensor:
        """(B, R, A) -> (B, rows, cols) stored planes."""
        flips = [1 + self.ras_axis[a] for a in (self.rows, self.cols) if self.flipped[a]]
        planes = planes.flip(flips) if flips else planes
        return planes.transpose(1, 2) if self.ras_axis[self.rows] == 1 else planes

    def view(self, array: np.ndarray) -> np.ndarray:
        """A stored-order array as (stored slice, rows, cols): a view, for writing planes into."""
        return np.moveaxis(array, self.axis, 0).transpose(0, 2, 1)

    def along_s(self, first: int, planes: torch.Tensor, n: int) -> tuple[slice, torch.Tensor]:
        """Stored slices ``first ...`` -> where they go among the ``n`` RAS slices, and the planes in
        that order (reversed when S is stored from the vertex down). Its own inverse: RAS -> stored."""
        if self.flipped[self.axis]:
            return slice(n - first - len(planes), n - first), planes.flip(0)
        return slice(first, first + len(planes)), planes

    def batches(self, volume: NiftiVolume, batch_slices: int = 32):
        """Yield ``(first stored slice, planes)``, planes a C-contiguous (B, rows, cols) array.
        Slabs are streamed from the file when S is the slowest storage axis, as scanners write;
        other layouts are read whole first."""
        if self.axis == 2:
            for first, slab in volume.iter_slabs():  # (nx, ny, count) in Fortran order
                yield first, slab.T
            return
        planes = self.view(volume.read())
        for first in range(0, len(planes), batch_slices):
            yield first, np.ascontiguousarray(planes[first : first + batch_slices])


def read_axial_hu(volume: NiftiVolume, grid: AxialGrid) -> torch.Tensor:
    """A CT volume as (S, R, A) axial slices in HU on the coarse grid, float32.

    Slices are resampled in their stored layout and reoriented on the coarse grid
    (:class:`StoredSlices`), and the rescale slope and intercept (linear) are applied there too:
    the full-resolution volume is streamed once, a batch of slices at a time, and never exists
    as floats.

    Raises:
        BadCaseError: NaN or Inf voxels, real values beyond float32, or unreadable data.
    """
    layout = StoredSlices.of(grid)
    target = layout.plane_shape(grid.coarse_shape)
    out = torch.empty((grid.n_slices, *grid.coarse_shape), dtype=torch.float32)
    for first, planes in layout.batches(volume):
        if planes.dtype.kind == "f" and not np.isfinite(planes).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        coarse = resample_slices(torch.from_numpy(np.array(planes, dtype=np.float32)), target)
        where, hu = layout.along_s(first, layout.to_ras(torch.from_numpy(volume.scale(coarse.numpy()))), grid.n_slices)
        out[where] = hu
    return out


def write_axial(stack: torch.Tensor, grid: AxialGrid, out: np.ndarray, threshold: float | None, batch_slices: int = 16) -> None:
    """Upsample coarse (S, R, A) values into ``out``, a stored-order array of the volume's shape,
    thresholded (``> threshold``) if given. Planes are reoriented on the coarse grid and
    upsampled in their stored layout, so each batch is written into ``out`` as a block."""
    layout = StoredSlices.of(grid)
    target, view, n = layout.plane_shape(grid.shape[:2]), layout.view(out), grid.n_slices
    for z0 in range(0, n, batch_slices):
        planes = resample_slices(layout.from_ras(stack[z0 : z0 + batch_slices]), target)
        where, planes = layout.along_s(z0, planes > threshold if threshold is not None else planes, n)
        view[where] = planes.numpy()


def resample_mask(mask: np.ndarray, grid: AxialGrid, batch_slices: int = 32) -> np.ndarray:
    """A bool mask (stored order) as (S, R, A) uint8 {0, 1} slices on the coarse grid.

    Each coarse pixel is brain when at least half of its area is (antialiased resampling of
    the binary mask, then 0.5).
    """
    ras = to_ras(mask, grid)
    out = np.empty((grid.n_slices, *grid.coarse_shape), dtype=np.uint8)
    for z0, slices in iter_axial_batches(ras, batch_slices):
        fraction = resample_slices(torch.from_numpy(slices.astype(np.float32)), grid.coarse_shape)
        out[z0 : z0 + len(fraction)] = (fraction >= 0.5).numpy()
    return out
