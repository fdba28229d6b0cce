"""Contrast-filled arteries from the aortic arch to the cortex, and the dural venous sinuses.

Centrelines are control points of a standard anatomy (mm, anatomy frame), jittered by the
case's tortuosity and smoothed by a spline; radii taper along each vessel.
"""

from __future__ import annotations

import numpy as np

from .head import CAVITY_SEMI, INTRACRANIAL
from .shapes import mirrored, tube
from .tissues import Tissue
from .voxels import Shape

T = Tissue
# Vessels may run through anything but air spaces, teeth and the devices outside the body.
VESSEL_OVER = (T.FAT, T.SOFT_TISSUE, T.CORTICAL_BONE, T.CANCELLOUS_BONE, T.CSF, T.GRAY_MATTER,
               T.WHITE_MATTER, T.DURA, T.VEIN, T.SPINAL_CORD)
CIRCLE_Z = -24.0


def _cortical_branches(rng, start, side: int, n: int, tortuosity: float, centre_dir) -> list[Shape]:
    """Branches from ``start`` out to the cortical surface, then along it."""
    shapes: list[Shape] = []
    semi = np.asarray(CAVITY_SEMI)
    for _ in range(n):
        d = np.asarray(centre_dir, float) + rng.normal(0, 0.35, 3)
        d[0] = side * abs(d[0])
        d /= np.linalg.norm(d)
        surface = d / np.linalg.norm(d / semi) * 0.9
        along = rng.normal(0, 1, 3)
        along -= along @ d * d
        along *= 20 / np.linalg.norm(along)
        far = surface + along
        far = far / np.linalg.norm(far / semi) * 0.9
        mid = (np.asarray(start) + surface) / 2 + rng.normal(0, 3, 3)
        shapes += tube([start, mid, surface, far], (1.0, 0.5), T.ARTERY, rng, tortuosity, over=VESSEL_OVER)
    return shapes


