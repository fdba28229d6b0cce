"""From tissue labels to scanner values: HU lookup, partial volume, noise, blur, quantization.

Everything works on a few slices at a time, in float32. Partial volume along z comes
from averaging sub-slices within the slice thickness; in-plane blur is a Gaussian point
spread function. White noise is added before that blur, so it takes on the correlated
texture of a reconstruction kernel, and is pre-scaled so its standard deviation after the
blur is the case's noise level.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy import ndimage

from .tissues import Tissue, sample_tissue_hu

HU_MIN, HU_MAX = -1024.0, 3071.0  # 12-bit CT range
FWHM_TO_SIGMA = 1.0 / 2.3548
BYTE_SUM_MEAN, BYTE_SUM_STD = 3 * 127.5, np.sqrt(3 * (256**2 - 1) / 12)


def _gaussian_weights(sigma: float) -> np.ndarray:
    """The kernel of ``scipy.ndimage.gaussian_filter1d`` (truncated at 4 sigma)."""
    radius = int(4.0 * sigma + 0.5)
    w = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return w / w.sum()


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
    sharpen: float = 0.0  # unsharp-mask gain of a sharp (bone) kernel; 0: a soft kernel
    sharpen_sigma_vox: float = 0.0  # width of the unsharp mask's Gaussian, in pixels

    @property
    def noise_gain(self) -> float:
        """Factor by which the in-plane kernel (PSF, then any sharpening) scales the std of white noise."""
        if self.sharpen > 0:
            return float(np.sqrt(np.sum(self.kernel_2d() ** 2)))
        if self.psf_sigma_vox < 0.2:
            return 1.0
        w = _gaussian_weights(self.psf_sigma_vox)
        return float(np.sum(w**2))  # sqrt(sum w^2) per axis, two axes

    def kernel_2d(self) -> np.ndarray:
        """The in-plane reconstruction kernel as one 2-D array: PSF, then ``(1 + a) x - a G * x``."""
        p = _gaussian_weights(self.psf_sigma_vox) if self.psf_sigma_vox >= 0.2 else np.ones(1)
        if self.sharpen <= 0:
            return np.outer(p, p)
        g = _gaussian_weights(self.sharpen_sigma_vox)
        pg, r = np.convolve(p, g), len(g) // 2
        p = np.pad(p, r)
        return (1 + self.sharpen) * np.outer(p, p) - self.sharpen * np.outer(pg, pg)


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


def sharp_kernel(imaging: Imaging, rng: np.random.Generator, config, pixel_mm: float) -> Imaging:
    """The case's imaging reconstructed with a sharp (bone) kernel instead of a soft one.

    The PSF narrows to 60%, an unsharp mask (Gaussian of 0.8-1.5 mm) adds the overshoot
    and undershoot such kernels show at the skull, and the noise rises by the config's factor;
    sharpening the white noise also makes its grain finer.
    """
    return replace(
        imaging,
        psf_sigma_vox=imaging.psf_sigma_vox * 0.6,
        sharpen=float(rng.uniform(*config.sharp_kernel_overshoot)),
        sharpen_sigma_vox=float(rng.uniform(0.8, 1.5) / pixel_mm),
        noise_hu=imaging.noise_hu * float(rng.uniform(*config.sharp_kernel_noise_factor)),
    )


def sub_slice_offsets(imaging: Imaging, slice_mm: float, thickness_mm: float) -> np.ndarray:
    """Offsets (in slice units) of the sub-slices sampling one slice's thickness."""
    n = imaging.subslices
    return ((np.arange(n) + 0.5) / n - 0.5) * (thickness_mm / slice_mm)


class _Blur:
    """Correlation with a symmetric kernel along one axis of (k, j, i) chunks, edges repeated.

    Shifted sums over the flattened, edge-padded chunk: every pass is contiguous, so on a
    chunk that fits the CPU's cache it is about twice as fast as ``ndimage.correlate1d``
    along rows and five times along columns. Buffers are reused across chunks.
    """

    def __init__(self, w: np.ndarray, axis: int, shape: tuple[int, int, int]):
        self.w, self.axis, self.r = w.astype(np.float32), axis, len(w) // 2
        padded = list(shape)
        padded[axis] += 2 * self.r
        self.padded = np.empty(padded, np.float32)
        self.full = np.empty(padded, np.float32)
        self.tmp = np.empty(self.full.size, np.float32)

    def __call__(self, a: np.ndarray) -> np.ndarray:
        r, axis, w = self.r, self.axis, self.w
        n_axis = a.shape[axis]
        if r == 0 or n_axis <= r:
            return ndimage.correlate1d(a, w, axis=axis, mode="nearest")

        def along(sl: slice) -> tuple:
            index = [slice(None)] * 3
            index[axis] = sl
            return tuple(index)

        padded = self.padded[: len(a)]
        padded[along(slice(r, r + n_axis))] = a
        padded[along(slice(0, r))] = a[along(slice(0, 1))]
        padded[along(slice(r + n_axis, None))] = a[along(slice(n_axis - 1, n_axis))]
        step = padded.strides[axis] // padded.itemsize
        flat, full = padded.reshape(-1), self.full[: len(a)]
        n, o = flat.size, r * step
        out, tmp = full.reshape(-1)[o : n - o], self.tmp[: n - 2 * o]
        np.multiply(flat[o : n - o], w[r], out=out)
        for t in range(1, r + 1):
            np.add(flat[o - t * step : n - o - t * step], flat[o + t * step : n - o + t * step], out=tmp)
            tmp *= w[r + t]
            out += tmp
        return full[along(slice(r, r + n_axis))]


