"""Resizing to the network's input size and training-time augmentation, in torch.

Images are resized with antialiased bilinear interpolation, masks with nearest neighbour so
they stay {0, 1}. Augmentation applies one random affine (flip, rotation, scale, shift) to the
image and its mask together, then intensity jitter to the image alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

AIR_HU = -1024.0


@dataclass(frozen=True)
class SquareFit:
    """How a (rows, cols) projection was padded to a square field of view and resized."""

    original_shape: tuple[int, int]
    pad_rows: tuple[int, int]
    pad_cols: tuple[int, int]
    size: int
    spacing_mm: float  # pixel size after resizing, both directions

    @property
    def padded_shape(self) -> tuple[int, int]:
        return (
            self.original_shape[0] + sum(self.pad_rows),
            self.original_shape[1] + sum(self.pad_cols),
        )


def plan_square_fit(shape: tuple[int, int], spacing: tuple[float, float], size: int) -> SquareFit:
    """Pad the shorter physical side so the field of view is square, then resize to ``size``.

    Padding is in millimetres, so anisotropic pixels come out isotropic and shapes undistorted.
    """
    extent = max(shape[0] * spacing[0], shape[1] * spacing[1])
    padded = [max(n, int(round(extent / s))) for n, s in zip(shape, spacing)]
    pads = [((p - n) // 2, p - n - (p - n) // 2) for n, p in zip(shape, padded)]
    return SquareFit(tuple(shape), pads[0], pads[1], size, extent / size)


def _resize(tensor: torch.Tensor, shape: tuple[int, int], nearest: bool) -> torch.Tensor:
    batch = tensor[None, None] if tensor.ndim == 2 else tensor[None]
    if nearest:
        out = F.interpolate(batch.float(), size=shape, mode="nearest-exact")
    else:
        out = F.interpolate(batch.float(), size=shape, mode="bilinear", align_corners=False, antialias=True)
    return out[0]


def fit_to_square(
    image: np.ndarray, mask: np.ndarray | None, fit: SquareFit
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pad and resize an HU image (and its mask) to ``(1, size, size)`` tensors."""
    pad = (fit.pad_rows, fit.pad_cols)
    size = (fit.size, fit.size)
    image_out = _resize(torch.from_numpy(np.pad(image, pad, constant_values=AIR_HU)), size, nearest=False)
    if mask is None:
        return image_out, None
    mask_out = _resize(torch.from_numpy(np.pad(mask, pad, constant_values=0)), size, nearest=True)
    return image_out, mask_out.to(torch.uint8)


def restore_from_square(values: torch.Tensor, fit: SquareFit) -> torch.Tensor:
    """Map a ``(size, size)`` prediction back onto the original projection grid (bilinear)."""
    restored = _resize(values, fit.padded_shape, nearest=False)[0]
    rows = slice(fit.pad_rows[0], fit.pad_rows[0] + fit.original_shape[0])
    cols = slice(fit.pad_cols[0], fit.pad_cols[0] + fit.original_shape[1])
    return restored[rows, cols]


@dataclass
class Augmentation:
    """Random training augmentation; each knob at 0 switches that part off.

    Args:
        flip_lr: probability of a left-right flip (anatomically plausible for axial views).
        flip_ap: probability of an anterior-posterior flip. Defaults to 0 (not plausible).
        rotate_deg: maximum absolute in-plane rotation, degrees.
        scale: maximum relative zoom in or out (0.1 = 0.9x to 1.1x).
        translate: maximum shift as a fraction of the image size.
        intensity_scale: maximum relative change of contrast.
        intensity_shift: maximum additive shift, in normalized units.
        noise_std: standard deviation of added Gaussian noise, in normalized units.
    """

    flip_lr: float = 0.5
    flip_ap: float = 0.0
    rotate_deg: float = 15.0
    scale: float = 0.1
    translate: float = 0.05
    intensity_scale: float = 0.1
    intensity_shift: float = 0.05
    noise_std: float = 0.01

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a ``(C, H, W)`` image and its ``(1, H, W)`` float mask together, drawing from
        ``generator`` (training gives each sample its own); ``None`` draws from torch's global one."""

        def uniform(limit: float) -> float:
            return (torch.rand((), generator=generator).item() * 2 - 1) * limit

        angle = math.radians(uniform(self.rotate_deg))
        zoom = 1.0 + uniform(self.scale)
        flip_x = -1.0 if torch.rand((), generator=generator).item() < self.flip_lr else 1.0
        flip_y = -1.0 if torch.rand((), generator=generator).item() < self.flip_ap else 1.0
        if angle or zoom != 1.0 or flip_x < 0 or flip_y < 0 or self.translate:
            cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
            theta = torch.tensor(
                [
                    [cos * flip_x, -sin, uniform(self.translate) * 2],
                    [sin, cos * flip_y, uniform(self.translate) * 2],
                ],
                dtype=torch.float32,
            )[None]
            grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
            image = F.grid_sample(image[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
            mask = F.grid_sample(mask[None], grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        if self.intensity_scale or self.intensity_shift:
            image = image * (1.0 + uniform(self.intensity_scale)) + uniform(self.intensity_shift)
        if self.noise_std:
            image = image + torch.randn(image.shape, generator=generator, dtype=image.dtype) * self.noise_std
        return image, mask
