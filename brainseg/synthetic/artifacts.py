"""Image artifacts added per slice in HU: dark bands through the skull base, metal streaks.

Both are drawn in the scan plane (voxel index space), where a real scanner's projections
lie, and only on the slices they reach.
"""

from __future__ import annotations

import copy

import numpy as np

F = np.float32


def skull_base_band(hu: np.ndarray, pixel_xy_anatomy, z_anatomy: np.ndarray, amplitude: float) -> None:
    """Darken the band between the petrous bones (beam hardening), strongest ~42 mm below the centre."""
    weight = np.exp(-0.5 * ((z_anatomy + 42.0) / 7.0) ** 2)
    for n in np.flatnonzero(weight > 0.05):
        x, y = pixel_xy_anatomy(n)
        band = np.exp(-0.5 * ((y + F(20)) / F(5)) ** 2) * (np.abs(x) < F(40))
        hu[n] -= F(amplitude * weight[n]) * band


class MetalStreaks:
    """Bright and dark streaks radiating from metal (dental fillings) within a few mm of its slice.

    Each piece's streak directions and strengths are drawn once per case, and its in-plane
    pattern computed once, when the first slice near it is rendered.
    """

    def __init__(self, metal_vox: list[np.ndarray], pixel_mm: float, slice_mm: float, rng: np.random.Generator):
        self.metal = [(float(mi), float(mj), float(mk)) for mi, mj, mk in metal_vox]
        self.streaks = [(rng.uniform(0, np.pi, 10), rng.uniform(-500, 400, 10)) for _ in self.metal]
        self.pixel_mm, self.slice_mm = pixel_mm, slice_mm
        self._patterns: dict[int, np.ndarray] = {}

    def at(self, metal_vox: list[np.ndarray]) -> "MetalStreaks":
        """The same streaks around metal at other voxel positions (the head moved)."""
        moved = copy.copy(self)
        moved.metal = [(float(mi), float(mj), float(mk)) for mi, mj, mk in metal_vox]
        moved._patterns = {}
        return moved

    def _pattern(self, n: int, shape_ji: tuple[int, int]) -> np.ndarray:
        if n not in self._patterns:
            mi, mj, _ = self.metal[n]
            j, i = np.ogrid[: shape_ji[0], : shape_ji[1]]
            di, dj = (i - F(mi)) * F(self.pixel_mm), (j - F(mj)) * F(self.pixel_mm)
            r = np.sqrt(di * di + dj * dj)
            pattern = np.zeros(shape_ji, np.float32)
            for angle, amp in zip(*self.streaks[n]):
                dist = np.abs(di * F(np.sin(angle)) - dj * F(np.cos(angle)))
                pattern += F(amp) * np.exp(-0.5 * (dist / F(1.2)) ** 2)
            pattern /= F(1.0) + r / F(40.0)
            self._patterns[n] = pattern
        return self._patterns[n]

    def __call__(self, hu: np.ndarray, k_slices: np.ndarray) -> None:
        """Add the streaks to ``hu`` (k, j, i), whose slices sit at indices ``k_slices``."""
        for n, (_, _, mk) in enumerate(self.metal):
            for s in np.flatnonzero(np.abs(k_slices - mk) * self.slice_mm < 5.0):
                hu[s] += self._pattern(n, hu.shape[1:]) * F(1.0 - abs(k_slices[s] - mk) * self.slice_mm / 5.0)
