"""Voxels as shapes see them, and the label writes every shape uses.

A shape labels the voxels it is handed (``Voxels``: their labels, mask and anatomy-frame
coordinates); ``set`` writes a label where a condition holds and, optionally, only over
some labels already there, which is how later shapes overwrite earlier ones.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

F = np.float32


@lru_cache(maxsize=None)
def _runs(labels: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
    """Sorted labels as runs of consecutive values: (1, 2, 3, 7) -> ((1, 3), (7, 7))."""
    runs: list[list[int]] = []
    for v in sorted(set(labels)):
        if runs and v == runs[-1][1] + 1:
            runs[-1][1] = v
        else:
            runs.append([v, v])
    return tuple((lo, hi) for lo, hi in runs)


def member(labels: np.ndarray, over) -> np.ndarray:
    """True where a label is one of ``over``: one or two comparisons per run of consecutive labels.

    Several times faster than a lookup table (``table[labels]``) on large uint8 arrays.
    """
    out = None
    for lo, hi in _runs(tuple(int(v) for v in over)):
        # uint8 arithmetic wraps, so one unsigned comparison tests lo <= label <= hi.
        hit = labels == lo if lo == hi else np.subtract(labels, np.uint8(lo)) <= np.uint8(hi - lo)
        out = hit if out is None else np.logical_or(out, hit, out=out)
    return out


def assign(labels: np.ndarray, label: int, where: np.ndarray) -> None:
    """``labels[where] = label`` in place, without branches (much faster than masked copies).

    uint8 arithmetic wraps modulo 256, so ``labels + (label - labels) * where`` is exact.
    """
    delta = np.subtract(np.uint8(label), labels)
    np.multiply(delta, where, out=delta)
    labels += delta


class Voxels:
    """Voxels handed to a shape: writable ``labels`` (uint8) and ``mask`` (bool), and coordinates.

    ``x``, ``y``, ``z`` (anatomy frame, float32 mm) are computed on first use.
    """

    labels: np.ndarray
    mask: np.ndarray
    _xyz: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def _coords(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError

    @property
    def xyz(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._xyz is None:
            self._xyz = self._coords()
        return self._xyz

    x = property(lambda self: self.xyz[0])
    y = property(lambda self: self.xyz[1])
    z = property(lambda self: self.xyz[2])

    def set(self, label: int, where: np.ndarray | None = None, over: tuple[int, ...] | None = None) -> None:
        """Label voxels in ``where`` (all if None); with ``over``, only those currently holding one of ``over``."""
        if over is not None:
            held = member(self.labels, over)
            where = held if where is None else np.logical_and(held, where, out=held)
        if where is None:
            self.labels[...] = label
        else:
            assign(self.labels, label, where)


class Shape:
    """Something that occupies an anatomy-frame box and labels the voxels inside it."""

    lo: np.ndarray  # anatomy-frame box corners, mm
    hi: np.ndarray

    def corners(self) -> np.ndarray:
        """Anatomy-frame points whose convex hull holds everything the shape paints (the box's corners)."""
        return np.array([np.where(np.array(bits, bool), self.hi, self.lo) for bits in np.ndindex(2, 2, 2)], float)

    def paint(self, block: Voxels) -> None:  # pragma: no cover - interface
        raise NotImplementedError