def arteries(rng: np.random.Generator, tortuosity: float, with_arch: bool) -> list[Shape]:
    """Arch, carotids and vertebrals, the circle of Willis and the cerebral arteries."""
    tort = 0.5 + 2.5 * tortuosity
    s: list[Shape] = []
    if with_arch:
        s += tube([(12, 25, -340), (8, 18, -285), (-8, 2, -272), (-18, -20, -285), (-18, -28, -340)], (13.0, 11.0), T.ARTERY, over=VESSEL_OVER)
        s += tube([(6, 12, -278), (16, 12, -250)], (6.0, 5.5), T.ARTERY, over=VESSEL_OVER)  # brachiocephalic trunk
    for side in (-1, 1):
        origin = (20, 12, -250) if side == 1 else (-10, 8, -272)
        cca = mirrored([(abs(origin[0]), origin[1], origin[2]), (22, 12, -220), (24, 10, -150)], side)
        ica = mirrored([(24, 10, -150), (27, 2, -128), (26, 0, -95), (24, -4, -72), (23, -6, -62), (18, 4, -54),
                        (15, 10, -44), (15, 18, -36), (14, 12, -30), (14, 6, CIRCLE_Z)], side)
        eca = mirrored([(24, 10, -150), (25, 16, -138), (31, 24, -110), (38, 22, -80), (46, 30, -70)], side)
        subclavian = mirrored([(20, 12, -250), (45, 2, -255), (90, -4, -262), (140, -10, -270)], side)
        vert = mirrored([(40, 0, -256), (28, -12, -232), (22, -18, -210), (22, -18, -95), (26, -20, -80),
                         (30, -28, -72), (14, -36, -66), (5, -30, -58), (0, -22, -52)], side)
        m1 = mirrored([(14, 6, CIRCLE_Z), (28, 8, -22), (38, 5, -17)], side)
        a1a2 = mirrored([(14, 6, CIRCLE_Z), (6, 16, -20), (2, 22, -17), (2.2, 38, -4), (2.2, 41, 15), (2.2, 26, 32),
                         (2.2, 0, 38), (2.2, -30, 34)], side)
        pca = mirrored([(0, -12, -30), (8, -12, -28), (16, -22, -22), (22, -40, -14), (18, -62, -6), (12, -80, 0)], side)
        pcom = mirrored([(14, 6, CIRCLE_Z - 1), (11, -4, -27), (8, -12, -28)], side)
        sca = mirrored([(0, -14, -34), (14, -25, -33), (20, -45, -30)], side)
        pica = mirrored([(9, -32, -60), (16, -40, -52), (12, -52, -42)], side)
        if with_arch:
            s += tube(subclavian, (5.0, 4.0), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        s += tube(cca, (3.8, 3.5), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        s += tube(ica, (2.8, 2.1), T.ARTERY, rng, tort, over=VESSEL_OVER)
        s += tube(eca, (2.2, 1.2), T.ARTERY, rng, tort, over=VESSEL_OVER)
        s += tube(vert, (2.0, 1.6), T.ARTERY, rng, tort * 0.7, over=VESSEL_OVER)
        s += tube(m1, (1.7, 1.4), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        s += tube(a1a2, (1.2, 0.9), T.ARTERY, rng, tort * 0.3, over=VESSEL_OVER)
        s += tube(pca, (1.2, 0.8), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        s += tube(pcom, (0.7, 0.7), T.ARTERY, over=VESSEL_OVER)
        s += tube(sca, (0.8, 0.6), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        s += tube(pica, (0.8, 0.6), T.ARTERY, rng, tort * 0.5, over=VESSEL_OVER)
        for trunk_end, direction in (((side * 42, -4, -4), (1, 0.0, 0.5)), ((side * 44, -20, -12), (1, -0.4, -0.1))):
            s += tube([m1[-1], trunk_end], (1.3, 1.1), T.ARTERY, over=VESSEL_OVER)
            s += _cortical_branches(rng, trunk_end, side, 4, tort, direction)
        s += _cortical_branches(rng, a1a2[-3], side, 2, tort, (0.2, 0.3, 1.0))
        s += _cortical_branches(rng, pca[-2], side, 2, tort, (0.3, -1.0, 0.1))
    s += tube([(-2, 22, -17), (2, 22, -17)], (0.8, 0.8), T.ARTERY, over=VESSEL_OVER)  # anterior communicating
    s += tube([(0, -22, -52), (0, -17, -42), (0, -12, -30)], (1.7, 1.5), T.ARTERY, rng, tort * 0.3, over=VESSEL_OVER)  # basilar
    return s


def veins(rng: np.random.Generator, with_neck: bool) -> list[Shape]:
    """Dural venous sinuses (inside the cranial cavity) and the jugular veins."""
    a, b, c = CAVITY_SEMI
    theta = np.deg2rad(np.linspace(60, 205, 12))
    inset = np.array([5.5, 5.5])
    sss = np.stack([np.zeros_like(theta), (b - inset[0]) * np.cos(theta), (c - inset[1]) * np.sin(theta)], 1)
    s: list[Shape] = tube(sss, (2.5, 4.5), T.VEIN, over=INTRACRANIAL)
    s += tube([(0, -20, 16), (0, -48, 4), (0, -74, -12)], (2.0, 3.0), T.VEIN, over=INTRACRANIAL)  # straight sinus
    s += tube([(0, -2, 12), (0, -20, 16)], (1.2, 1.8), T.VEIN, over=INTRACRANIAL)  # internal cerebral veins
    for side in (-1, 1):
        transverse = mirrored([(0, -76, -14), (30, -72, -22), (50, -52, -32), (52, -34, -44), (44, -26, -54), (36, -22, -60)], side)
        s += tube(transverse, (4.0, 3.5), T.VEIN, over=INTRACRANIAL)
        s += tube(mirrored([(36, -22, -60), (34, -16, -66)], side), (3.5, 4.5), T.VEIN, over=VESSEL_OVER)
        if with_neck:
            jugular = mirrored([(34, -16, -66), (32, 0, -85), (33, 8, -150), (28, 12, -260)], side)
            s += tube(jugular, (4.5, 7.0), T.VEIN, rng, 1.0, over=(T.SOFT_TISSUE, T.FAT))
        for _ in range(3):  # cortical veins draining to the superior sagittal sinus
            t = rng.uniform(0.6, 1.9)
            end = np.array([0.0, (b - 6) * np.cos(t), (c - 6) * np.sin(t)])
            start = np.array([side * 45.0, end[1] + rng.normal(0, 10), end[2] - 30])
            start = start / np.linalg.norm(start / np.asarray(CAVITY_SEMI)) * 0.95
            s += tube([start, (start + end) / 2 * 1.08, end], (1.0, 1.5), T.VEIN, over=INTRACRANIAL)
    return s
