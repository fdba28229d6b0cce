"""One synthetic head CTA case: draw geometry, anatomy and physics, then render slab by slab."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from . import artifacts, physics
from .acquisition import Acquisition, sample_acquisition, to_storage
from .anatomy import sample_head
from .canvas import Canvas
from .config import SyntheticConfig
from .tiles import tile_size
from .tissues import LABEL_NAMES

SLAB_VOXELS = 1 << 22  # sub-slice voxels painted at once: temporaries stay a few MB
CHUNK_VOXELS = 1 << 19  # voxels rendered at once: the blur's buffers stay in the CPU's cache


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


def _outside_circle(shape_ji: tuple[int, int]) -> np.ndarray:
    """Pixels outside the reconstruction circle inscribed in the in-plane matrix."""
    nj, ni = shape_ji
    j, i = np.ogrid[:nj, :ni]
    return ((i - (ni - 1) / 2) ** 2 + (j - (nj - 1) / 2) ** 2) > (min(ni, nj) / 2) ** 2


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


def generate_case(seed: int, config: SyntheticConfig = SyntheticConfig(), return_labels: bool = False) -> SyntheticCase:
    """Generate one case; the same seed and config give bit-identical arrays."""
    _reuse_freed_memory()
    rng = np.random.default_rng(seed)
    size = float(rng.uniform(*config.head_scale)) * rng.uniform(0.95, 1.05, 3)  # head size and proportions
    acq = sample_acquisition(rng, config, float(size[2]))
    anatomy_to_head = np.diag([*size, 1.0])
    voxel_to_anatomy = np.linalg.inv(anatomy_to_head) @ acq.voxel_to_head
    anatomy_to_world = acq.head_to_world @ anatomy_to_head
    ni, nj, nk = acq.shape
    fov_z = (float(acq.affine[2, 3]) - 50, float(acq.affine[2, 3] + acq.affine[2, 2] * nk) + 50)
    shapes, extra = sample_head(rng, config, anatomy_to_world, fov_z)
    pixel, _, dz = acq.spacing
    imaging = physics.sample_imaging(rng, config, pixel, dz, acq.slice_thickness_mm)
    band_hu = float(rng.uniform(20, 60)) if rng.random() < config.skull_base_streak_prob else 0.0
    noise_rng = np.random.default_rng(rng.integers(2**63))

    offsets = physics.sub_slice_offsets(imaging, dz, acq.slice_thickness_mm)
    sub, centre = imaging.subslices, imaging.subslices // 2
    image = np.empty((nk, nj, ni), np.int16)
    mask = np.empty((nk, nj, ni), np.uint8)
    labels = np.empty((nk, nj, ni), np.uint8) if return_labels else None
    outside = _outside_circle((nj, ni)) if imaging.circular_fov else None
    metal_vox = [np.linalg.solve(voxel_to_anatomy[:3, :3], np.asarray(p) - voxel_to_anatomy[:3, 3]) for p in extra["dental_metal"]]
    streaks = artifacts.MetalStreaks(metal_vox, pixel, dz, noise_rng) if metal_vox else None
    coarse = max(1, round(3.0 / pixel))
    brick = max(1, round(tile_size(coarse) * pixel / dz))  # slices per brick: about as deep as wide
    canvas = Canvas(voxel_to_anatomy, (ni, nj), shapes, coarse, brick_slices=brick * sub)
    slab = brick * max(1, SLAB_VOXELS // (ni * nj * sub * brick))
    chunk = max(1, CHUNK_VOXELS // (ni * nj))
    render = physics.Renderer(imaging, (min(chunk, nk), nj, ni))
    m = voxel_to_anatomy
    for k0 in range(0, nk, slab):
        ks = np.arange(k0, min(k0 + slab, nk))
        slab_labels, slab_mask = canvas.paint_slab((ks[:, None] + offsets[None, :]).ravel())
        z_centre = m[2, 0] * (ni - 1) / 2 + m[2, 1] * (nj - 1) / 2 + m[2, 2] * ks + m[2, 3]
        noise_scale = physics.slice_noise_scale(z_centre)
        for c in range(0, len(ks), chunk):
            part = slice(c, c + chunk)
            hu = render(slab_labels[c * sub : (c + chunk) * sub], noise_scale[part], noise_rng)
            if band_hu:
                artifacts.skull_base_band(hu, lambda n: _pixel_xy(m, ni, nj, ks[part][n]), z_centre[part], band_hu)
            if streaks:
                streaks(hu, ks[part])
            physics.quantize(hu, imaging, outside, out=image[k0 + c : k0 + c + len(hu)])
        mask[ks[0] : ks[-1] + 1] = slab_mask[centre::sub]
        if labels is not None:
            labels[ks[0] : ks[-1] + 1] = slab_labels[centre::sub]

    # (k, j, i) -> acquisition order (i, j, k) -> storage orientation.
    image_s, affine = to_storage(image.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)
    mask_s, _ = to_storage(mask.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)
    labels_s = to_storage(labels.transpose(2, 1, 0), acq.affine, acq.storage_axcodes)[0] if labels is not None else None
    meta = _meta(acq, imaging, extra["pathology"], seed)
    meta.update(head_size=tuple(round(float(v), 4) for v in size), skull_base_band_hu=round(band_hu, 2),
                dental_metal=len(metal_vox) > 0)
    return SyntheticCase(
        image=image_s,
        slope=imaging.slope,
        intercept=imaging.intercept,
        mask=mask_s,
        affine=affine,
        labels=labels_s,
        meta=meta,
    )


def _pixel_xy(m: np.ndarray, ni: int, nj: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-frame x and y of every pixel of slice ``k`` (j, i)."""
    j, i = np.ogrid[:nj, :ni]
    return tuple((m[a, 0] * i + m[a, 1] * j + m[a, 2] * k + m[a, 3]).astype(np.float32) for a in range(2))