class Renderer:
    """Tissue labels to HU for chunks of up to ``shape`` (k, j, i) slices, reusing its buffers.

    Per chunk: HU lookup (the mean of the sub-slices: partial volume), white noise scaled
    per slice, then the in-plane PSF. Fresh memory costs page faults, which on a busy or
    virtual machine cost as much as the arithmetic, hence the reuse; call it on about a
    megabyte of voxels at a time so the blur also stays in the CPU's cache.
    """

    def __init__(self, imaging: Imaging, shape: tuple[int, int, int]):
        self.imaging = imaging
        n_sub = imaging.subslices
        self.lut = imaging.lut if n_sub == 1 else imaging.lut / np.float32(n_sub)
        self.hu = np.empty(shape, np.float32)
        self.tmp = np.empty(shape, np.float32)
        self.noise = np.empty(shape, np.int16)
        self.noise_per_unit = imaging.noise_hu / (imaging.noise_gain * BYTE_SUM_STD)
        self.blurs, self.unsharp = [], []
        if imaging.psf_sigma_vox >= 0.2:
            w = _gaussian_weights(imaging.psf_sigma_vox)
            self.blurs = [_Blur(w, 2, shape), _Blur(w, 1, shape)]
        if imaging.sharpen > 0:
            g = _gaussian_weights(imaging.sharpen_sigma_vox)
            self.unsharp = [_Blur(g, 2, shape), _Blur(g, 1, shape)]

    def __call__(self, labels: np.ndarray, noise_scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """HU (float32, k x j x i, a view of the renderer's buffer) from sub-slice labels (k*subslices x j x i).

        ``noise_scale`` (one per output slice) raises noise where the beam crosses more tissue.
        """
        n_sub, k = self.imaging.subslices, len(noise_scale)
        hu, tmp, noise = self.hu[:k], self.tmp[:k], self.noise[:k]
        np.take(self.lut, labels[0::n_sub], out=hu, mode="clip")
        for s in range(1, n_sub):
            hu += np.take(self.lut, labels[s::n_sub], out=tmp, mode="clip")
        raw = np.frombuffer(rng.bytes(3 * hu.size), np.uint8).reshape(3, *hu.shape)
        np.sum(raw, axis=0, dtype=np.int16, out=noise)
        scale = (self.noise_per_unit * np.asarray(noise_scale)).astype(np.float32)[:, None, None]
        hu -= np.float32(BYTE_SUM_MEAN) * scale
        hu += np.multiply(noise, scale, out=tmp)
        for blur in self.blurs:
            hu = blur(hu)
        if self.unsharp:  # hu + a (hu - G * hu): a sharp kernel's edge enhancement
            smooth = hu
            for blur in self.unsharp:
                smooth = blur(smooth)
            a = np.float32(self.imaging.sharpen)
            hu *= np.float32(1) + a
            smooth *= a
            hu -= smooth
        return hu


def quantize(hu: np.ndarray, imaging: Imaging, outside_fov: np.ndarray | None, out: np.ndarray | None = None) -> np.ndarray:
    """Stored int16 values as a scanner writes them: HU = stored * slope + intercept (into ``out`` if given)."""
    # With a negative intercept the stored values are unsigned: nothing below the intercept.
    floor = max(HU_MIN, imaging.intercept) if imaging.intercept < 0 else HU_MIN
    np.clip(hu, floor, HU_MAX, out=hu)
    if outside_fov is not None:
        hu[:, outside_fov] = imaging.padding_hu
    hu -= np.float32(imaging.intercept)
    if imaging.slope != 1.0:
        hu *= np.float32(1.0 / imaging.slope)
    np.rint(hu, out=hu)
    if out is None:
        return hu.astype(np.int16)
    np.copyto(out, hu, casting="unsafe")
    return out


def slice_noise_scale(z_head: np.ndarray) -> np.ndarray:
    """Relative noise by head-frame height: worse through the skull base and the shoulders."""
    z = np.asarray(z_head, np.float64)
    skull_base = 0.35 * np.exp(-0.5 * ((z + 45.0) / 20.0) ** 2)
    shoulders = 1.5 / (1.0 + np.exp((z + 200.0) / 15.0))
    return 1.0 + skull_base + shoulders


__all__ = ["Imaging", "Renderer", "Tissue", "quantize", "sample_imaging", "sharp_kernel", "slice_noise_scale",
           "sub_slice_offsets"]
