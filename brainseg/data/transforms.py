"""Fitting a projection into the network's square input and back, in torch.

Images are resized with antialiased bilinear interpolation, masks with nearest neighbour so
they stay {0, 1}. Training-time augmentation is in :mod:`brainseg.data.augmentation`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from brainseg.data.extra_projections import EXTRA_PROJECTIONS
from brainseg.data.projection import Projection

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
    image: np.ndarray, mask: np.ndarray | None, fit: SquareFit, air: float = AIR_HU
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Pad (with ``air``: HU by default) and resize an image (and its mask) to ``(1, size, size)`` tensors."""
    pad = (fit.pad_rows, fit.pad_cols)
    size = (fit.size, fit.size)
    image_out = _resize(torch.from_numpy(np.pad(image, pad, constant_values=air)), size, nearest=False)
    if mask is None:
        return image_out, None
    mask_out = _resize(torch.from_numpy(np.pad(mask, pad, constant_values=0)), size, nearest=True)
    return image_out, mask_out.to(torch.uint8)


def fit_planes(projection: Projection, extra: tuple[str, ...], fit: SquareFit) -> np.ndarray:
    """A projection's MIP (HU) and its ``extra`` projections (their own units), fitted to the
    square: the (1 + len(extra), size, size) planes that :meth:`Preprocessing.normalize_planes`
    turns into network input.

    Raises:
        ValueError: the projection lacks one of ``extra`` (a MIP picture has none).
    """
    missing = [name for name in extra if name not in projection.extra]
    if missing:
        raise ValueError(f"the model takes the {', '.join(missing)} projection(s) besides the MIP, which only a CT volume gives")
    planes = [fit_to_square(projection.image, None, fit)[0]]
    planes += [fit_to_square(projection.extra[name], None, fit, EXTRA_PROJECTIONS[name].air)[0] for name in extra]
    return torch.cat(planes).numpy()


def restore_from_square(values: torch.Tensor, fit: SquareFit) -> torch.Tensor:
    """Map a ``(size, size)`` prediction back onto the original projection grid (bilinear)."""
    restored = _resize(values, fit.padded_shape, nearest=False)[0]
    rows = slice(fit.pad_rows[0], fit.pad_rows[0] + fit.original_shape[0])
    cols = slice(fit.pad_cols[0], fit.pad_cols[0] + fit.original_shape[1])
    return restored[rows, cols]
