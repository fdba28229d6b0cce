"""Pathology inside the mask (hemorrhage, subdural hematoma, infarct) and the scanner's table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import fields
from .canvas import Block
from .head import CAVITY_SEMI
from .shapes import Ellipsoid
from .tiles import Bricks, TiledShape
from .tissues import Tissue
from .voxels import Shape

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


def _on_side(side: int, box) -> np.ndarray:
    """Bricks reaching the ``side`` (+1 right, -1 left) of the midline."""
    return box.hi["x"] > 0 if side > 0 else box.lo["x"] < 0


@dataclass
class Subdural(TiledShape):
    """A crescent of blood between the inner table and the brain over one convexity."""

    side: int
    thickness_mm: float
    direction: np.ndarray

    def __post_init__(self):
        s = np.asarray(CAVITY_SEMI)
        self.lo = np.where(np.array([self.side > 0, False, False]), 0.0, -s) + [0, 0, -20]
        self.hi = np.where(np.array([self.side < 0, False, False]), 0.0, s)

    def coarse(self, x, y, z):
        r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
        d = self.direction.astype(F)
        cos = (x * d[0] + y * d[1] + z * d[2]) / r
        thickness = F(self.thickness_mm) * np.clip((cos - F(0.55)) / F(0.45), 0, 1)
        # > 0 within the crescent (and outside the cavity, where nothing it may cover is left).
        return {"crescent": fields.ellipsoid(x, y, z, (0, 0, 0), CAVITY_SEMI) + thickness + F(2)}

    def classify(self, box):
        return ((box.hi["crescent"] > 0) & _on_side(self.side, box)).astype(np.uint8)

    def paint(self, b: Bricks) -> None:
        where = (b.field("crescent") > 0) & (b.x * F(self.side) > 0)  # a subdural does not cross the falx
        b.set(Tissue.HEMORRHAGE, where, over=(Tissue.CSF,) + BRAIN)


def subdural(rng: np.random.Generator) -> Shape:
    side = int(rng.choice([-1, 1]))
    direction = np.array([side * 1.0, rng.uniform(-0.5, 0.5), rng.uniform(0.0, 0.6)])
    return Subdural(side, rng.uniform(4, 14), direction / np.linalg.norm(direction))


@dataclass
class Infarct(TiledShape):
    """Hypodense brain in a wedge of the middle cerebral artery territory."""

    side: int
    direction: np.ndarray
    min_cos: float

    def __post_init__(self):
        s = np.asarray(CAVITY_SEMI)
        self.lo = np.where(np.array([self.side > 0, False, False]), 0.0, -s)
        self.hi = np.where(np.array([self.side < 0, False, False]), 0.0, s)

    def coarse(self, x, y, z):
        x, y, z = x - F(self.side * 15), y - F(5), z + F(10)
        r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
        d = self.direction.astype(F)
        return {"wedge": (x * d[0] + y * d[1] + z * d[2]) - F(self.min_cos) * r}  # > 0 inside the cone

    def classify(self, box):
        return ((box.hi["wedge"] > 0) & _on_side(self.side, box)).astype(np.uint8)

    def paint(self, b: Bricks) -> None:
        b.set(Tissue.INFARCT, (b.field("wedge") > 0) & (b.x * F(self.side) > 0), over=BRAIN)


def infarct(rng: np.random.Generator) -> Shape:
    side = int(rng.choice([-1, 1]))
    direction = np.array([side * 1.0, rng.uniform(-0.6, 0.6), rng.uniform(-0.2, 0.6)])
    return Infarct(side, direction / np.linalg.norm(direction), rng.uniform(0.75, 0.92))


@dataclass
class HeadHolder(Shape):
    """Scanner table, the curved head holder on it and the foam pad, fixed in the scanner.

    Defined in world coordinates (the holder's axis runs along the scanner's z through the
    head centre); ``anatomy_to_world`` maps the voxel coordinates it is given into that frame.
    Its cross-section is the same in every slice (up to gantry-tilt shear), so the voxel
    tests broadcast from a slice's rows and columns.
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
        self._corners = (world_to_anatomy[:3, :3] @ corners + world_to_anatomy[:3, 3:4]).T
        self.lo, self.hi = self._corners.min(axis=0), self._corners.max(axis=0)

    def corners(self) -> np.ndarray:
        return self._corners  # the world box itself, not the anatomy-frame box around it

    def paint(self, b: Block) -> None:
        m = self.anatomy_to_world
        cx, cy, _ = (F(v) for v in self.centre_world)
        xw, yw = b.linear(m[0]) - cx, b.linear(m[1]) - cy  # broadcastable: columns, (slices,) rows
        r = F(self.radius_mm)
        r_sq = xw * xw + yw * yw
        # Foam pad inside the holder (19), its shell (18) and the table plate under it (18), behind the head.
        pattern = (r_sq < (r + F(4)) ** 2).astype(np.uint8) * np.uint8(Tissue.TABLE)
        pattern += (r_sq < r * r).astype(np.uint8) * np.uint8(Tissue.PADDING - Tissue.TABLE)
        pattern *= yw < F(-25)
        plate = (np.abs(yw + r + F(22)) < F(4)) & (np.abs(xw) < F(230))
        pattern += plate.astype(np.uint8) * np.uint8(Tissue.TABLE)
        labels = b.labels
        labels += pattern * (labels == Tissue.AIR)  # only over air: AIR is 0
