"""Rendering a case slab by slab: paint labels, turn them into HU, add artifacts, quantize.

A case is rendered as groups of slices, one per head pose (a single group unless the
patient moved); each group is painted through its own voxel -> anatomy map, so labels,
mask and image follow the anatomy slice by slice.
"""

from __future__ import annotations

import numpy as np

from . import artifacts, physics
from .beam_hardening import BeamHardening, z_weight
from .canvas import Canvas
from .motion import add_motion_artifact, ghosts
from .tiles import tile_size

SLAB_VOXELS = 1 << 22  # sub-slice voxels painted at once: temporaries stay a few MB
CHUNK_VOXELS = 1 << 19  # voxels rendered at once: the blur's buffers stay in the CPU's cache
BEAM_HARDENING_STEP_MM = 3.0  # slices this close share one beam-hardening computation


def _outside_circle(shape_ji: tuple[int, int]) -> np.ndarray:
    """Pixels outside the reconstruction circle inscribed in the in-plane matrix."""
    nj, ni = shape_ji
    j, i = np.ogrid[:nj, :ni]
    return ((i - (ni - 1) / 2) ** 2 + (j - (nj - 1) / 2) ** 2) > (min(ni, nj) / 2) ** 2


def _pixel_xy(m: np.ndarray, ni: int, nj: int, k: float) -> tuple[np.ndarray, np.ndarray]:
    """Anatomy-frame x and y of every pixel of slice ``k`` (j, i)."""
    j, i = np.ogrid[:nj, :ni]
    return tuple((m[a, 0] * i + m[a, 1] * j + m[a, 2] * k + m[a, 3]).astype(np.float32) for a in range(2))


def _centre_px(m: np.ndarray) -> np.ndarray:
    """(j, i) of the anatomy origin (centre of the cranial cavity) under a voxel -> anatomy map."""
    i, j, _ = np.linalg.solve(m[:3, :3], -m[:3, 3])
    return np.array([j, i])


class SlabRenderer:
    """Renders the slices of one case into its image, mask and labels, a group of slices at a time."""

    def __init__(self, imaging: physics.Imaging, phenomena, acq, shape_ijk: tuple[int, int, int], band_hu: float,
                 noise_rng: np.random.Generator):
        ni, nj, nk = shape_ijk
        pixel, _, dz = acq.spacing
        self.imaging, self.motion, self.band_hu, self.noise_rng = imaging, phenomena.motion, band_hu, noise_rng
        self.ni, self.nj, self.pixel, self.dz = ni, nj, pixel, dz
        self.offsets = physics.sub_slice_offsets(imaging, dz, acq.slice_thickness_mm)
        self.sub, self.centre = imaging.subslices, imaging.subslices // 2
        self.outside = _outside_circle((nj, ni)) if imaging.circular_fov else None
        self.coarse = max(1, round(3.0 / pixel))
        self.brick = max(1, round(tile_size(self.coarse) * pixel / dz))  # slices per brick: about as deep as wide
        self.slab = self.brick * max(1, SLAB_VOXELS // (ni * nj * self.sub * self.brick))
        self.chunk = max(1, CHUNK_VOXELS // (ni * nj))
        self.render = physics.Renderer(imaging, (min(self.chunk, nk), nj, ni))
        bh_hu = phenomena.beam_hardening_hu
        self.beam_hardening = BeamHardening(imaging.lut, (nj, ni), pixel, bh_hu) if bh_hu else None
        self._bh_cache: dict[int, np.ndarray] = {}

    def canvas(self, voxel_to_anatomy: np.ndarray, shapes: list, previous: Canvas | None) -> Canvas:
        """A canvas for one pose, reusing the previous one's slab buffers."""
        canvas = Canvas(voxel_to_anatomy, (self.ni, self.nj), shapes, self.coarse, brick_slices=self.brick * self.sub)
        if previous is not None:
            canvas.buffers = previous.buffers
        return canvas

    def _beam_hardening(self, ks: np.ndarray, slab_labels: np.ndarray, z_centre: np.ndarray) -> dict[int, tuple]:
        """Per slab slice at the skull base: (weight, HU error), one error per ~3 mm of slices.

        Slice ``k`` uses the error of group ``round(k / step)``, computed from the slab's slice
        nearest the group's centre the first time a slab reaches the group.
        """
        weight = z_weight(z_centre)
        step = max(1, round(BEAM_HARDENING_STEP_MM / self.dz))
        out = {}
        for n in np.flatnonzero(weight > 0):
            key = int(round(ks[n] / step))
            if key not in self._bh_cache:
                ref = int(np.argmin(np.abs(ks - key * step)))
                bh = self.beam_hardening
                self._bh_cache = {k: v for k, v in self._bh_cache.items() if abs(k - key) <= 1}
                self._bh_cache[key] = bh.upsample(bh.coarse_error(slab_labels[ref * self.sub + self.centre]))
            out[int(n)] = (np.float32(weight[n]), self._bh_cache[key])
        return out

    def render_group(self, canvas: Canvas, m: np.ndarray, slices: tuple[int, int], group: int, poses: list,
                     streaks, image: np.ndarray, mask: np.ndarray, labels: np.ndarray | None) -> None:
        """Render slices ``slices`` (start, stop) of pose ``group`` (index into ``poses``) through ``canvas``."""
        ni, nj, sub, centre, chunk = self.ni, self.nj, self.sub, self.centre, self.chunk
        for k0 in range(slices[0], slices[1], self.slab):
            ks = np.arange(k0, min(k0 + self.slab, slices[1]))
            slab_labels, slab_mask = canvas.paint_slab((ks[:, None] + self.offsets[None, :]).ravel())
            z_centre = m[2, 0] * (ni - 1) / 2 + m[2, 1] * (nj - 1) / 2 + m[2, 2] * ks + m[2, 3]
            noise_scale = physics.slice_noise_scale(z_centre)
            bh = self._beam_hardening(ks, slab_labels, z_centre) if self.beam_hardening else {}
            ghost = ghosts(self.motion, group, ks, self.dz) if self.motion.moved else None
            for c in range(0, len(ks), chunk):
                part = slice(c, c + chunk)
                hu = self.render(slab_labels[c * sub : (c + chunk) * sub], noise_scale[part], self.noise_rng)
                if self.band_hu:
                    artifacts.skull_base_band(hu, lambda n: _pixel_xy(m, ni, nj, ks[part][n]), z_centre[part], self.band_hu)
                if streaks:
                    streaks(hu, ks[part])
                for n in range(c, c + len(hu)):
                    if n in bh:
                        hu[n - c] += bh[n][0] * bh[n][1]
                    if ghost is not None and ghost[0][n] > 0:
                        shift = _centre_px(poses[ghost[1][n]][2]) - _centre_px(m)
                        add_motion_artifact(hu[n - c], slab_mask[n * sub + centre], shift, ghost[0][n], self.motion, self.pixel)
                physics.quantize(hu, self.imaging, self.outside, out=image[k0 + c : k0 + c + len(hu)])
            mask[ks[0] : ks[-1] + 1] = slab_mask[centre::sub]
            if self.outside is not None:  # no brain where the image holds no data, as a reader would draw it
                mask[ks[0] : ks[-1] + 1, self.outside] = 0
            if labels is not None:
                labels[ks[0] : ks[-1] + 1] = slab_labels[centre::sub]
