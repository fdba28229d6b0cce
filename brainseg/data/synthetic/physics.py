"""From tissue labels to scanner values: HU lookup, partial volume, noise, blur, quantization.

Everything works on one slab of slices at a time, in float32. Partial volume along z comes
from averaging sub-slices within the slice thickness; in-plane blur is a Gaussian point
spread function. White noise is added before that blur, so it takes on the correlated
texture of a reconstruction kernel, and is pre-scaled so its standard deviation after the
blur is the case's noise level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .tissues import Tissue, sample_tissue_hu

HU_MIN, HU_MAX = -1024.0, 3071.0  # 12-bit CT range
FWHM_TO_SIGMA = 1.0 / 2.3548
BYTE_SUM_MEAN, BYTE_SUM_STD = 3 * 127.5, np.sqrt(3 * (256**2 - 1) / 12)


@dataclass(frozen=True)
class Imaging:
    """Per-case scanner physics."""

    lut: np.ndarray  # label -> HU
    noise_hu: float
    psf_sigma_vox: float  # in-plane, in pixels
    subslices: int  # odd: the centre one is the label/mask slice
    circular_fov: bool
    slope: float
    intercept: float
    padding_hu: float  # value outside the reconstruction circle

    @property
    def noise_gain(self) -> float:
        """Factor by which the in-plane PSF blur shrinks the std of white noise."""
        if self.psf_sigma_vox < 0.2:
            return 1.0
        radius = int(4.0 * self.psf_sigma_vox + 0.5)
        x = np.arange(-radius, radius + 1)
        w = np.exp(-0.5 * (x / self.psf_sigma_vox) ** 2)
        w /= w.sum()
        return float(np.sum(w**2))  # sqrt(sum w^2) per axis, two axes


def sample_imaging(rng: np.random.Generator, config, pixel_mm: float, slice_mm: float, thickness_mm: float) -> Imaging:
    """Draw tissue values, noise, blur and storage scaling for one case."""
    lut = sample_tissue_hu(rng, config.arterial_hu, config.venous_fraction)
    sigma = rng.uniform(*config.psf_fwhm_mm) * FWHM_TO_SIGMA / pixel_mm
    # Thick slices average sub-slices (partial volume along z); thin ones need none.
    sub = 1 if thickness_mm < 3 * pixel_mm else 3 if thickness_mm < 8 * pixel_mm else 5
    slope, intercept = config.rescale_options[rng.integers(len(config.rescale_options))]
    return Imaging(
        lut=lut,
        noise_hu=float(rng.uniform(*config.noise_hu)),
        psf_sigma_vox=float(sigma),
        subslices=sub,
        circular_fov=bool(rng.random() < config.circular_fov_prob),
        slope=float(slope),
        intercept=float(intercept),
        padding_hu=float(intercept) if intercept < 0 else -2000.0,
    )


def sub_slice_offsets(imaging: Imaging, slice_mm: float, thickness_mm: float) -> np.ndarray:
    """Offsets (in slice units) of the sub-slices sampling one slice's thickness."""
    n = imaging.subslices
    return ((np.arange(n) + 0.5) / n - 0.5) * (thickness_mm / slice_mm)


def render_slab(labels: np.ndarray, imaging: Imaging, noise_scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """HU (float32, k x j x i) for a slab from its sub-slice labels (k*subslices x j x i).

    ``noise_scale`` (one per output slice) raises noise where the beam crosses more tissue.
    """
    n_sub = imaging.subslices
    hu = imaging.lut[labels]
    if n_sub > 1:
        hu = hu.reshape(-1, n_sub, *hu.shape[1:]).mean(axis=1)
    noise = np.frombuffer(rng.bytes(3 * hu.size), np.uint8).reshape(3, *hu.shape).sum(axis=0, dtype=np.int16)
    scale = (imaging.noise_hu / (imaging.noise_gain * BYTE_SUM_STD)) * noise_scale.astype(np.float32)
    hu += (noise - np.float32(BYTE_SUM_MEAN)) * scale[:, None, None]
    if imaging.psf_sigma_vox >= 0.2:
        for axis in (1, 2):
            hu = ndimage.gaussian_filter1d(hu, imaging.psf_sigma_vox, axis=axis, mode="nearest")
    return hu


def quantize(hu: np.ndarray, imaging: Imaging, outside_fov: np.ndarray | None) -> np.ndarray:
    """Stored int16 values as a scanner writes them: HU = stored * slope + intercept."""
    # With a negative intercept the stored values are unsigned: nothing below the intercept.
    floor = max(HU_MIN, imaging.intercept) if imaging.intercept < 0 else HU_MIN
    np.clip(hu, floor, HU_MAX, out=hu)
    if outside_fov is not None:
        hu[:, outside_fov] = imaging.padding_hu
    stored = (hu - np.float32(imaging.intercept)) * np.float32(1.0 / imaging.slope)
    return np.rint(stored).astype(np.int16)


def slice_noise_scale(z_head: np.ndarray) -> np.ndarray:
    """Relative noise by head-frame height: worse through the skull base and the shoulders."""
    z = np.asarray(z_head, np.float64)
    skull_base = 0.35 * np.exp(-0.5 * ((z + 45.0) / 20.0) ** 2)
    shoulders = 1.5 / (1.0 + np.exp((z + 200.0) / 15.0))
    return 1.0 + skull_base + shoulders


__all__ = ["Imaging", "Tissue", "quantize", "render_slab", "sample_imaging", "slice_noise_scale", "sub_slice_offsets"]
