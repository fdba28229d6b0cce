"""Everything around the cranium: scalp, face, orbits, sinuses, jaw and teeth, neck, shoulders."""

from __future__ import annotations

import numpy as np

from .head import CAVITY_SEMI
from .shapes import BodyPart, Ellipsoid, mirrored, tube
from .tissues import Tissue
from .voxels import Shape

T = Tissue
BONE = (T.CORTICAL_BONE, T.CANCELLOUS_BONE)
FLESH = (T.SOFT_TISSUE, T.FAT)


def body(vault_mm: float, scalp_mm: float, shoulders: bool, vault_lift_mm: float = 0.0) -> list[Shape]:
    """Skin-covered envelope: head, face, nose, ears, neck and optionally shoulders.

    ``vault_lift_mm``: the cranial cavity reaches this much higher than the analytic one (the
    atlas cavity); a second, raised copy of the head's envelope covers it.
    """
    head = tuple(s + 1.5 * vault_mm + scalp_mm for s in CAVITY_SEMI)
    parts: list[Shape] = [
        BodyPart((0, 0, 0), head, fat_mm=max(scalp_mm - 3.0, 1.0)),
        BodyPart((0, 40, -68), (56, 56, 52)),
        BodyPart((0, 94, -52), (11, 14, 20), fat_mm=0),
        BodyPart((0, -6, -200), (50, 56, 140), cylinder=True, fat_mm=6.0),
    ]
    parts += [BodyPart((side * 80, -12, -40), (6, 16, 27), fat_mm=0) for side in (-1, 1)]
    if vault_lift_mm > 0:
        parts.append(BodyPart((0, 0, vault_lift_mm), head, fat_mm=max(scalp_mm - 3.0, 1.0)))
    if shoulders:
        parts.append(BodyPart((0, -4, -300), (200, 80, 72), fat_mm=10.0))
    return parts


def spine() -> list[Shape]:
    """Cervical vertebrae (cortical shell, cancellous body, arch, transverse foramina), canal and cord."""
    shapes: list[Shape] = []
    for n, zc in enumerate(np.arange(-78.0, -330.0, -16.5)):
        if n == 0:  # atlas: a ring without a body, the dens of C2 rising into it
            shapes += tube([(-14, -10, zc), (0, -8, zc), (14, -10, zc)], (4.0, 4.0), T.CORTICAL_BONE, over=FLESH)
            shapes.append(Ellipsoid(T.CORTICAL_BONE, (0, -16, zc - 4), (5, 5, 10), over=FLESH))
        else:
            shapes.append(Ellipsoid(T.CORTICAL_BONE, (0, -16, zc), (11, 9, 7.5), over=FLESH))
            shapes.append(Ellipsoid(T.CANCELLOUS_BONE, (0, -16, zc), (9.5, 7.5, 6.3), over=(T.CORTICAL_BONE,)))
        arch = [(-9, -24, zc), (-13, -36, zc), (0, -46, zc), (13, -36, zc), (9, -24, zc)]
        shapes += tube(arch, (3.0, 3.0), T.CORTICAL_BONE, over=FLESH, step_mm=3)
        shapes += tube([(0, -45, zc), (0, -60, zc - 6)], (3.0, 2.2), T.CORTICAL_BONE, over=FLESH)
        for side in (-1, 1):
            shapes += tube(mirrored([(10, -16, zc), (22, -18, zc), (30, -20, zc)], side), (4.5, 3.5), T.CORTICAL_BONE, over=FLESH)
            shapes.append(Ellipsoid(T.SOFT_TISSUE, (side * 22, -18, zc), (2.6, 2.6, 6), over=BONE))  # transverse foramen
    shapes += tube([(0, -32, -52), (0, -34, -140), (0, -30, -340)], (8.0, 7.0), T.CSF, over=FLESH)
    shapes += tube([(0, -29, -52), (0, -33, -140), (0, -29, -340)], (5.0, 4.5), T.SPINAL_CORD, over=(T.CSF,))
    return shapes


