"""Painting large shapes brick by brick: skip what they cannot reach, fill what is uniform.

A tiled shape's box is cut into bricks of about ``TILE_PX`` x ``TILE_PX`` pixels by a few
slices. Its smooth fields are sampled on a coarse grid (every ``coarse`` pixels in-plane,
every slice) and interpolated bilinearly, so inside a brick a field lies between its
samples at the brick's corners: those samples bound it exactly. From the bounds the shape
decides per brick whether it paints nothing there (air around the head), something
uniform (deep white matter) or needs its voxel-wise rules (near a surface); only the last
kind pays per-voxel work. Bricks are gathered from the slab into compact arrays, painted
and written back.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np

from .voxels import Shape, Voxels

F = np.float32
TILE_PX = 8  # in-plane brick size, rounded to a multiple of the coarse step


def tile_size(coarse: int) -> int:
    """In-plane brick size (pixels) for a coarse-grid step: a multiple of it near ``TILE_PX``."""
    return coarse * max(1, round(TILE_PX / coarse))


class Bounds:
    """Per-brick lower and upper bounds (arrays shaped like the bricks) of ``x``, ``y``, ``z`` and the coarse fields."""

    def __init__(self, lo: dict[str, np.ndarray], hi: dict[str, np.ndarray]):
        self.lo, self.hi = lo, hi
        self.shape = lo["x"].shape


class TiledShape(Shape):
    """A large shape painted brick by brick.

    ``coarse`` returns the smooth fields, which the canvas samples on the coarse grid;
    ``classify`` turns their per-brick ``Bounds`` into a code per brick: 0 paints nothing,
    code n calls the method named ``painters[n - 1]`` with the ``Bricks`` of that code.
    """

    painters: tuple[str, ...] = ("paint",)

    def coarse(self, x, y, z) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    def classify(self, box: Bounds) -> np.ndarray:
        return np.ones(box.shape, np.uint8)


def _window_extrema(a: np.ndarray, c: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max over the windows [t*c, t*c + c] (ends shared) of ``a`` along ``axis``."""
    a = np.moveaxis(a, axis, -1)
    n = (a.shape[-1] - 1) // c
    body = a[..., :-1].reshape(*a.shape[:-1], n, c)
    ends = a[..., c::c]
    lo = np.minimum(body.min(axis=-1), ends)
    hi = np.maximum(body.max(axis=-1), ends)
    return np.moveaxis(lo, -1, axis), np.moveaxis(hi, -1, axis)


