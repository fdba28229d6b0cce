"""Pathology inside the mask (hemorrhage, subdural hematoma, infarct) and the scanner's table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fields
from .canvas import Block, Shape
from .head import CAVITY_SEMI
from .shapes import Ellipsoid
from .tissues import Tissue

F = np.float32
BRAIN = (Tissue.GRAY_MATTER, Tissue.WHITE_MATTER)


def hemorrhage(rng: np.random.Generator) -> list[Shape]:
    """An intraparenchymal hematoma: a lobulated blob in the basal ganglia, thalamus or a lobe."""
    sites = [(22, 4, 0), (10, -14, 4), (35, 20, 20), (30, -40, 15), (20, -50, -40)]
    centre = np.array(sites[rng.integers(len(sites))], float) * [rng.choice([-1, 1]), 1, 1]
    size = rng.uniform(5, 18)
    return [
        Ellipsoid(Tissue.HEMORRHAGE, tuple(centre + rng.normal(0, size / 3, 3)), tuple(size * rng.uniform(0.6, 1.0, 3)),
                  over=BRAIN + (Tissue.CSF,))
        for _ in range(3)
    ]


@dataclass
class Subdural(Shape):
    """A crescent of blood between the inner table and the brain over one convexity."""

    side: int
    thickness_mm: float
    direction: np.ndarray

    def __post_init__(self):
        s = np.asarray(CAVITY_SEMI)
        self.lo = np.where(np.array([self.side > 0, False, False]), 0.0, -s) + [0, 0, -20]
        self.hi = np.where(np.array([self.side < 0, False, False]), 0.0, s)

    def paint(self, b: Block) -> None:
        r = np.sqrt(b.x * b.x + b.y * b.y + b.z * b.z) + F(1e-3)
        d = self.direction.astype(F)
        cos = (b.x * d[0] + b.y * d[1] + b.z * d[2]) / r
        thickness = F(self.thickness_mm) * np.clip((cos - F(0.55)) / F(0.45), 0, 1)
        inner = fields.ellipsoid(b.x, b.y, b.z, (0, 0, 0), CAVITY_SEMI)
        b.set(Tissue.HEMORRHAGE, inner > -thickness - F(2), over=(Tissue.CSF,) + BRAIN)


def subdural(rng: np.random.Generator) -> Shape:
    side = int(rng.choice([-1, 1]))
    direction = np.array([side * 1.0, rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.6)])
    return Subdural(side, rng.uniform(4, 14), direction / np.linalg.norm(direction))


@dataclass
class Infarct(Shape):
    """Hypodense brain in a wedge of the middle cerebral artery territory."""

    side: int
    direction: np.ndarray
    min_cos: float

    def __post_init__(self):
        s = np.asarray(CAVITY_SEMI)
        self.lo = np.where(np.array([self.side > 0, False, False]), 0.0, -s)
        self.hi = np.where(np.array([self.side < 0, False, False]), 0.0, s)

    def paint(self, b: Block) -> None:
        x, y, z = b.x - F(self.side * 15), b.y - F(5), b.z + F(10)
        r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
        d = self.direction.astype(F)
        b.set(Tissue.INFARCT, (x * d[0] + y * d[1] + z * d[2]) > F(self.min_cos) * r, over=BRAIN)


def infarct(rng: np.random.Generator) -> Shape:
    side = int(rng.choice([-1, 1]))
    direction = np.array([side * 1.0, rng.uniform(-0.6, 0.6), rng.uniform(-0.2, 0.6)])
    return Infarct(side, direction / np.linalg.norm(direction), rng.uniform(0.75, 0.92))


@dataclass
class HeadHolder(Shape):
    """Scanner table, the curved head holder on it and the foam pad, fixed in the scanner.

    Defined in world coordinates (the holder's axis runs along the scanner's z through the
    head centre); ``anatomy_to_world`` maps the voxel coordinates it is given into that frame.
    """

    anatomy_to_world: np.ndarray
    centre_world: np.ndarray  # head centre
    radius_mm: float
    extent_z: tuple[float, float]  # world z range of the holder

    def __post_init__(self):
        cx, cy, _ = self.centre_world
        lo_w = np.array([cx - 260, cy - self.radius_mm - 40, self.extent_z[0]])
        hi_w = np.array([cx + 260, cy - 20, self.extent_z[1]])
        corners = np.array(np.meshgrid(*zip(lo_w, hi_w), indexing="ij")).reshape(3, -1)
        world_to_anatomy = np.linalg.inv(self.anatomy_to_world)
        pts = world_to_anatomy[:3, :3] @ corners + world_to_anatomy[:3, 3:4]
        self.lo, self.hi = pts.min(axis=1), pts.max(axis=1)

    def paint(self, b: Block) -> None:
        m = self.anatomy_to_world.astype(F)
        cx, cy, _ = (F(v) for v in self.centre_world)

        def world(axis, x, y, z, offset):
            return m[axis, 0] * x + m[axis, 1] * y + m[axis, 2] * z + (m[axis, 3] - offset)

        yw = world(1, b.x, b.y, b.z, cy)
        radius = b.smooth(lambda x, y, z: np.hypot(world(0, x, y, z, cx), world(1, x, y, z, cy)))
        xw = world(0, b.x, b.y, b.z, cx)
        below = yw < F(-25)
        b.set(Tissue.PADDING, (radius < F(self.radius_mm)) & below, over=(Tissue.AIR,))
        b.set(Tissue.TABLE, (np.abs(radius - F(self.radius_mm + 2)) < F(2)) & below, over=(Tissue.AIR,))
        plate = np.abs(yw + F(self.radius_mm + 22)) < F(4)
        b.set(Tissue.TABLE, plate & (np.abs(xw) < F(230)), over=(Tissue.AIR,))
