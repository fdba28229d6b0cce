"""Generic shapes: tissue-filled ellipsoids, body parts under skin and fat, tubes along splines."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fields
from .canvas import Block, Shape
from .tissues import Tissue

F = np.float32
SEGMENTS_PER_SHAPE = 4


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
        b.set(self.label, fields.ellipsoid(b.x, b.y, b.z, self.centre, self.semi) < 0, over=self.over)


@dataclass
class BodyPart(Shape):
    """Soft tissue inside an ellipsoid or a capped elliptic cylinder, under skin and a fat layer."""

    centre: tuple[float, float, float]
    semi: tuple[float, float, float]  # for a cylinder the z value is the half-height
    cylinder: bool = False
    fat_mm: float = 4.0
    skin_mm: float = 2.0
    interior: int = Tissue.SOFT_TISSUE

    def __post_init__(self):
        c, s = np.asarray(self.centre, float), np.asarray(self.semi, float)
        self.lo, self.hi = c - s, c + s

    def distance(self, x, y, z):
        if self.cylinder:
            d = fields.ellipse_2d(x, y, self.centre[:2], self.semi[:2])
            return np.maximum(d, np.abs(z - F(self.centre[2])) - F(self.semi[2]))
        return fields.ellipsoid(x, y, z, self.centre, self.semi)

    def paint(self, b: Block) -> None:
        d = b.smooth(self.distance)
        deep = d < -F(self.skin_mm + self.fat_mm)
        b.set(self.interior, deep, over=(Tissue.AIR, Tissue.FAT))
        if self.fat_mm > 0:
            b.set(Tissue.FAT, (d < -F(self.skin_mm)) & ~deep, over=(Tissue.AIR,))
        b.set(Tissue.SOFT_TISSUE, d < 0, over=(Tissue.AIR,))


@dataclass
class Tube(Shape):
    """A few consecutive segments of a tube whose radius varies linearly along each segment."""

    label: int
    points: np.ndarray  # (n, 3) centreline
    radii: np.ndarray  # (n,)
    over: tuple[int, ...] | None = None

    def __post_init__(self):
        r = float(np.max(self.radii))
        self.lo = self.points.min(axis=0) - r
        self.hi = self.points.max(axis=0) + r

    def paint(self, b: Block) -> None:
        inside = None
        for n in range(len(self.points) - 1):
            dist_sq, t = fields.segment_distance_sq(b.x, b.y, b.z, self.points[n], self.points[n + 1])
            r = F(self.radii[n]) + t * F(self.radii[n + 1] - self.radii[n])
            hit = dist_sq < r * r
            inside = hit if inside is None else inside | hit
        b.set(self.label, inside, over=self.over)


def tube(
    points,
    radius: tuple[float, float],
    label: int,
    rng: np.random.Generator | None = None,
    tortuosity: float = 0.0,
    over: tuple[int, ...] | None = None,
    step_mm: float = 3.0,
) -> list[Tube]:
    """Tube segments along a smooth spline through control points jittered by ``tortuosity`` (mm)."""
    pts = np.asarray(points, float)
    if rng is not None and tortuosity > 0 and len(pts) > 2:
        jitter = rng.normal(0, tortuosity, pts.shape)
        jitter[0] = jitter[-1] = 0
        pts = pts + jitter
    centre = fields.catmull_rom(pts, step_mm=step_mm) if len(pts) > 2 else pts
    radii = np.linspace(radius[0], radius[1], len(centre))
    # A few segments per shape: small boxes, little per-shape overhead.
    chunks = range(0, len(centre) - 1, SEGMENTS_PER_SHAPE)
    return [Tube(label, centre[n : n + SEGMENTS_PER_SHAPE + 1], radii[n : n + SEGMENTS_PER_SHAPE + 1], over) for n in chunks]


def mirrored(points, side: int) -> np.ndarray:
    """Control points given for the right side (+x), mirrored to ``side`` (+1 right, -1 left)."""
    return np.asarray(points, float) * np.array([side, 1.0, 1.0])
