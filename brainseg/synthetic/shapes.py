"""Generic shapes: tissue-filled ellipsoids, body parts under skin and fat, tubes along splines."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from . import fields
from .canvas import Block
from .tiles import Bricks, TiledShape
from .tissues import Tissue
from .voxels import Shape

F = np.float32


@dataclass
class Ellipsoid(Shape):
    """A label filling an ellipsoid, optionally only over some labels."""

    label: int
    centre: tuple[float, float, float]
    semi: tuple[float, float, float]
    over: tuple[int, ...] | None = None

    def __post_init__(self):
        c, s = np.asarray(self.centre, float), np.asarray(self.semi, float)
        self.lo, self.hi = c - s, c + s

    def paint(self, b: Block) -> None:
        # Inside iff the normalized quadratic form is below 1: each term is affine in the voxel indices.
        q = None
        for axis, (c, s) in enumerate(zip(self.centre, self.semi)):
            row = np.zeros(4)
            row[axis], row[3] = 1 / s, -c / s
            u = b.linear(row)
            q = u * u if q is None else q + u * u
        b.set(self.label, q < 1, over=self.over)


@dataclass
class BodyPart(TiledShape):
    """Soft tissue inside an ellipsoid or a capped elliptic cylinder, under skin and a fat layer.

    Tiled: bricks outside the skin are skipped, bricks deeper than the fat layer only fill.
    """

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]  # for a cylinder the z value is the half-height
    cylinder: bool = False
    fat_mm: float = 4.0
    skin_mm: float = 2.0
    interior: int = Tissue.SOFT_TISSUE
    painters = ("paint", "paint_deep")

    def __post_init__(self):
        c, s = np.asarray(self.centre, float), np.asarray(self.semi, float)
        self.lo, self.hi = c - s, c + s

    def distance(self, x, y, z):
        if self.cylinder:
            d = fields.ellipse_2d(x, y, self.centre[:2], self.semi[:2])
            return np.maximum(d, np.abs(z - F(self.centre[2])) - F(self.semi[2]))
        return fields.ellipsoid(x, y, z, self.centre, self.semi)

    def coarse(self, x, y, z):
        return {"d": self.distance(x, y, z)}

    def classify(self, box):
        codes = np.ones(box.shape, np.uint8)
        codes[box.hi["d"] < -F(self.skin_mm + self.fat_mm)] = 2
        codes[box.lo["d"] >= 0] = 0
        return codes

    def paint(self, b: Bricks) -> None:
        d = b.field("d")
        deep = d < -F(self.skin_mm + self.fat_mm)
        b.set(self.interior, deep, over=(Tissue.AIR, Tissue.FAT))
        if self.fat_mm > 0:
            b.set(Tissue.FAT, (d < -F(self.skin_mm)) & ~deep, over=(Tissue.AIR,))
        b.set(Tissue.SOFT_TISSUE, d < 0, over=(Tissue.AIR,))

    def paint_deep(self, b: Bricks) -> None:
        b.set(self.interior, over=(Tissue.AIR, Tissue.FAT))


@dataclass
class Tube(Shape):
    """Consecutive segments of a tube whose radius varies linearly along each segment.

    Each segment is tested only inside its own small box of voxels (all segments at once,
    boxes of one size), so the work grows with the tube's length, not with its bounding box.
    """

    label: int
    points: np.ndarray  # (n, 3) centreline
    radii: np.ndarray  # (n,)
    over: tuple[int, ...] | None = None

    def __post_init__(self):
        r = float(np.max(self.radii))
        self.lo = self.points.min(axis=0) - r
        self.hi = self.points.max(axis=0) + r

    @cached_property
    def _segments(self) -> tuple:
        """Per segment: start, end, largest radius (float64); step, 1/length^2, radius and its change (float32)."""
        p0, p1 = self.points[:-1], self.points[1:]
        d = p1 - p0
        return (p0, p1, np.maximum(self.radii[:-1], self.radii[1:]), d.astype(F),
                (1 / np.maximum((d * d).sum(axis=1), 1e-9)).astype(F), self.radii[:-1].astype(F), np.diff(self.radii).astype(F))

    def paint(self, b: Block) -> None:
        p0, p1, r_max, d, inv_len_sq, r0, dr = self._segments
        inside, origin, size = b.capsule_boxes(p0, p1, r_max)
        if not inside.any():
            return
        rx, ry, rz = b.coords_at(origin, size, minus=p0[inside])  # (segments, *size), from each segment's start
        shaped = lambda v: v[inside].reshape(-1, 1, 1, 1)  # noqa: E731
        dx, dy, dz = shaped(d[:, 0]), shaped(d[:, 1]), shaped(d[:, 2])
        t = rx * dx
        t += ry * dy
        t += rz * dz
        t *= shaped(inv_len_sq)
        np.clip(t, 0, 1, out=t)  # nearest point on the segment
        dist_sq = np.square(rx - t * dx)
        dist_sq += np.square(ry - t * dy)
        dist_sq += np.square(rz - t * dz)
        r = shaped(r0) + t * shaped(dr)
        segment, k, j, i = np.nonzero(dist_sq < r * r)
        b.set_at(self.label, (origin[segment, 0] + k, origin[segment, 1] + j, origin[segment, 2] + i), over=self.over)


def tube(
    points,
    radius: tuple[float, float],
    label: int,
    rng: np.random.Generator | None = None,
    tortuosity: float = 0.0,
    over: tuple[int, ...] | None = None,
    step_mm: float = 3.0,
) -> list[Tube]:
    """A tube along a smooth spline through control points jittered by ``tortuosity`` (mm)."""
    pts = np.asarray(points, float)
    if rng is not None and tortuosity > 0 and len(pts) > 2:
        jitter = rng.normal(0, tortuosity, pts.shape)
        jitter[0] = jitter[-1] = 0
        pts = pts + jitter
    centre = fields.catmull_rom(pts, step_mm=step_mm) if len(pts) > 2 else pts
    return [Tube(label, centre, np.linspace(radius[0], radius[1], len(centre)), over)]


def mirrored(points, side: int) -> np.ndarray:
    """Control points given for the right side (+x), mirrored to ``side`` (+1 right, -1 left)."""
    return np.asarray(points, float) * np.array([side, 1.0, 1.0])
