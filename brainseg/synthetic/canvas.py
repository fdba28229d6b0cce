"""Painting analytic shapes into a label volume, one slab of slices at a time.

A shape declares an anatomy-frame bounding box and paints labels given anatomy-frame
coordinates. The canvas maps the box to voxel indices once per case (the voxel->anatomy
map is affine) and hands the shape only the voxels inside, which keeps small structures
(vessels, ventricles) cheap on large grids; large shapes are painted brick by brick
(``tiles``). Working in slabs keeps temporaries a few MB whatever the volume size, and the
slab arrays are reused from slab to slab.
"""

from __future__ import annotations

import numpy as np

from .tiles import TiledShape, paint_tiled, tile_size
from .voxels import F, Shape, Voxels, member


class Block(Voxels):
    """A box of voxels ``ks`` x ``j`` x ``i``: views into the slab's labels and mask."""

    def __init__(self, labels, mask, m, i0, i1, j0, j1, ks, to_voxel=None):
        self.labels, self.mask = labels, mask  # uint8 / bool (k, j, i), writable views
        self._m, self._ks, self._to_voxel = m, ks, to_voxel  # voxel -> anatomy (float32), anatomy -> voxel
        self._i = np.arange(i0, i1, dtype=F)
        self._j = np.arange(j0, j1, dtype=F)

    def capsule_boxes(self, p0: np.ndarray, p1: np.ndarray, radius: np.ndarray):
        """Sub-boxes of the block around capsules (anatomy frame: segments p0-p1 (n, 3), radii (n,)), all of one size.

        Returns which capsules reach the block (bool, n), the origins (k, j, i) of their boxes
        and the common size (the largest box's).
        """
        a, t = self._to_voxel[:3, :3], self._to_voxel[:3, 3]
        v0, v1 = p0 @ a.T + t, p1 @ a.T + t  # voxel (i, j, k position)
        reach = radius[:, None] * np.linalg.norm(a, axis=1)  # a ball's half-extent along each voxel axis
        first, last = np.minimum(v0, v1) - reach, np.maximum(v0, v1) + reach
        shape = self.labels.shape
        start = np.column_stack([np.searchsorted(self._ks, first[:, 2]),
                                 np.floor(first[:, 1]) - self._j[0], np.floor(first[:, 0]) - self._i[0]])
        stop = np.column_stack([np.searchsorted(self._ks, last[:, 2], side="right"),
                                np.ceil(last[:, 1]) + 1 - self._j[0], np.ceil(last[:, 0]) + 1 - self._i[0]])
        start, stop = np.clip(start, 0, shape).astype(int), np.clip(stop, 0, shape).astype(int)
        inside = np.all(stop > start, axis=1)
        size = (stop - start)[inside].max(axis=0) if inside.any() else np.zeros(3, int)
        origin = np.minimum(start[inside], np.asarray(shape) - size)  # keeps the common size inside the block
        return inside, origin, tuple(int(v) for v in size)

    def coords_at(self, origin: np.ndarray, size: tuple[int, int, int], minus: np.ndarray | None = None):
        """Anatomy-frame coordinates (n, *size) in the sub-boxes at ``origin`` (n, 3: k, j, i), less ``minus`` (n, 3)."""
        m = self._m
        k = self._ks[origin[:, 0, None] + np.arange(size[0])][:, :, None, None]
        j = self._j[origin[:, 1, None] + np.arange(size[1])][:, None, :, None]
        i = self._i[origin[:, 2, None] + np.arange(size[2])][:, None, None, :]
        shift = np.zeros((len(origin), 3), F) if minus is None else minus.astype(F)
        return tuple(m[a, 0] * i + m[a, 1] * j + (m[a, 2] * k + (m[a, 3] - shift[:, a, None, None, None]))
                     for a in range(3))

    def set_at(self, label: int, index: tuple[np.ndarray, np.ndarray, np.ndarray], over: tuple[int, ...] | None = None) -> None:
        """Label the voxels at block indices ``index`` (k, j, i arrays); with ``over``, only those holding one of ``over``."""
        if over is not None:
            keep = member(self.labels[index], over)
            index = tuple(v[keep] for v in index)
        self.labels[index] = label

    def _coords(self):
        m, k = self._m, self._ks[:, None, None]
        i, j = self._i[None, None, :], self._j[None, :, None]
        return tuple(m[a, 0] * i + m[a, 1] * j + (m[a, 2] * k + m[a, 3]) for a in range(3))

    def linear(self, row: np.ndarray) -> np.ndarray:
        """``row . (x, y, z, 1)`` at every voxel, broadcastable: axes it does not depend on have length 1.

        ``row`` is a 4-vector on anatomy coordinates; e.g. a row of the anatomy->world map.
        """
        c = np.asarray(row, np.float64) @ self._m.astype(np.float64)  # on voxel indices (i, j, k, 1)
        reach = [abs(c[a]) * max(abs(float(v[0])), abs(float(v[-1]))) for a, v in enumerate((self._i, self._j, self._ks))]
        # Axes along which the value changes by less than a micrometre are dropped.
        out = (F(c[2]) * self._ks + F(c[3]))[:, None, None] if reach[2] > 1e-6 else np.full((1, 1, 1), F(c[3]))
        if reach[1] > 1e-6:
            out = out + F(c[1]) * self._j[:, None]
        if reach[0] > 1e-6:
            out = out + F(c[0]) * self._i
        return out


