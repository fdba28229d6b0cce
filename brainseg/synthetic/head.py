"""Skull and brain: vault and skull base, CSF spaces, folded cortex, cerebellum, ventricles.

All in the anatomy frame (head frame divided by the case's head size): mm of a standard
adult head, origin at the centre of the cranial cavity, RAS axes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import fields
from .cavity_prior import load_prior
from .defects import COVER_MM, FLOOR_MARGIN_MM, SkullDefect, defect_fields
from .shapes import Ellipsoid, tube
from .tiles import Bricks, TiledShape
from .tissues import Tissue
from .voxels import Shape

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


def tentorium(x, y):
    """Height of the tentorium: a tent rising to the midline and forward to the notch."""
    return F(-20) - F(0.3) * np.abs(x) + F(0.22) * np.minimum(y + F(20), F(0))


def fissure_floor(y):
    """Lower edge of the interhemispheric fissure (and the falx): high in the middle, low at the poles."""
    return F(22) - F(45) * (fields.smoothstep(30, 50, y) + fields.smoothstep(30, 50, -y))


@dataclass
class Cranium(TiledShape):
    """Skull vault and base, and the cranial cavity's contents: CSF, cerebrum, cerebellum.

    The cavity is an ellipsoid with low-order radial bumps, cut from below by the cranial
    floor. The cerebrum is the cavity shrunk by the subarachnoid space, folded by sulci
    where a random smooth field crosses zero; white matter lies deeper than the cortical
    ribbon from both the surface and the nearest sulcus. Also sets the mask.

    Painted brick by brick (see ``tiles``): bricks outside the outer table or below the skull
    base are skipped; bricks outside the cavity get the skull's rules only, bricks inside it
    the brain's only (and away from the midline and the tentorium just depth and gyri), deep
    white matter is filled, and bricks the inner table crosses get all the rules.

    ``defects`` (craniectomy, burr holes) remove the vault's bone over caps of it and may let
    the cavity, and so the mask, bulge outward there (see ``defects``).

    With ``atlas``, the cavity and its floor are the MNI152 brain's (``cavity_prior``) instead of
    the analytic ellipsoid and floor, with the same random bumps, and the cerebellum fills the
    whole posterior fossa below the tentorium.
    """

    rng_state: int
    vault_mm: float
    base_mm: float
    csf_mm: float
    sulcus_mm: float  # half-width of sulcal CSF
    cortex_mm: float = 2.8
    sulcus_depth_mm: float = 16.0
    fissure_mm: float = 1.2
    defects: tuple[SkullDefect, ...] = ()
    atlas: bool = False
    bumps: np.ndarray = field(init=False)
    waves: np.ndarray = field(init=False)
    painters = ("paint", "paint_skull", "paint_inside", "paint_cortex", "paint_white")  # per brick code 1-5

    def __post_init__(self):
        rng = np.random.default_rng(self.rng_state)
        self.bumps = rng.normal(0, 1.6, 6)  # mm, on u_x, u_y, u_z, u_x*u_y, u_y*u_z, u_y^2
        directions = rng.normal(size=(4, 3))
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        wavelength = rng.uniform(16, 24, (4, 1))
        self.waves = np.hstack([directions * (2 * np.pi / wavelength), rng.uniform(0, 2 * np.pi, (4, 1))])
        self.thick = rng.normal(0, 0.15, 3)
        # Everything painted lies inside the outer table (thickness up to ~2x the vault's) or the skull base.
        reach = np.abs(self.bumps).sum() + 2.2 * self.vault_mm + 4
        if self.defects:  # room for a bulge and the scalp over it
            reach += max(d.bulge_mm for d in self.defects) + COVER_MM + 1
        if self.atlas:
            prior = load_prior()
            self.lo, self.hi = prior.box[0] - reach, prior.box[1] + reach
            self.lo[2] = min(self.lo[2], float(prior.floor_z.min()) - self.base_mm - 4)
        else:
            self.lo, self.hi = -(np.asarray(CAVITY_SEMI) + reach), np.asarray(CAVITY_SEMI) + reach
            self.lo[2] = min(self.lo[2], -58.0 - self.base_mm - 4)
        self.foramen = load_prior().foramen if self.atlas else (0.0, -30.0)

    def inner(self, x, y, z):
        e = load_prior().distance(x, y, z) if self.atlas else fields.ellipsoid(x, y, z, (0, 0, 0), CAVITY_SEMI)
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

    def coarse(self, x, y, z):
        e = self.inner(x, y, z)
        floor = (load_prior().floor(x, y) if self.atlas else cranial_floor(x, y)) - z
        if self.defects:
            inside, bulge = defect_fields(list(self.defects), x, y, z)
            # Where the dura bulges, "inside the outer table" reaches over it and the scalp covering it.
            outer = e - np.maximum(self.thickness(x, y, z), np.where(bulge > 0, bulge + F(COVER_MM + 1), F(0)))
            e = e - bulge
        else:
            outer = e - self.thickness(x, y, z)
        out = {
            "cavity": np.maximum(e, floor),  # < 0 inside the inner table (or dura) and above the cranial floor
            "floor": floor,
            "outer": outer,  # < 0 inside the outer table
            "above_tentorium": z - tentorium(x, y),
            "above_fissure": z - fissure_floor(y),
            "gyri": self.gyri(x, y, z),  # |gyri| / 0.3 ~ mm to the sulcal midline
        }
        if self.defects:  # > 0 where bone is missing; the skull base stays
            out["defect"] = np.minimum(inside, -floor - F(FLOOR_MARGIN_MM))
        return out

    def classify(self, box):
        lo, hi = box.lo, box.hi
        codes = np.full(box.shape, 1, np.uint8)  # paint: the inner table crosses the brick
        codes[lo["cavity"] >= 0] = 2  # paint_skull: outside the cavity
        inside = hi["cavity"] < 0
        codes[inside] = 3  # paint_inside: no bone
        midline = F(max(self.fissure_mm, 0.7))
        off_midline = (lo["x"] >= midline) | (hi["x"] <= -midline)  # no fissure, no falx
        supratentorial = (lo["above_tentorium"] >= F(0.7)) | (lo["y"] >= F(-8))  # no cerebellum, no tentorium
        simple = inside & off_midline & supratentorial
        codes[simple] = 4  # paint_cortex
        codes[simple & (hi["cavity"] < -F(self.csf_mm + self.sulcus_depth_mm + self.cortex_mm))] = 5  # below the sulci
        codes[(lo["outer"] >= 0) | (lo["floor"] >= F(self.base_mm))] = 0  # no bone, no cavity
        if self.defects:
            codes[(lo["defect"] > 0) & (lo["cavity"] >= F(COVER_MM))] = 0  # in a defect, beyond the scalp over the dura
        return codes

    def paint(self, b: Bricks) -> None:
        d = b.field("cavity")
        inside = d < 0
        self.paint_skull(b, ~inside)
        b.set(Tissue.CSF, inside)
        b.mask = inside
        self.paint_brain(b, d, inside)

    def paint_skull(self, b: Bricks, outside: np.ndarray | None = None) -> None:
        """Diploe between cortical tables, and the skull base, around the cavity (``outside`` it; None: all)."""
        d, fl, outer = b.field("cavity"), b.field("floor"), b.field("outer")
        bone = (outer < 0) & (fl < F(self.base_mm))
        if outside is not None:
            bone &= outside
        if self.defects:  # no bone in a defect; the scalp covers a bulging dura
            in_defect = b.field("defect") > 0
            b.set(Tissue.SOFT_TISSUE, bone & in_defect & (d >= 0) & (d < F(COVER_MM)), over=(Tissue.AIR,))
            bone &= ~in_defect
        hole = bone & (fl > 0)  # below the floor: the foramen magnum may open there
        if hole.any():
            hole &= ((b.x - F(self.foramen[0])) ** 2 + (b.y - F(self.foramen[1])) ** 2) < F(15**2)
            bone &= ~hole
        b.set(Tissue.CANCELLOUS_BONE, bone)
        tables = (d < F(1.6)) | (outer > F(-1.8)) | (fl > F(self.base_mm - 2))
        b.set(Tissue.CORTICAL_BONE, tables & bone)

    def paint_inside(self, b: Bricks) -> None:
        b.fill(Tissue.CSF)
        b.mask = True
        self.paint_brain(b, b.field("cavity"), None)

    def paint_cortex(self, b: Bricks) -> None:
        """Away from the midline and the tentorium: CSF, gray and white matter from depth and gyri alone."""
        depth = b.field("cavity") + F(self.csf_mm)
        np.negative(depth, out=depth)
        gray, white = self._cortex(depth, np.abs(b.field("gyri")))
        labels = np.full(b.shape, Tissue.CSF, np.uint8)
        labels += gray * np.uint8(Tissue.GRAY_MATTER - Tissue.CSF)
        labels += white * np.uint8(Tissue.WHITE_MATTER - Tissue.GRAY_MATTER)  # white lies within gray
        b.labels = labels
        b.mask = True

    def paint_white(self, b: Bricks) -> None:
        b.fill(Tissue.WHITE_MATTER)
        b.mask = True

    def _cortex(self, depth: np.ndarray, gyral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gray matter (brain outside sulci) and white matter (below the cortical ribbon) from depth and |gyri|."""
        gray = (depth < F(self.sulcus_depth_mm)) & (gyral < F(0.3 * self.sulcus_mm))  # sulcus
        np.logical_not(gray, out=gray)
        gray &= depth > 0
        white = (gyral > F(0.3 * (self.sulcus_mm + self.cortex_mm))) | (depth > F(self.sulcus_depth_mm + self.cortex_mm))
        white &= depth > F(self.cortex_mm)
        return gray, white

    def paint_brain(self, b: Bricks, d: np.ndarray, inside: np.ndarray | None) -> None:
        """Gray and white matter, sulci, falx, tentorium and cerebellum inside the cavity (``inside``; None: all)."""
        depth = -(d + F(self.csf_mm))  # depth below the brain surface
        above_tentorium, above_fissure = b.field("above_tentorium"), b.field("above_fissure")
        x_abs, y = np.abs(b.x), b.y
        infratentorial = (above_tentorium < 0) & (y < F(-8))
        cerebrum = ~infratentorial
        cerebrum &= ~((x_abs < F(self.fissure_mm)) & (above_fissure > 0))  # interhemispheric fissure
        gray, white = self._cortex(depth, np.abs(b.field("gyri")))
        b.set(Tissue.GRAY_MATTER, gray & cerebrum)
        b.set(Tissue.WHITE_MATTER, white & cerebrum)
        falx = (x_abs < F(0.7)) & (above_fissure > F(-3)) & (depth < F(60))
        tent = (np.abs(above_tentorium) < F(0.7)) & (y < F(-12)) & ~((x_abs < F(14)) & (y > F(-48)))
        dura = falx | tent
        b.set(Tissue.DURA, dura if inside is None else dura & inside)
        self.paint_cerebellum(b, depth, infratentorial)

    def paint_cerebellum(self, b: Bricks, depth, infratentorial) -> None:
        region = infratentorial & (depth > 0)
        if not region.any():
            return
        # Evaluated on the infratentorial voxels only: a small fraction of the block.
        x, y, z, dep = b.x[region], b.y[region], b.z[region], depth[region]
        if self.atlas:  # the atlas's posterior fossa is the cerebellum's shape
            lobes = -dep
        else:
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
