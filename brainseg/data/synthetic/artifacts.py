"""Image artifacts added per slice in HU: dark bands through the skull base, metal streaks.

Both are drawn in the scan plane (voxel index space), where a real scanner's projections
lie, and only on the slices they reach.
"""

from __future__ import annotations

import numpy as np

F = np.float32


def skull_base_band(hu: np.ndarray, pixel_xy_anatomy, z_anatomy: np.ndarray, amplitude: float) -> None:
    """Darken the band between the petrous bones (beam hardening), strongest ~42 mm below the centre."""
    weight = np.exp(-0.5 * ((z_anatomy + 42.0) / 7.0) ** 2)
    for n in np.flatnonzero(weight > 0.05):
        x, y = pixel_xy_anatomy(n)
        band = np.exp(-0.5 * ((y + F(20)) / F(5)) ** 2) * (np.abs(x) < F(40))
        hu[n] -= F(amplitude * weight[n]) * band


def metal_streaks(hu: np.ndarray, k_slab: np.ndarray, metal_vox: np.ndarray, pixel_mm: float, slice_mm: float,
                  rng: np.random.Generator) -> None:
    """Bright and dark streaks radiating from metal (dental fillings) within a few mm of its slice."""
    nj, ni = hu.shape[1:]
    j, i = np.ogrid[:nj, :ni]
    for mi, mj, mk in metal_vox:
        near = np.flatnonzero(np.abs(k_slab - mk) * slice_mm < 5.0)
        if near.size == 0:
            continue
        di, dj = (i - F(mi)) * F(pixel_mm), (j - F(mj)) * F(pixel_mm)
        r = np.sqrt(di * di + dj * dj)
        pattern = np.zeros((nj, ni), np.float32)
        for angle, amp in zip(rng.uniform(0, np.pi, 10), rng.uniform(-500, 400, 10)):
            dist = np.abs(di * F(np.sin(angle)) - dj * F(np.cos(angle)))
            pattern += F(amp) * np.exp(-0.5 * (dist / F(1.2)) ** 2)
        pattern /= F(1.0) + r / F(40.0)
        for n in near:
            hu[n] += pattern * F(1.0 - abs(k_slab[n] - mk) * slice_mm / 5.0)