@lru_cache(maxsize=None)
def _bilinear_weights(c: int, f: int) -> np.ndarray:
    """Matrix ((c+1)^2, T^2), T = c*f: corner samples of a tile's c x c cells -> its voxels, bilinearly.

    Returned as a strided view: numpy then multiplies with its own loop, which is as fast as
    BLAS for these thin products and, unlike BLAS, never starts threads (which would cost
    more than they gain here and oversubscribe a pool of dataset workers).
    """
    t = c * f
    local = np.arange(t)
    w = np.zeros((c + 1, t))
    w[local // f, local] = 1 - (local % f) / f
    w[local // f + 1, local] += (local % f) / f
    weights = np.zeros(((c + 1) ** 2, 2 * t * t), F)
    weights[:, ::2] = np.einsum("aj,bi->abji", w, w).reshape((c + 1) ** 2, t * t)
    return weights[:, ::2]


class Bricks(Voxels):
    """Some bricks of a tiled shape's box, gathered into arrays shaped (bricks, slices, T*T).

    ``labels`` and ``mask`` are gathered on first use, or assigned whole, and written back by
    ``flush``; ``field(name)`` interpolates a coarse field to every voxel.
    """

    def __init__(self, slab, tk, tj, ti, fields: dict[str, np.ndarray], origin: tuple[int, int, int]):
        self._slab, self._index = slab, (tk, slice(None), tj, slice(None), ti, slice(None))
        self._t = (tk, tj, ti)
        self.shape = (len(tk), slab.kb, slab.tile**2)
        self._fields, self._origin, self._cache = fields, origin, {}
        self._labels = self._mask = None

    def _gather(self, volume6: np.ndarray) -> np.ndarray:
        return volume6[self._index].reshape(self.shape)

    def _scatter(self, volume6: np.ndarray, values) -> None:
        t = self._slab.tile
        volume6[self._index] = values.reshape(*self.shape[:2], t, t) if isinstance(values, np.ndarray) else values

    @property
    def labels(self) -> np.ndarray:
        if self._labels is None:
            self._labels = self._gather(self._slab.labels6)
        return self._labels

    @labels.setter
    def labels(self, value: np.ndarray) -> None:
        self._labels = value  # whole bricks: no need to read the old labels

    @property
    def mask(self) -> np.ndarray:
        if self._mask is None:
            self._mask = self._gather(self._slab.mask6)
        return self._mask

    @mask.setter
    def mask(self, value) -> None:
        if isinstance(value, np.ndarray):
            self._mask = value
        else:  # a constant: written straight into the slab
            self._scatter(self._slab.mask6, value)
            self._mask = None

    def fill(self, label: int) -> None:
        """Every voxel of these bricks gets ``label``."""
        if self._labels is not None:
            self._labels[...] = label
        else:
            self._scatter(self._slab.labels6, label)

    def flush(self) -> None:
        if self._labels is not None:
            self._scatter(self._slab.labels6, self._labels)
        if self._mask is not None:
            self._scatter(self._slab.mask6, self._mask)

    def _coords(self):
        s = self._slab
        m, t = s.m, s.tile
        tk, tj, ti = self._t
        ks = s.ks[tk[:, None] * s.kb + np.arange(s.kb)]  # (bricks, kb) slice positions
        local = np.arange(t, dtype=F)
        out = []
        for a in range(3):
            base = (m[a, 0] * (ti * t).astype(F) + m[a, 1] * (tj * t).astype(F) + m[a, 3])[:, None] + m[a, 2] * ks
            plane = (m[a, 0] * local[None, :] + m[a, 1] * local[:, None]).ravel()
            out.append(base[:, :, None] + plane)
        return tuple(out)

    @cached_property
    def _corners(self) -> np.ndarray:
        """Flat indices into the coarse grid of each brick's corner samples: (bricks * slices, (c+1)^2)."""
        s = self._slab
        c = s.tile // s.coarse
        k0, j0, i0 = self._origin
        _, n_j, n_i = self._fields[next(iter(self._fields))].shape
        tk, tj, ti = self._t
        kk = (tk - k0)[:, None] * s.kb + np.arange(s.kb)
        jj = (tj - j0)[:, None] * c + np.arange(c + 1)
        ii = (ti - i0)[:, None] * c + np.arange(c + 1)
        flat = (kk[:, :, None, None] * n_j + jj[:, None, :, None]) * n_i + ii[:, None, None, :]
        return flat.reshape(-1, (c + 1) ** 2)

    def field(self, name: str) -> np.ndarray:
        """The coarse field ``name`` interpolated to every voxel of the bricks (cached)."""
        if name not in self._cache:
            s = self._slab
            c = s.tile // s.coarse
            if s.coarse == 1:  # samples on every voxel: nothing to interpolate
                values = np.take(self._fields[name], self._corners.reshape(-1, c + 1, c + 1)[:, :-1, :-1])
            else:
                values = np.take(self._fields[name], self._corners) @ _bilinear_weights(c, s.coarse)
            self._cache[name] = values.reshape(self.shape)
        return self._cache[name]


def paint_tiled(shape: TiledShape, slab, box: tuple[int, ...]) -> None:
    """Paint ``shape`` in the bricks over ``box`` (slab index ranges k0, k1, j0, j1, i0, i1 of its voxel box).

    Samples its fields on the bricks' coarse grid, classifies the bricks from the fields'
    per-brick bounds, and hands each kind of brick to its painter.
    """
    k0, k1, j0, j1, i0, i1 = box
    T, f, kb = slab.tile, slab.coarse, slab.kb
    t0 = (k0 // kb, j0 // T, i0 // T)
    t1 = (-(-k1 // kb), -(-j1 // T), -(-i1 // T))
    c = T // f
    ci = (t0[2] * T + f * np.arange((t1[2] - t0[2]) * c + 1)).astype(F)
    cj = (t0[1] * T + f * np.arange((t1[1] - t0[1]) * c + 1)).astype(F)
    ck = slab.ks[t0[0] * kb : t1[0] * kb]
    m = slab.m
    x, y, z = (m[a, 0] * ci[None, None, :] + m[a, 1] * cj[None, :, None] + (m[a, 2] * ck + m[a, 3])[:, None, None]
               for a in range(3))
    fields = shape.coarse(x, y, z)
    lo, hi = {}, {}
    for name, values in fields.items():
        v = values.reshape(-1, kb, *values.shape[1:])
        v_lo, v_hi = v.min(axis=1), v.max(axis=1)
        v_lo = _window_extrema(_window_extrema(v_lo, c, 1)[0], c, 2)[0]
        v_hi = _window_extrema(_window_extrema(v_hi, c, 1)[1], c, 2)[1]
        lo[name], hi[name] = v_lo, v_hi
    # x, y, z are affine in the voxel indices: their extrema over a brick sit at its corners.
    k_lo = ck.reshape(-1, kb).min(axis=1)[:, None, None]
    k_hi = ck.reshape(-1, kb).max(axis=1)[:, None, None]
    j_lo = (np.arange(t0[1], t1[1]) * T).astype(F)[None, :, None]
    i_lo = (np.arange(t0[2], t1[2]) * T).astype(F)[None, None, :]
    for a, name in enumerate("xyz"):
        terms = [(m[a, 0] * i_lo, m[a, 0] * (i_lo + T - 1)), (m[a, 1] * j_lo, m[a, 1] * (j_lo + T - 1)),
                 (m[a, 2] * k_lo, m[a, 2] * k_hi)]
        lo[name] = m[a, 3] + sum(np.minimum(p, q) for p, q in terms)
        hi[name] = m[a, 3] + sum(np.maximum(p, q) for p, q in terms)
    codes = shape.classify(Bounds(lo, hi))
    for code, painter in enumerate(shape.painters, start=1):
        tk, tj, ti = np.nonzero(codes == code)
        if tk.size:
            bricks = Bricks(slab, tk + t0[0], tj + t0[1], ti + t0[2], fields, t0)
            getattr(shape, painter)(bricks)
            bricks.flush()
