"""Skull and brain: vault and skull base, CSF spaces, folded cortex, cerebellum, ventricles.

All in the anatomy frame (head frame divided by the case's head size): mm of a standard
adult head, origin at the centre of the cranial cavity, RAS axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import fields
from .canvas import Block, Shape
from .shapes import Ellipsoid, tube
from .tissues import Tissue

F = np.float32
CAVITY_SEMI = (67.0, 84.0, 62.0)
INTRACRANIAL = (Tissue.CSF, Tissue.GRAY_MATTER, Tissue.WHITE_MATTER, Tissue.DURA)


def cranial_floor(x, y) -> np.ndarray:
    """Height of the cranial floor: anterior fossa over the orbits, middle fossa, posterior fossa.

    Includes the petrous ridges between middle and posterior fossae and the sella turcica.
    """
    ax = np.abs(x)
    middle = F(-44) + F(14) * fields.smoothstep(28, 8, ax)  # temporal fossae, sphenoid body in the middle
    posterior = F(-58) + F(8) * np.exp(-((y + F(30)) ** 2 + ax * ax) / F(300))  # cerebellar bowls, clivus
    z = middle + (posterior - middle) * fields.smoothstep(-6, -20, y)
    z = z + (F(-19) + F(3) * fields.smoothstep(10, 35, ax) - z) * fields.smoothstep(20, 32, y)  # anterior fossa
    # Petrous ridges: oblique crests from the clivus to the mastoids.
    along = (ax * F(0.8) - (y + F(4)) * F(0.6)) - F(12)
    across = ax * F(0.6) + (y + F(4)) * F(0.8)
    ridge = np.exp(-(across / F(6)) ** 2) * fields.smoothstep(0, 8, along) * fields.smoothstep(60, 45, along)
    return z + F(16) * ridge


@dataclass
class Cranium(Shape):
    """Skull vault and base, and the cranial cavity's contents: CSF, cerebrum, cerebellum.

    The cavity is an ellipsoid with low-order radial bumps, cut from below by the cranial
    floor. The cerebrum is the cavity shrunk by the subarachnoid space, folded by sulci
    where a random smooth field crosses zero; white matter lies deeper than the cortical
    ribbon from both the surface and the nearest sulcus. Also sets the mask.
    """

    rng_state: int
    vault_mm: float
    base_mm: float
    csf_mm: float
    sulcus_mm: float  # half-width of sulcal CSF
    cortex_mm: float = 2.8
    sulcus_depth_mm: float = 16.0
    fissure_mm: float = 1.2
    bumps: np.ndarray = field(init=False)
    waves: np.ndarray = field(init=False)

    def __post_init__(self):
        rng = np.random.default_rng(self.rng_state)
        s = np.asarray(CAVITY_SEMI) + self.vault_mm + 2
        self.lo, self.hi = -s, s
        self.bumps = rng.normal(0, 1.6, 6)  # mm, on u_x, u_y, u_z, u_x*u_y, u_y*u_z, u_y^2
        directions = rng.normal(size=(4, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavelength = rng.uniform(16, 24, (4, 1))
        self.waves = np.hstack([directions * (2 * np.pi / wavelength), rng.uniform(0, 2 * np.pi, (4, 1))])
        self.thick = rng.normal(0, 0.15, 3)

    def inner(self, x, y, z):
        e = fields.ellipsoid(x, y, z, (0, 0, 0), CAVITY_SEMI)
        r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
        ux, uy, uz = x / r, y / r, z / r
        c = self.bumps.astype(F)
        return e - (c[0] * ux + c[1] * uy + c[2] * uz + c[3] * ux * uy + c[4] * uy * uz + c[5] * (uy * uy - F(0.5)))

    def thickness(self, x, y, z):
        """Vault thickness: thicker frontally and at the occiput, thin over the temporal squama."""
        r = np.sqrt(x * x + y * y + z * z) + F(1e-3)
        ux, uy, uz = x / r, y / r, z / r
        t = F(1) + F(self.thick[0]) * ux + F(self.thick[1]) * uy + F(0.25) * uy * uy - F(0.35) * ux * ux * (F(1) - uz * uz)
        occipital = F(0.5) * np.exp(-((uy + F(0.9)) ** 2 + (uz + F(0.15)) ** 2) / F(0.03))
        return F(self.vault_mm) * (t + occipital)

    def gyri(self, x, y, z):
        w = self.waves.astype(F)
        return sum(np.cos(w[n, 0] * x + w[n, 1] * y + w[n, 2] * z + w[n, 3]) for n in range(len(w)))

    def paint(self, b: Block) -> None:
        e = b.smooth(self.inner)
        floor = b.smooth(lambda x, y, z: cranial_floor(x, y) - z)
        d = np.maximum(e, floor)
        outer = e - b.smooth(self.thickness)
        inside = d < 0
        foramen = (b.x * b.x + (b.y + F(30)) ** 2) < F(15**2)
        bone = ~inside & (outer < 0) & (floor < F(self.base_mm)) & ~(foramen & (floor > 0))
        np.copyto(b.labels, np.uint8(Tissue.CANCELLOUS_BONE), where=bone)
        tables = bone & ((d < F(1.6)) | (outer > F(-1.8)) | (floor > F(self.base_mm - 2)))
        np.copyto(b.labels, np.uint8(Tissue.CORTICAL_BONE), where=tables)
        np.copyto(b.labels, np.uint8(Tissue.CSF), where=inside)
        b.mask[...] = inside
        if not inside.any():
            return
        depth = -(d + F(self.csf_mm))  # depth below the brain surface
        tentorium = b.smooth(lambda x, y, z: self.tentorium(x, y))
        infratentorial = (b.z < tentorium) & (b.y < F(-8))
        cerebrum = (depth > 0) & ~infratentorial
        fissure_floor = b.smooth(lambda x, y, z: F(22) - F(45) * (fields.smoothstep(30, 50, y) + fields.smoothstep(30, 50, -y)))
        fissure = (np.abs(b.x) < F(self.fissure_mm)) & (b.z > fissure_floor)
        cerebrum &= ~fissure
        gyral = np.abs(b.smooth(self.gyri)) * F(1 / 0.3)  # ~ mm to the sulcal midline
        sulcus = (depth < F(self.sulcus_depth_mm)) & (gyral < F(self.sulcus_mm))
        np.copyto(b.labels, np.uint8(Tissue.GRAY_MATTER), where=cerebrum & ~sulcus)
        white = cerebrum & (depth > F(self.cortex_mm)) & (
            (gyral > F(self.sulcus_mm + self.cortex_mm)) | (depth > F(self.sulcus_depth_mm + self.cortex_mm))
        )
        np.copyto(b.labels, np.uint8(Tissue.WHITE_MATTER), where=white)
        falx = (np.abs(b.x) < F(0.7)) & (b.z > fissure_floor - F(3)) & inside & (depth < F(60))
        tent = (np.abs(b.z - tentorium) < F(0.7)) & (b.y < F(-12)) & ~((np.abs(b.x) < F(14)) & (b.y > F(-48)))
        np.copyto(b.labels, np.uint8(Tissue.DURA), where=inside & (falx | tent))
        self.paint_cerebellum(b, depth, infratentorial)

    @staticmethod
    def tentorium(x, y):
        """Height of the tentorium: a tent rising to the midline and forward to the notch."""
        return F(-20) - F(0.3) * np.abs(x) + F(0.22) * np.minimum(y + F(20), F(0))

    def paint_cerebellum(self, b: Block, depth, infratentorial) -> None:
        region = infratentorial & (depth > 0)
        if not region.any():
            return
        # Evaluated on the infratentorial voxels only: a small fraction of the block.
        x, y, z, dep = b.x[region], b.y[region], b.z[region], depth[region]
        hemis = np.minimum(
            fields.ellipsoid(x, y, z, (24, -52, -42), (27, 25, 19)),
            fields.ellipsoid(x, y, z, (-24, -52, -42), (27, 25, 19)),
        )
        lobes = np.minimum(hemis, fields.ellipsoid(x, y, z, (0, -50, -37), (11, 22, 17)))
        # Folia: thin CSF clefts in concentric shells around each hemisphere's core.
        core = np.sqrt((np.abs(x) - F(20)) ** 2 + (y + F(50)) ** 2 + (z + F(40)) ** 2)
        folia = (np.cos(core * F(2 * np.pi / 4.5)) > F(0.8)) & (dep < F(12))
        labels = b.labels[region]
        labels[(lobes < 0) & ~folia] = Tissue.GRAY_MATTER
        labels[(lobes < F(-11)) & (dep > F(6))] = Tissue.WHITE_MATTER
        b.labels[region] = labels


def deep_structures(rng: np.random.Generator, atrophy: float) -> list[Shape]:
    """Basal ganglia, thalami, brainstem and the ventricular system (larger with atrophy)."""
    shapes: list[Shape] = []
    brain = (Tissue.GRAY_MATTER, Tissue.WHITE_MATTER)
    for side in (-1, 1):
        shapes += [
            Ellipsoid(Tissue.GRAY_MATTER, (side * 12, 16, 10), (5, 9, 8), over=(Tissue.WHITE_MATTER,)),  # caudate
            Ellipsoid(Tissue.GRAY_MATTER, (side * 22, 4, 0), (6, 14, 9), over=(Tissue.WHITE_MATTER,)),  # lentiform
            Ellipsoid(Tissue.GRAY_MATTER, (side * 9, -14, 4), (8, 13, 9), over=(Tissue.WHITE_MATTER,)),  # thalamus
        ]
    shapes += tube([(0, -12, -6), (0, -18, -25), (0, -22, -42), (0, -27, -60)], (11.0, 9.0), Tissue.WHITE_MATTER,
                   over=INTRACRANIAL, step_mm=3.0)  # midbrain, pons, medulla
    v = 0.8 + 1.4 * atrophy * rng.uniform(0.6, 1.0)
    for side in (-1, 1):
        path = [(side * 9, 28, 10), (side * 12, 12, 18), (side * 15, -12, 20), (side * 20, -30, 14), (side * 17, -52, 6)]
        shapes += tube(path, (3.5 * v, 2.0 * v), Tissue.CSF, over=brain, step_mm=2.5)
        temporal = [(side * 20, -30, 14), (side * 28, -24, -4), (side * 30, -6, -16), (side * 28, 8, -20)]
        shapes += tube(temporal, (2.4 * v, 1.2 * v), Tissue.CSF, over=brain, step_mm=2.5)
    shapes.append(Ellipsoid(Tissue.CSF, (0, -4, 4), (1.5 * v, 13, 9), over=brain))  # third ventricle
    shapes.append(Ellipsoid(Tissue.CSF, (0, -34, -42), (5 * v, 3.5 * v, 6), over=brain))  # fourth ventricle
    return shapes
