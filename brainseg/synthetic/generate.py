"""One synthetic head CTA case: draw geometry, anatomy and physics, then render slab by slab."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np

from . import artifacts, physics
from .acquisition import VERTEX_Z, Acquisition, sample_acquisition, to_storage
from .anatomy import sample_head
from .cavity_prior import ATLAS_HEIGHT_RATIO, SCALP_OVER_CAVITY_MM, load_prior
from .config import SyntheticConfig, SyntheticMixture
from .extras import HeadHolder
from .motion import Motion, sample_motion
from .render import SlabRenderer
from .tissues import LABEL_NAMES, Tissue, contrast_phase

PHENOMENA_STREAM = 12  # issue 12: the phenomena's random streams are seeded by (seed, 12, n)


@dataclass
class SyntheticCase:
    """A generated case in storage order, as it would be written to disk."""

    image: np.ndarray  # int16 stored values
    slope: float  # HU = image * slope + intercept
    intercept: float
    mask: np.ndarray  # uint8 {0, 1}: the cranial cavity
    affine: np.ndarray  # 4x4 voxel -> world RAS mm
    labels: np.ndarray | None = None  # uint8 tissue map, when requested
    label_names: dict[int, str] = field(default_factory=lambda: dict(LABEL_NAMES))
    meta: dict = field(default_factory=dict)

    @property
    def hu(self) -> np.ndarray:
        """The image in HU (float32)."""
        return self.image.astype(np.float32) * np.float32(self.slope) + np.float32(self.intercept)


@lru_cache(maxsize=1)
def _reuse_freed_memory() -> bool:
    """Let glibc's malloc reuse freed megabyte-sized blocks instead of returning them to the OS.

    The generator's numpy temporaries are 0.1-30 MB. By default glibc maps each of them
    afresh (its adaptive threshold never admits a block as large as the last one freed),
    and first touching every 4 KB page of new memory is a page fault: on a virtual machine
    that costs about a fifth of the generation time. The thresholds set here are the largest
    values glibc's own adaptive rule would reach (32 MB, and twice that kept free); the
    process may keep up to that much freed memory. A no-op where malloc is not glibc's.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
        m_trim_threshold, m_mmap_threshold = -1, -3
        return bool(mallopt(m_mmap_threshold, 32 << 20) and mallopt(m_trim_threshold, 64 << 20))
    except (OSError, AttributeError, TypeError):
        return False


def _meta(acq: Acquisition, imaging: physics.Imaging, pathology: dict, seed: int) -> dict:
    return {
        "seed": seed,
        "spacing_mm": tuple(round(v, 4) for v in acq.spacing),
        "slice_thickness_mm": round(acq.slice_thickness_mm, 4),
        "shape_acquisition": acq.shape,
        "fov_kind": acq.fov_kind,
        "orientation": acq.storage_axcodes,
        "rotation_deg": tuple(round(a, 3) for a in acq.rotation_deg),
        "translation_mm": tuple(round(t, 3) for t in acq.translation_mm),
        "gantry_tilt_deg": round(acq.gantry_tilt_deg, 3),
        "noise_hu": round(imaging.noise_hu, 3),
        "psf_sigma_px": round(imaging.psf_sigma_vox, 4),
        "subslices": imaging.subslices,
        "circular_fov": imaging.circular_fov,
        "arterial_hu": round(float(imaging.lut[8]), 2),
        "pathology": pathology,
    }


@dataclass(frozen=True)
class Phenomena:
    """What a case's scan went through beyond the arterial, soft-kernel, still-head default."""

    phase: str = "arterial"
    sharp_kernel: bool = False
    motion: Motion = Motion()
    beam_hardening_hu: float = 0.0

    def meta(self, imaging: physics.Imaging) -> dict:
        return {"phase": self.phase, "venous_hu": round(float(imaging.lut[Tissue.VEIN]), 2),
                "kernel": "sharp" if self.sharp_kernel else "soft", "sharpen": round(imaging.sharpen, 3),
                "motion": self.motion.meta(), "beam_hardening_hu": round(self.beam_hardening_hu, 2)}


def _streams(seed: int) -> dict[str, np.random.Generator]:
    """One random stream per acquisition phenomenon, apart from the case's main stream.

    Switching a phenomenon on or off changes neither the rest of the case nor the others.
    """
    names = ("phase", "kernel", "motion", "beam_hardening", "surgery", "proportions", "anatomy")
    return {name: np.random.default_rng([seed, PHENOMENA_STREAM, n]) for n, name in enumerate(names)}


def _sample_phenomena(streams: dict, config: SyntheticConfig, imaging: physics.Imaging, pixel: float,
                      n_slices: int) -> tuple[Phenomena, physics.Imaging]:
    """Contrast phase, kernel, motion and beam hardening of one case, and its imaging changed accordingly."""
    names, probs = zip(*config.phase_probs)
    rng = streams["phase"]
    phase = str(rng.choice(names, p=np.asarray(probs) / np.sum(probs)))
    if phase != "arterial":
        imaging = replace(imaging, lut=contrast_phase(imaging.lut, phase, rng, config.arterial_hu))
    sharp = bool(streams["kernel"].random() < config.sharp_kernel_prob)
    if sharp:
        imaging = physics.sharp_kernel(imaging, streams["kernel"], config, pixel)
    motion = sample_motion(streams["motion"], config, n_slices)
    rng = streams["beam_hardening"]
    bh_hu = float(rng.uniform(*config.beam_hardening_hu)) if rng.random() < config.beam_hardening_prob else 0.0
    return Phenomena(phase, sharp, motion, bh_hu), imaging


