"""Painting analytic shapes into a label volume, one slab of slices at a time.

A shape declares a head-frame bounding box and paints labels given head-frame coordinates.
The canvas maps the box's corners to voxel indices (the voxel->head map is affine, so the
corners bound it exactly) and hands the shape only the voxels inside, which keeps small
structures (vessels, ventricles) cheap on large grids. Working in slabs keeps the float32
coordinate temporaries a few MB whatever the volume size.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=None)
def _membership(labels: tuple[int, ...]) -> np.ndarray:
    """Lookup table: True for the given labels (faster than np.isin on volumes)."""
    table = np.zeros(256, bool)
    table[list(labels)] = True
    return table


def _upsample(values: np.ndarray, f: int, n: int, axis: int) -> np.ndarray:
    """Linear interpolation by an integer factor ``f`` along ``axis``, cropped to ``n`` samples."""
    v = np.moveaxis(values, axis, -1)
    lo, hi = v[..., :-1], v[..., 1:]
    out = np.empty(v.shape[:-1] + (f * lo.shape[-1],), np.float32)
    step = hi - lo
    for r in range(f):
        out[..., r::f] = lo + step * np.float32(r / f) if r else lo
    return np.moveaxis(out[..., :n], -1, axis)


class Block:
    """Voxels handed to a shape: views into the slab's labels and mask, and their coordinates.

    ``x``, ``y``, ``z`` (head frame, float32 mm) are computed on first use; ``smooth`` evaluates
    a smooth field on a coarser in-plane grid and interpolates it, which is exact enough for
    large, gently curved surfaces and several times cheaper for compound fields.
    """

    def __init__(self, labels, mask, m, i0, i1, j0, j1, ks, coarse):
        self.labels, self.mask = labels, mask  # uint8 / bool (k, j, i), writable views
        self._m, self._ks, self._coarse = m, ks, coarse
        self._i = np.arange(i0, i1, dtype=np.float32)
        self._j = np.arange(j0, j1, dtype=np.float32)
        self._xyz = None

    def coords(self, i: np.ndarray, j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Head-frame coordinates of the grid ``ks`` x ``j`` x ``i`` (1-D index arrays)."""
        m, k = self._m, self._ks[:, None, None]
        i, j = i[None, None, :], j[None, :, None]
        return tuple(m[a, 0] * i + m[a, 1] * j + (m[a, 2] * k + m[a, 3]) for a in range(3))

    @property
    def xyz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._xyz is None:
            self._xyz = self.coords(self._i, self._j)
        return self._xyz

    x = property(lambda self: self.xyz[0])
    y = property(lambda self: self.xyz[1])
    z = property(lambda self: self.xyz[2])

    def smooth(self, field) -> np.ndarray:
        """``field(x, y, z)`` on every voxel, evaluated every ``coarse`` voxels in-plane and interpolated."""
        f = self._coarse
        ni, nj = len(self._i), len(self._j)
        if f == 1 or min(ni, nj) < 2 * f:
            return field(*self.xyz)
        ci = self._i[0] + f * np.arange((ni - 1) // f + 2, dtype=np.float32)
        cj = self._j[0] + f * np.arange((nj - 1) // f + 2, dtype=np.float32)
        values = field(*self.coords(ci, cj))
        return _upsample(_upsample(values, f, ni, axis=2), f, nj, axis=1)

    def set(self, label: int, where: np.ndarray, over: tuple[int, ...] | None = None) -> None:
        """Label voxels in ``where``; with ``over``, only those currently holding one of ``over``."""
        if over is not None:
            where = where & _membership(over)[self.labels]
        np.copyto(self.labels, np.uint8(label), where=where)


class Shape:
    """Something that occupies a head-frame box and labels the voxels inside it."""

    lo: np.ndarray  # head-frame box corners, mm
    hi: np.ndarray

    def paint(self, block: Block) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class Canvas:
    """Paints shapes into the labels and mask of one slab of (possibly fractional) slice positions.

    Each shape's voxel bounding box is computed once per case (``voxel_boxes``); a slab then
    visits only the shapes whose box reaches it.
    """

    def __init__(self, voxel_to_head: np.ndarray, in_plane: tuple[int, int], shapes: list[Shape], coarse: int = 1):
        self.voxel_to_head = voxel_to_head
        self.coarse = coarse
        self.ni, self.nj = in_plane
        self.shapes = shapes
        self.boxes = self.voxel_boxes(shapes)

    def voxel_boxes(self, shapes: list[Shape]) -> np.ndarray:
        """Per shape: i0, i1, j0, j1 (index ranges) and the k interval its head-frame box maps to."""
        head_to_voxel = np.linalg.inv(self.voxel_to_head)
        lo = np.array([s.lo for s in shapes], float)
        hi = np.array([s.hi for s in shapes], float)
        corners = np.stack([np.where(np.array(bits)[None, :], hi, lo) for bits in np.ndindex(2, 2, 2)], axis=1)
        idx = corners @ head_to_voxel[:3, :3].T + head_to_voxel[:3, 3]  # (shapes, 8, 3)
        first, last = idx.min(axis=1), idx.max(axis=1)
        return np.column_stack([
            np.clip(np.floor(first[:, 0]), 0, self.ni),
            np.clip(np.ceil(last[:, 0]) + 1, 0, self.ni),
            np.clip(np.floor(first[:, 1]), 0, self.nj),
            np.clip(np.ceil(last[:, 1]) + 1, 0, self.nj),
            first[:, 2],
            last[:, 2],
        ])

    def paint_slab(self, k_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (uint8) and cavity mask (bool), shaped (k, j, i), for slices at ``k_positions``."""
        ks = np.asarray(k_positions, np.float64)
        labels = np.zeros((len(ks), self.nj, self.ni), np.uint8)
        mask = np.zeros(labels.shape, bool)
        b = self.boxes
        hits = (b[:, 0] < b[:, 1]) & (b[:, 2] < b[:, 3]) & (b[:, 5] >= ks[0]) & (b[:, 4] <= ks[-1])
        m = self.voxel_to_head.astype(np.float32)
        for n in np.flatnonzero(hits):
            i0, i1, j0, j1 = (int(v) for v in b[n, :4])
            k0, k1 = np.searchsorted(ks, b[n, 4]), np.searchsorted(ks, b[n, 5], side="right")
            if k0 >= k1:
                continue
            view = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
            block = Block(labels[view], mask[view], m, i0, i1, j0, j1, ks[k0:k1].astype(np.float32), self.coarse)
            self.shapes[n].paint(block)
        return labels, mask
