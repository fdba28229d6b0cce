"""Surgical skull defects: a removed bone flap (craniectomy) and burr holes.

A defect is a cap of the vault seen from the centre of the cranial cavity: a direction and
an angular radius. Inside it the cranium paints no bone, so the scalp (soft tissue) lies on
the dura; after a craniectomy the dura and brain may bulge outward through the opening,
most in its middle and not at all at the bone edge, and push the scalp out with them. The mask stays the cranial cavity,
closed over the defect by the (possibly bulging) dura line. All in the anatomy frame (mm).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .fields import smoothstep

F = np.float32
BURR_HOLE_MM = (10.0, 16.0)  # diameter: 11-14 mm perforators, wider after enlargement
FLOOR_MARGIN_MM = 3.0  # bone within this height above the cranial floor stays (the skull base)
COVER_MM = 4.0  # at least this much scalp over a dura that bulges through a craniectomy
MIDLINE_STRIP_MM = 15.0  # a hemicraniectomy leaves bone this far either side of the midline (over the sinus)


@dataclass(frozen=True)
class SkullDefect:
    """A cap of the vault without bone: ``direction`` (unit), angular radius, bulge of the dura."""

    kind: str  # "craniectomy" or "burr_hole"
    direction: tuple[float, float, float]
    angle_rad: float  # angular radius seen from the cavity centre
    radius_mm: float  # distance from the cavity centre to the skull there
    bulge_mm: float = 0.0
    side: int = 0  # +1/-1: a hemicraniectomy on that side, which spares the midline strip; 0: no strip

    def meta(self) -> dict:
        return {"kind": self.kind, "direction": tuple(round(v, 3) for v in self.direction),
                "diameter_mm": round(2 * self.angle_rad * self.radius_mm, 1), "bulge_mm": round(self.bulge_mm, 2)}


def _cap(kind: str, direction, diameter_mm: float, semi, vault_mm: float, bulge_mm: float = 0.0, side: int = 0) -> SkullDefect:
    d = np.asarray(direction, float)
    d /= np.linalg.norm(d)
    radius = 1.0 / np.linalg.norm(d / np.asarray(semi)) + vault_mm / 2  # mid-skull along d
    return SkullDefect(kind, tuple(float(v) for v in d), float(diameter_mm / 2 / radius), float(radius), float(bulge_mm), side)


def sample_defects(rng: np.random.Generator, config, semi, vault_mm: float) -> list[SkullDefect]:
    """Draw a craniectomy and burr holes for one case with the config's probabilities."""
    defects = []
    if rng.random() < config.craniectomy_prob:
        side = int(rng.choice([-1, 1]))
        if rng.random() < 0.8:  # hemicraniectomy: fronto-temporo-parietal, one side
            direction = (side, rng.uniform(0.0, 0.4), rng.uniform(0.3, 0.7))
        else:  # bifrontal
            direction, side = (rng.uniform(-0.1, 0.1), rng.uniform(0.7, 1.0), rng.uniform(0.6, 0.9)), 0
        bulge = rng.uniform(*config.craniectomy_bulge_mm)
        diameter = rng.uniform(*config.craniectomy_diameter_mm)
        defects.append(_cap("craniectomy", direction, diameter, semi, vault_mm, bulge, side))
    if rng.random() < config.burr_hole_prob:
        for _ in range(int(rng.integers(1, 4))):  # frontal to parietal convexity, either side
            direction = (rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.6), rng.uniform(-0.5, 0.6), rng.uniform(0.6, 1.0))
            defects.append(_cap("burr_hole", direction, rng.uniform(*BURR_HOLE_MM), semi, vault_mm))
    return defects


def defect_fields(defects: list[SkullDefect], x, y, z) -> tuple[np.ndarray, np.ndarray]:
    """Per point: how far inside the nearest defect (mm along the skull, > 0 inside) and the dura's bulge (mm)."""
    r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
    inside, bulge = None, np.zeros_like(x)
    for d in defects:
        cos = (x * F(d.direction[0]) + y * F(d.direction[1]) + z * F(d.direction[2])) / r
        depth = (F(d.angle_rad) - np.arccos(np.clip(cos, -1, 1))) * F(d.radius_mm)
        if d.side:
            depth = np.minimum(depth, x * F(d.side) - F(MIDLINE_STRIP_MM))
        inside = depth if inside is None else np.maximum(inside, depth)
        if d.bulge_mm > 0:  # dome-shaped: none at the bone edge, full in the inner half
            bulge = np.maximum(bulge, F(d.bulge_mm) * smoothstep(0.0, d.angle_rad * d.radius_mm / 2, depth))
    return inside, bulge
