"""Beam hardening near the skull base, from a first-order model in projection space.

A polychromatic beam hardens in bone, so a scanner's water-based correction leaves each
ray's attenuation short by about beta * (bone path)^2. Filtered back-projection of that
quadratic error gives what radiologists see between the petrous bones: dark streaks along
the lines joining dense bones (the Hounsfield bar) and a dark cupping of the brain between
them. Here it is computed per slice on a coarse grid (<= ``GRID`` pixels across, parallel
beams, ``N_ANGLES`` views over 180 degrees) from the slice's bone, scaled to the case's
strength, bilinearly upsampled and added to the rendered HU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy import ndimage, sparse

F = np.float32
GRID = 96  # at most this many coarse pixels across the matrix
N_ANGLES = 144  # about the grid's Nyquist count of views: no view-aliasing streaks
Z_RANGE = (-65.0, -15.0)  # anatomy-frame heights (mm) of the slices it is computed on: the skull base
SHADING_MM, SHADING_LEFT = 10.0, 0.8  # scale of the smooth shading, and the share of it corrected
BONE_HU = (100.0, 1400.0)  # HU above the first count as bone; the second is bone-equivalent density 1
# |error| between the petrous ridges of a standard head (head_scale 1, 1.5 mm pixels), measured
# in that frame's units (mm of bone^2 per mm): a case's amplitude is the HU at this error.
REFERENCE_ERROR = 5.5


@lru_cache(maxsize=4)
def _projector(n: int) -> sparse.csr_matrix:
    """Parallel-beam projections of an n x n grid (unit pixels): (N_ANGLES * n, n * n), linear detector interpolation."""
    j, i = np.mgrid[:n, :n]
    x, y = (i - (n - 1) / 2).ravel(), (j - (n - 1) / 2).ravel()
    rows, cols, vals = [], [], []
    for a, theta in enumerate(np.linspace(0, np.pi, N_ANGLES, endpoint=False)):
        t = x * np.cos(theta) + y * np.sin(theta) + (n - 1) / 2
        t0 = np.floor(t).astype(int)
        w1 = t - t0
        for bin_, w in ((t0, 1 - w1), (t0 + 1, w1)):
            ok = (bin_ >= 0) & (bin_ < n)
            rows.append(a * n + bin_[ok])
            cols.append(np.flatnonzero(ok))
            vals.append(w[ok])
    return sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                             shape=(N_ANGLES * n, n * n), dtype=np.float32)


@lru_cache(maxsize=4)
def _ramp(n: int) -> np.ndarray:
    """Ramp filter (rfft of 2n samples), Hann-windowed: a soft reconstruction kernel.

    From the spatial Ram-Lak kernel (1/4 at 0, -1/(pi k)^2 at odd k), whose transform keeps
    the right zero-frequency term; sampling |f| directly would shift the image's mean.
    """
    k = np.fft.fftfreq(2 * n, 1.0 / (2 * n))  # integer offsets 0, 1, ..., -1
    h = np.zeros(2 * n)
    h[0] = 0.25
    odd = k % 2 == 1
    h[odd] = -1.0 / (np.pi * k[odd]) ** 2
    ramp = np.real(np.fft.rfft(h))  # ~ |f|
    f = np.fft.rfftfreq(2 * n)
    return (ramp * 0.5 * (1 + np.cos(2 * np.pi * f))).astype(np.float32)


def quadratic_error(bone: np.ndarray, pixel_mm: float) -> np.ndarray:
    """Filtered back-projection of the squared bone path (mm^2) through a square slice of bone-equivalent density."""
    n = bone.shape[0]
    a = _projector(n)
    path = (a @ bone.ravel().astype(np.float32)).reshape(N_ANGLES, n) * F(pixel_mm)
    spectrum = np.fft.rfft(path * path, n=2 * n, axis=1) * _ramp(n)
    filtered = np.fft.irfft(spectrum, n=2 * n, axis=1)[:, :n].astype(np.float32)
    return (a.T @ filtered.ravel()).reshape(n, n) * F(np.pi / N_ANGLES / pixel_mm)


class BeamHardening:
    """Per-slice dark streaks and cupping from a slice's labels, at ``amplitude_hu`` for the reference error."""

    def __init__(self, lut: np.ndarray, shape_ji: tuple[int, int], pixel_mm: float, amplitude_hu: float):
        self.density = np.clip((lut - F(BONE_HU[0])) / F(BONE_HU[1] - BONE_HU[0]), 0, None).astype(np.float32)
        self.shape = shape_ji
        self.factor = max(1, -(-max(shape_ji) // GRID))
        self.pixel_mm = pixel_mm
        self.scale = F(amplitude_hu / REFERENCE_ERROR)

    def coarse_error(self, labels: np.ndarray) -> np.ndarray:
        """HU error on the coarse grid for one slice of labels (j, i)."""
        f, (nj, ni) = self.factor, self.shape
        n = -(-max(nj, ni) // f)
        bone = np.zeros((n * f, n * f), np.float32)
        bone[:nj, :ni] = self.density[labels]
        bone = bone.reshape(n, f, n, f).mean(axis=(1, 3))
        error = quadratic_error(bone, self.pixel_mm * f)
        # The scanner's bone correction takes out most of the smooth shading; the streaks stay.
        error -= F(SHADING_LEFT) * ndimage.gaussian_filter(error, SHADING_MM / (self.pixel_mm * f))
        # Only the rays' deficit is kept (a smooth max(error, 0)): dark streaks and shading, no bright halos.
        error = F(0.5) * (error + np.sqrt(error * error + F(0.25)))
        return -self.scale * error

    def upsample(self, coarse: np.ndarray) -> np.ndarray:
        """The coarse error at every pixel of the slice (j, i): blocks, then a box of their width (linear ramps)."""
        f, (nj, ni) = self.factor, self.shape
        fine = np.repeat(np.repeat(coarse, f, axis=0), f, axis=1)
        if f > 1:
            for axis in (0, 1):
                fine = ndimage.uniform_filter1d(fine, f, axis=axis, mode="nearest")
        return fine[:nj, :ni]


def z_weight(z_anatomy: np.ndarray) -> np.ndarray:
    """1 through the skull base, fading out over 8 mm at either end of ``Z_RANGE``."""
    lo, hi = Z_RANGE
    z = np.asarray(z_anatomy, float)
    return np.clip(np.minimum(z - lo, hi - z) / 8.0, 0, 1)
