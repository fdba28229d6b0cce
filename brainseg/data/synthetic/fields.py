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
    out = [p[:1]]
    for a, b, c, d in zip(padded[:-3], padded[1:-2], padded[2:-1], padded[3:]):
        n = max(int(np.ceil(np.linalg.norm(c - b) / step_mm)), 1)
        t = (np.arange(1, n + 1) / n)[:, None]
        out.append(
            0.5 * ((2 * b) + (-a + c) * t + (2 * a - 5 * b + 4 * c - d) * t**2 + (-a + 3 * b - 3 * c + d) * t**3)
        )
    return np.vstack(out)


def segment_distance_sq(x, y, z, p0: np.ndarray, p1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared distance to segment p0-p1 and the position t in [0, 1] of the nearest point."""
    d = (p1 - p0).astype(np.float64)
    length_sq = max(float(d @ d), 1e-9)
    rx, ry, rz = x - F(p0[0]), y - F(p0[1]), z - F(p0[2])
    t = np.clip((rx * F(d[0]) + ry * F(d[1]) + rz * F(d[2])) * F(1 / length_sq), 0, 1)
    ex, ey, ez = rx - t * F(d[0]), ry - t * F(d[1]), rz - t * F(d[2])
    return ex * ex + ey * ey + ez * ez, t