def generate_case(seed: int, config: SyntheticConfig | SyntheticMixture = SyntheticConfig(), return_labels: bool = False) -> SyntheticCase:
    """Generate one case; the same seed and config give bit-identical arrays. A mixture's case
    is generated from the preset it draws for this seed."""
    if isinstance(config, SyntheticMixture):
        config = config.pick(seed)
    _reuse_freed_memory()
    rng = np.random.default_rng(seed)
    streams = _streams(seed)
    size = float(rng.uniform(*config.head_scale)) * rng.uniform(0.95, 1.05, 3)  # head size and proportions
    height_ratio = float(streams["proportions"].uniform(*config.head_height_ratio))  # its own stream: other draws stay
    atlas = bool(streams["anatomy"].random() < config.atlas_cavity_prob)
    size[2] *= height_ratio / ATLAS_HEIGHT_RATIO if atlas else height_ratio
    vertex = (load_prior().box[1][2] + SCALP_OVER_CAVITY_MM) / VERTEX_Z if atlas else 1.0  # the atlas vault is taller
    acq = sample_acquisition(rng, config, float(size[2]) * vertex)
    anatomy_to_head = np.diag([*size, 1.0])
    anatomy_to_world = acq.head_to_world @ anatomy_to_head
    ni, nj, nk = acq.shape
    fov_z = (float(acq.affine[2, 3]) - 50, float(acq.affine[2, 3] + acq.affine[2, 2] * nk) + 50)
    shapes, extra = sample_head(rng, config, anatomy_to_world, fov_z, surgery_rng=streams["surgery"], atlas=atlas)
    pixel, _, dz = acq.spacing
    imaging = physics.sample_imaging(rng, config, pixel, dz, acq.slice_thickness_mm)
    band_hu = float(rng.uniform(20, 60)) if rng.random() < config.skull_base_streak_prob else 0.0
    noise_rng = np.random.default_rng(rng.integers(2**63))
    phenomena, imaging = _sample_phenomena(streams, config, imaging, pixel, nk)

    image = np.empty((nk, nj, ni), np.int16)
    mask = np.empty((nk, nj, ni), np.uint8)
    labels = np.empty((nk, nj, ni), np.uint8) if return_labels else None
    poses = _poses(acq, anatomy_to_head, shapes, phenomena.motion)
    metal = extra["dental_metal"]
    streaks = None
    if metal:  # drawn once, before the noise, whatever the motion
        streaks = artifacts.MetalStreaks(_metal_voxels(poses[0][2], metal), pixel, dz, noise_rng)
    renderer = SlabRenderer(imaging, phenomena, acq, (ni, nj, nk), band_hu, noise_rng)
    canvas = None
    for n, (s0, s1, m, group_shapes) in enumerate(poses):
        moved_streaks = streaks.at(_metal_voxels(m, metal)) if streaks and s0 else streaks
        canvas = renderer.canvas(m, group_shapes, canvas)
        renderer.render_group(canvas, m, (s0, s1), n, poses, moved_streaks, image, mask, labels)

    # (k, j, i) -> acquisition order (i, j, k) -> storage orientation.
    image_s, affine = to_storage(image.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)
    mask_s, _ = to_storage(mask.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)
    labels_s = to_storage(labels.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)[0] if labels is not None else None
    meta = _meta(acq, imaging, extra["pathology"], seed)
    meta.update(head_size=tuple(round(float(v), 4) for v in size), head_height_ratio=round(height_ratio, 4),
                atlas_cavity=atlas, skull_base_band_hu=round(band_hu, 2), dental_metal=len(metal) > 0,
                skull_defects=extra["skull_defects"], **phenomena.meta(imaging))
    return SyntheticCase(
        image=image_s,
        slope=imaging.slope,
        intercept=imaging.intercept,
        mask=mask_s,
        affine=affine,
        labels=labels_s,
        meta=meta,
    )


def _poses(acq: Acquisition, anatomy_to_head: np.ndarray, shapes: list, motion: Motion) -> list[tuple]:
    """Per group of slices (one unless the head moved): first slice, stop, voxel -> anatomy map, shapes.

    The table and head holder stay where they are in the scanner when the head moves.
    """
    poses = [(0, acq.shape[2] if not motion.moved else motion.starts[1],
              np.linalg.inv(anatomy_to_head) @ acq.voxel_to_head, shapes)]
    for s0, s1, pose in motion.segments(acq.shape[2])[1:]:
        to_world = acq.head_to_world @ pose @ anatomy_to_head
        moved = [replace(s, anatomy_to_world=to_world) if isinstance(s, HeadHolder) else s for s in shapes]
        poses.append((s0, s1, np.linalg.inv(to_world) @ acq.affine, moved))
    return poses


def _metal_voxels(voxel_to_anatomy: np.ndarray, metal: list) -> list[np.ndarray]:
    m = voxel_to_anatomy
    return [np.linalg.solve(m[:3, :3], np.asarray(p) - m[:3, 3]) for p in metal]
