"""Implicit-surface primitives evaluated on float32 coordinate arrays (head frame, mm).

Distances are approximate signed distances (negative inside), accurate near the surface,
which is all that offset surfaces such as skull tables and scalp need.
"""

from __future__ import annotations

import numpy as np

F = np.float32


def ellipsoid(x, y, z, centre, semi) -> np.ndarray:
    """Approximate signed distance to an ellipsoid (Quilez's k0*(k0-1)/k1 bound)."""
    cx, cy, cz = (F(c) for c in centre)
    ax, ay, az = (F(s) for s in semi)
    u, v, w = (x - cx) / ax, (y - cy) / ay, (z - cz) / az
    k0 = np.sqrt(u * u + v * v + w * w)
    k1 = np.sqrt((u / ax) ** 2 + (v / ay) ** 2 + (w / az) ** 2)
    k1 += F(1e-6)
    return k0 * (k0 - F(1)) / k1


def ellipse_2d(a, b, centre, semi) -> np.ndarray:
    """Approximate signed distance to an ellipse in a plane (an infinite elliptic cylinder)."""
    u, v = (a - F(centre[0])) / F(semi[0]), (b - F(centre[1])) / F(semi[1])
    k0 = np.sqrt(u * u + v * v)
    k1 = np.sqrt((u / F(semi[0])) ** 2 + (v / F(semi[1])) ** 2) + F(1e-6)
    return k0 * (k0 - F(1)) / k1


def smoothstep(edge0: float, edge1: float, t) -> np.ndarray:
    """0 below edge0, 1 above edge1, smooth in between (works on arrays)."""
    s = np.clip((t - F(edge0)) / F(edge1 - edge0), 0, 1)
    return s * s * (F(3) - F(2) * s)


def catmull_rom(points: np.ndarray, step_mm: float) -> np.ndarray:
    """Points every ~``step_mm`` along a Catmull-Rom spline through ``points`` (n, 3)."""
    p = np.asarray(points, dtype=np.float64)
    padded = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    a, b, c, d = padded[:-3], padded[1:-2], padded[2:-1], padded[3:]
    counts = np.maximum(np.ceil(np.linalg.norm(c - b, axis=1) / step_mm).astype(int), 1)
    span = np.repeat(np.arange(len(counts)), counts)  # which span each output point lies on
    t = ((np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + 1) / counts[span])[:, None]
    a, b, c, d = a[span], b[span], c[span], d[span]
    curve = 0.5 * ((2 * b) + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (-a + 3 * b - 3 * c + d) * t**3)
    return np.vstack([p[:1], curve])