def face(rng: np.random.Generator, dental_metal: bool) -> tuple[list[Shape], list[np.ndarray]]:
    """Facial skeleton with sinuses, orbits, jaw and teeth; returns shapes and metal positions."""
    shapes: list[Shape] = [
        Ellipsoid(T.CANCELLOUS_BONE, (0, 50, -64), (44, 32, 26), over=FLESH),  # maxilla, hard palate
        Ellipsoid(T.CORTICAL_BONE, (0, 84, 8), (24, 8, 16), over=FLESH),  # frontal bone around the frontal sinus
        Ellipsoid(T.AIR, (0, 52, -60), (8, 30, 22), over=BONE + FLESH),  # nasal cavity
        Ellipsoid(T.CORTICAL_BONE, (0, 52, -60), (0.8, 28, 20), over=(T.AIR,)),  # septum
        Ellipsoid(T.AIR, (0, 15, -50), (11, 9, 8), over=BONE),  # sphenoid sinus
    ]
    frontal = rng.uniform(0.3, 1.0)  # pneumatization varies a lot
    for side in (-1, 1):
        shapes += [
            Ellipsoid(T.AIR, (side * 7, 86, 8), (7 * frontal, 4, 10 * frontal), over=BONE),
            Ellipsoid(T.AIR, (side * 25, 50, -66), (13, 15, 15), over=BONE + FLESH),  # maxillary sinus
            Ellipsoid(T.AIR, (side * 11, 42, -38), (5, 13, 8), over=BONE),  # ethmoid cells
            Ellipsoid(T.FAT, (side * 32, 58, -38), (17, 22, 14), over=BONE + FLESH),  # orbit
            Ellipsoid(T.EYE, (side * 32, 68, -38), (12, 12, 12), over=(T.FAT,) + BONE + FLESH),
            Ellipsoid(T.LENS, (side * 32, 79, -38), (4.5, 1.8, 4.5), over=(T.EYE,)),
        ]
        shapes += tube(mirrored([(30, 56, -38), (20, 40, -34), (12, 28, -32)], side), (2.2, 2.0), T.SOFT_TISSUE, over=(T.FAT,) + BONE)
        shapes += tube(mirrored([(44, 48, -44), (56, 22, -47), (60, -2, -48)], side), (3.5, 3.0), T.CORTICAL_BONE, over=FLESH)
        for _ in range(int(rng.integers(6, 16))):  # mastoid air cells
            c = (side * rng.uniform(42, 56), rng.uniform(-34, -18), rng.uniform(-62, -46))
            shapes.append(Ellipsoid(T.AIR, c, tuple(rng.uniform(1.5, 4.0, 3)), over=BONE))
        shapes += tube(mirrored([(82, -12, -46), (62, -12, -46)], side), (3.5, 3.0), T.AIR, over=BONE + FLESH)
        jaw = mirrored([(50, -4, -58), (52, 2, -80), (50, 8, -100), (40, 36, -110)], side)
        shapes += tube(jaw, (5.5, 7.0), T.CORTICAL_BONE, over=FLESH, step_mm=3)
        shapes += tube(jaw, (3.0, 4.0), T.CANCELLOUS_BONE, over=(T.CORTICAL_BONE,), step_mm=3)
    shapes += tube([(-40, 36, -110), (0, 64, -112), (40, 36, -110)], (7.0, 7.0), T.CORTICAL_BONE, over=FLESH)
    metal: list[np.ndarray] = []
    for z, arch in ((-86, 1.0), (-100, 0.94)):  # upper and lower teeth along parabolic arches
        for x in np.linspace(-34, 34, 14):
            centre = np.array([x * arch, 68 - 0.018 * x * x - 4, z])
            shapes.append(Ellipsoid(T.TEETH, tuple(centre), (3.2, 3.8, 5.5), over=BONE + FLESH))
            if dental_metal and abs(x) > 15 and rng.random() < 0.3:
                metal.append(centre + [0, 0, 3 if z < -90 else -3])
                shapes.append(Ellipsoid(T.METAL, tuple(metal[-1]), (2.5, 2.5, 1.8), over=(T.TEETH,) + FLESH))
    return shapes, metal


def airway_and_neck() -> list[Shape]:
    """Pharynx, larynx and trachea; fat planes of the neck."""
    shapes = tube([(0, 18, -62), (0, 12, -80), (0, 10, -110), (0, 18, -135), (0, 20, -200), (0, 14, -340)],
                  (7.0, 8.5), T.AIR, over=FLESH, step_mm=4)
    for side in (-1, 1):
        shapes.append(Ellipsoid(T.FAT, (side * 34, -26, -170), (11, 16, 70), over=(T.SOFT_TISSUE,)))
        shapes.append(Ellipsoid(T.FAT, (side * 18, 22, -125), (8, 8, 25), over=(T.SOFT_TISSUE,)))
    return shapes


def shoulders() -> list[Shape]:
    """Clavicles, humeral heads, top of the sternum and the lung apices."""
    shapes: list[Shape] = [Ellipsoid(T.CANCELLOUS_BONE, (0, 30, -300), (22, 8, 25), over=FLESH)]
    for side in (-1, 1):
        shapes += tube(mirrored([(14, 28, -272), (60, 22, -262), (120, -4, -255)], side), (6.0, 6.0), T.CORTICAL_BONE, over=FLESH)
        shapes.append(Ellipsoid(T.CORTICAL_BONE, (side * 165, -8, -285), (24, 24, 24), over=FLESH))
        shapes.append(Ellipsoid(T.CANCELLOUS_BONE, (side * 165, -8, -285), (21, 21, 21), over=(T.CORTICAL_BONE,)))
        shapes.append(Ellipsoid(T.AIR, (side * 48, -12, -360), (38, 45, 80), over=FLESH))
    return shapes
