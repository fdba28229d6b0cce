"""Randomization ranges for synthetic head CTA: one dataclass, five presets, and two mixtures.

Every range is ``(low, high)`` and is drawn uniformly per case. The default preset is coarse
(about 160x160x60 voxels) so a dataset of a few dozen cases is generated in seconds and a
2-D MIP U-Net trains on a CPU; ``realistic()`` has scanner resolutions, ``wide()`` goes
beyond them for the generalization benchmark, and ``varied()`` is wide()'s acquisitions with
every acquisition phenomenon (contrast phase, bone kernel, skull defects, motion, beam
hardening) switched on at clinical rates: a training distribution that spans real scans.
``mixed`` (:class:`SyntheticMixture`), the data ``python train.py`` trains on, draws each case
from ``default`` or ``varied``: the common head CTA, and everything around it. ``mixed_defects``,
the 3-D recipe's, draws the same cases with craniectomies over-sampled (``varied_defects``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

Range = tuple[float, float]


@dataclass(frozen=True)
class SyntheticConfig:
    """What varies between synthetic cases, and by how much (defaults: the training distribution).

    Geometry is in mm and degrees. Probabilities are per case.
    """

    # --- acquisition -------------------------------------------------------------------
    shape_in_plane: tuple[int, int] = (128, 192)  # square matrix size, drawn in steps of 8
    spacing_in_plane_mm: Range = (1.2, 1.8)
    reconstruction_fov_mm: Range = (220.0, 260.0)  # matrix*spacing is kept inside this
    slice_spacing_mm: Range = (2.0, 5.0)
    slice_count: tuple[int, int] = (40, 80)  # slice spacing is stretched to stay inside
    slice_thickness_ratio: Range = (1.0, 1.3)  # thickness / spacing (overlapping reconstructions)
    psf_fwhm_mm: Range = (0.6, 1.1)  # in-plane blur of the reconstruction kernel
    # (name, probability): whole head; head and neck down to the aortic arch; vertex cut off.
    fov_kinds: tuple[tuple[str, float], ...] = (
        ("head", 0.5),
        ("head_neck", 0.3),
        ("truncated_vertex", 0.2),
    )
    # Storage orientations as nibabel axis codes; the volume is flipped/permuted to one of them.
    orientations: tuple[str, ...] = ("LPS", "LPI", "RAS", "RAI", "LAS", "RPI", "PLS")
    circular_fov_prob: float = 0.5  # pad outside the reconstruction circle, as many scanners do
    # (slope, intercept) pairs; stored = (HU - intercept) / slope.
    rescale_options: tuple[tuple[float, float], ...] = ((1.0, -1024.0), (1.0, 0.0), (1.0, -1000.0))
    gantry_tilt_prob: float = 0.25
    gantry_tilt_deg: float = 15.0  # max absolute tilt, shears the affine

    # --- patient pose ------------------------------------------------------------------
    rotation_deg: tuple[float, float, float] = (15.0, 8.0, 10.0)  # max |angle| about x (nod), y, z
    translation_mm: tuple[float, float, float] = (15.0, 15.0, 10.0)  # max |offset| of the head

    # --- anatomy -----------------------------------------------------------------------
    head_scale: Range = (0.9, 1.08)
    # Vertical stretch of the head on top of head_scale: 1 is the analytic anatomy, whose brain is
    # lower than a real one. Measured from the vertex to the posterior and middle fossae, as a
    # fraction of the brain's length, the MNI152 2009 brain is 1.18-1.20x as tall
    # (scripts/measure_atlas.py, docs/synthetic_data.md).
    head_height_ratio: Range = (1.0, 1.0)
    # Probability that a case's cranial cavity is the MNI152 2009 brain's (cavity_prior.py) rather
    # than the analytic ellipsoid and floor: a real vault and skull base, randomly bumped like the
    # analytic one. Its proportions are real already, so its vertical stretch is
    # head_height_ratio / cavity_prior.ATLAS_HEIGHT_RATIO.
    atlas_cavity_prob: float = 0.0
    skull_thickness_mm: Range = (4.5, 8.0)
    atrophy: Range = (0.0, 1.0)  # 0: young brain, 1: wide sulci and large ventricles
    vessel_tortuosity: Range = (0.0, 1.0)
    shoulders_prob: float = 0.8  # shoulders, when the field of view reaches them
    table_prob: float = 0.8  # scanner table and head holder

    # --- contrast, noise and artifacts ------------------------------------------------
    arterial_hu: Range = (150.0, 500.0)  # bolus timing varies per case
    venous_fraction: Range = (0.2, 0.9)  # venous enhancement as a fraction of arterial
    noise_hu: Range = (3.0, 12.0)  # noise standard deviation in brain
    skull_base_streak_prob: float = 0.5
    dental_metal_prob: float = 0.3
    # Contrast phase, (name, probability): arterial (CTA), non_contrast (vessels at blood HU),
    # venous (sinuses brighter than arteries) or delayed (both weakly enhanced). Phases other
    # than arterial redraw the vessel values (see tissues.PHASES).
    phase_probs: tuple[tuple[str, float], ...] = (("arterial", 1.0),)
    # Sharp (bone) reconstruction kernel: finer PSF, edge overshoot, more and finer noise.
    sharp_kernel_prob: float = 0.0
    sharp_kernel_overshoot: Range = (0.4, 1.2)  # unsharp-mask gain: undershoot/overshoot at edges
    sharp_kernel_noise_factor: Range = (1.5, 3.0)  # noise SD relative to the case's soft-kernel noise
    # Patient motion: the head jumps to another pose 1-3 times during the scan (slice groups
    # misregistered, ghosting and streaks on the slices where it moved).
    motion_prob: float = 0.0
    motion_max_mm: float = 4.0  # max |shift| per axis of a new pose
    motion_max_deg: float = 3.0  # max |rotation| per axis of a new pose, about the craniocervical junction
    # Beam hardening at the skull base: dark streaks between the petrous bones, and cupping.
    beam_hardening_prob: float = 0.0
    beam_hardening_hu: Range = (15.0, 45.0)  # depth of the darkest streak in a standard head

    # --- surgery ----------------------------------------------------------------------
    craniectomy_prob: float = 0.0  # a bone flap removed (decompressive craniectomy)
    craniectomy_diameter_mm: Range = (90.0, 150.0)  # flap size along the skull
    craniectomy_bulge_mm: Range = (0.0, 10.0)  # how far brain and dura bulge through the defect
    burr_hole_prob: float = 0.0  # 1-3 burr holes of 10-16 mm

    # --- pathology inside the mask ----------------------------------------------------
    hemorrhage_prob: float = 0.15
    subdural_prob: float = 0.08
    infarct_prob: float = 0.15

    @classmethod
    def realistic(cls) -> "SyntheticConfig":
        """Scanner resolutions: 256-512 matrix, 0.4-1.0 mm pixels, 0.5-5 mm slices."""
        return cls(
            shape_in_plane=(256, 512),
            spacing_in_plane_mm=(0.4, 1.0),
            reconstruction_fov_mm=(200.0, 260.0),
            slice_spacing_mm=(0.5, 5.0),
            slice_count=(40, 400),
            psf_fwhm_mm=(0.5, 0.9),
            rotation_deg=(20.0, 10.0, 15.0),
            translation_mm=(20.0, 20.0, 15.0),
            noise_hu=(4.0, 25.0),
        )

    @classmethod
    def wide(cls) -> "SyntheticConfig":
        """Beyond the training distribution, for the generalization benchmark."""
        return replace(
            cls.realistic(),
            shape_in_plane=(96, 512),
            spacing_in_plane_mm=(0.3, 2.2),
            reconstruction_fov_mm=(150.0, 400.0),
            slice_spacing_mm=(0.5, 6.0),
            slice_count=(24, 400),
            orientations=("LPS", "LPI", "RAS", "RAI", "LAS", "RPI", "PLS", "ASR", "SAL", "ILP", "IRA"),
            rotation_deg=(30.0, 20.0, 25.0),
            translation_mm=(35.0, 35.0, 25.0),
            gantry_tilt_prob=0.4,
            gantry_tilt_deg=25.0,
            head_scale=(0.8, 1.15),
            head_height_ratio=(1.0, 1.3),
            atlas_cavity_prob=0.5,
            skull_thickness_mm=(3.5, 10.0),
            arterial_hu=(100.0, 600.0),
            venous_fraction=(0.1, 1.0),
            noise_hu=(2.0, 40.0),
            rescale_options=((1.0, -1024.0), (1.0, 0.0), (1.0, -1000.0), (0.5, -1024.0), (2.0, -2048.0)),
            hemorrhage_prob=0.25,
            subdural_prob=0.15,
            infarct_prob=0.25,
            # The phenomena below are off in default() and realistic(); here moderately on.
            phase_probs=(("arterial", 0.7), ("non_contrast", 0.1), ("venous", 0.1), ("delayed", 0.1)),
            sharp_kernel_prob=0.15,
            motion_prob=0.1,
            beam_hardening_prob=0.3,
            craniectomy_prob=0.05,
            burr_hole_prob=0.05,
        )

    @classmethod
    def varied(cls) -> "SyntheticConfig":
        """The training distribution of issue 12: wide()'s acquisitions, every phenomenon at clinical rates."""
        return replace(
            cls.wide(),
            phase_probs=(("arterial", 0.55), ("non_contrast", 0.15), ("venous", 0.2), ("delayed", 0.1)),
            sharp_kernel_prob=0.25,
            motion_prob=0.15,
            beam_hardening_prob=0.5,
            craniectomy_prob=0.08,
            burr_hole_prob=0.08,
        )

    @classmethod
    def varied_defects(cls) -> "SyntheticConfig":
        """varied() with a quarter of the cases craniectomies: rare in clinical data, but a case a 3-D
        mask must get right (the brain bulging through the defect under the scalp). The 3-D recipe
        trains on it; the MIP model measured worse with it (docs/synthetic_data.md)."""
        return replace(cls.varied(), craniectomy_prob=0.25)

    @classmethod
    def preset(cls, name: str) -> "SyntheticConfig | SyntheticMixture":
        """The preset called ``name``: one of :data:`PRESETS`, or a mixture (``mixed``, ``mixed_defects``)."""
        if name == "default":
            return cls()
        if name in MIXTURES:
            return SyntheticMixture(tuple((cls.preset(part), weight) for part, weight in MIXTURES[name]))
        if name in PRESETS:
            return getattr(cls, name)()
        raise ValueError(f"unknown synthetic preset {name!r}; expected one of {', '.join((*PRESETS, *MIXTURES))}")


@dataclass(frozen=True)
class SyntheticMixture:
    """Presets mixed case by case: each case draws its preset (with these weights) from its own
    seed, so a case is the same whatever the dataset's size."""

    parts: tuple[tuple[SyntheticConfig, float], ...]

    def pick(self, seed: int) -> SyntheticConfig:
        """The preset of the case with this seed."""
        weights = np.array([weight for _, weight in self.parts], np.float64)
        draw = np.random.default_rng([seed, 0x6D6978]).random() * weights.sum()  # its own stream: the case's draws are untouched
        return self.parts[min(int(np.searchsorted(np.cumsum(weights), draw, side="right")), len(self.parts) - 1)][0]


PRESETS = ("default", "realistic", "wide", "varied", "varied_defects")
MIXTURES = {
    # The default training data: half the common head CTA, half wide acquisitions with every phenomenon.
    "mixed": (("default", 0.5), ("varied", 0.5)),
    # The 3-D recipe's: the same cases, craniectomies over-sampled in the varied half.
    "mixed_defects": (("default", 0.5), ("varied_defects", 0.5)),
}