class _Slab:
    """Labels and mask of one slab, padded to whole bricks, with brick views (k, kb, J, T, I, T).

    The arrays live in the canvas's buffers, reused (and cleared) from slab to slab.
    """

    def __init__(self, canvas: "Canvas", ks: np.ndarray):
        c = canvas
        self.m, self.tile, self.coarse, self.kb = c.m32, c.tile, c.coarse, c.kb
        n = -(-len(ks) // c.kb) * c.kb
        self.ks = np.concatenate([ks, np.full(n - len(ks), ks[-1])]).astype(F)  # padding repeats the last slice
        shape = (n, c.n_tiles[1] * c.tile, c.n_tiles[0] * c.tile)
        size = int(np.prod(shape))
        if c.buffers is None or c.buffers[0].size < size:
            c.buffers = (np.empty(size, np.uint8), np.empty(size, bool))
        self.labels = c.buffers[0][:size].reshape(shape)
        self.mask = c.buffers[1][:size].reshape(shape)
        self.labels.fill(0)
        self.mask.fill(False)
        view = (n // c.kb, c.kb, c.n_tiles[1], c.tile, c.n_tiles[0], c.tile)
        self.labels6, self.mask6 = self.labels.reshape(view), self.mask.reshape(view)


class Canvas:
    """Paints shapes into the labels and mask of one slab of (possibly fractional) slice positions.

    Each shape's voxel bounding box is computed once per case (``voxel_boxes``); a slab then
    visits only the shapes whose box reaches it. ``coarse`` is the in-plane step (pixels) of
    the grid smooth fields are sampled on; ``brick_slices`` the depth of a brick in slab slices.
    """

    def __init__(self, voxel_to_head: np.ndarray, in_plane: tuple[int, int], shapes: list[Shape], coarse: int = 1,
                 brick_slices: int = 1):
        self.voxel_to_head = voxel_to_head
        self.m32 = voxel_to_head.astype(F)
        self.coarse = coarse
        self.tile = tile_size(coarse)
        self.kb = max(1, int(brick_slices))
        self.ni, self.nj = in_plane
        self.n_tiles = (-(-self.ni // self.tile), -(-self.nj // self.tile))
        self.to_voxel = np.linalg.inv(voxel_to_head)
        self.shapes = shapes
        self.boxes = self.voxel_boxes(shapes)
        self.buffers: tuple[np.ndarray, np.ndarray] | None = None  # slab arrays, reused

    def voxel_boxes(self, shapes: list[Shape]) -> np.ndarray:
        """Per shape: i0, i1, j0, j1 (index ranges) and the k interval its anatomy-frame box maps to."""
        a, t = self.to_voxel[:3, :3], self.to_voxel[:3, 3]
        lo, hi = np.array([s.lo for s in shapes], float), np.array([s.hi for s in shapes], float)
        # A box maps to a parallelepiped: centre A c + t, half-extent |A| h along each voxel axis.
        centre, half = (lo + hi) / 2 @ a.T + t, (hi - lo) / 2 @ np.abs(a).T
        first, last = centre - half, centre + half
        for n, s in enumerate(shapes):
            if type(s).corners is not Shape.corners:  # a tighter hull than the box
                idx = s.corners() @ a.T + t
                first[n], last[n] = idx.min(axis=0), idx.max(axis=0)
        return np.column_stack([
            np.clip(np.floor(first[:, 0]), 0, self.ni),
            np.clip(np.ceil(last[:, 0]) + 1, 0, self.ni),
            np.clip(np.floor(first[:, 1]), 0, self.nj),
            np.clip(np.ceil(last[:, 1]) + 1, 0, self.nj),
            first[:, 2],
            last[:, 2],
        ])

    def paint_slab(self, k_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Labels (uint8) and cavity mask (bool), shaped (k, j, i), for slices at ``k_positions``.

        They are views of the canvas's buffers, valid until the next call.
        """
        ks = np.asarray(k_positions, np.float64)
        slab = _Slab(self, ks)
        b = self.boxes
        hits = (b[:, 0] < b[:, 1]) & (b[:, 2] < b[:, 3]) & (b[:, 5] >= ks[0]) & (b[:, 4] <= ks[-1])
        for n in np.flatnonzero(hits):
            i0, i1, j0, j1 = (int(v) for v in b[n, :4])
            k0, k1 = np.searchsorted(ks, b[n, 4]), np.searchsorted(ks, b[n, 5], side="right")
            if k0 >= k1:
                continue
            shape = self.shapes[n]
            if isinstance(shape, TiledShape):
                paint_tiled(shape, slab, (k0, k1, j0, j1, i0, i1))
            else:
                view = (slice(k0, k1), slice(j0, j1), slice(i0, i1))
                block = Block(slab.labels[view], slab.mask[view], self.m32, i0, i1, j0, j1, slab.ks[k0:k1], self.to_voxel)
                shape.paint(block)
        n, nj, ni = len(ks), self.nj, self.ni
        return slab.labels[:n, :nj, :ni], slab.mask[:n, :nj, :ni]
