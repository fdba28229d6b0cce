"""Clean-up of a predicted mask on the network's grid: largest piece, holes, closing.

The same for a 3-D mask (on the coarse inference grid) and a MIP's 2-D footprint (on the
network's square): a brain is one piece without cavities that open to nothing, in 3-D and in
projection alike.

Post-processing acts on probabilities, not on the final mask: voxels of removed pieces get 0,
filled holes get 1, and the kept brain keeps its soft edge, so the upsampled boundary stays
smooth and sub-voxel accurate instead of following 2 mm steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from brainseg.inference.plausibility import voxel_ml


@dataclass(frozen=True)
class PostProcessing:
    """Clean-up of the thresholded prediction, on the network's grid.

    Args:
        largest_component: keep only the largest fully connected piece. Defaults to True.
        fill_holes: fill cavities not connected to the volume's border. Defaults to True.
        closing_mm: radius of a morphological closing (0 = none), mm. Defaults to 0.
    """

    largest_component: bool = True
    fill_holes: bool = True
    closing_mm: float = 0.0


def ellipsoid_ball(radius_mm: float, spacing) -> np.ndarray:
    """Boolean structuring element: the voxels within ``radius_mm`` of the centre (at least one voxel each way)."""
    radius = [max(1, int(round(radius_mm / s))) for s in spacing]
    axes = np.meshgrid(*[np.arange(-r, r + 1) / r for r in radius], indexing="ij")
    return np.sqrt(sum(axis**2 for axis in axes)) <= 1


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """``mask`` plus every background region that does not touch the array's border."""
    background, n = ndimage.label(~mask)
    if n == 0:
        return mask
    border = np.unique(np.concatenate([np.unique(np.take(background, i, axis=a)) for a in range(mask.ndim) for i in (0, -1)]))
    return mask | ~np.isin(background, border)


def postprocess(
    probabilities: np.ndarray, threshold: float, spacing, options: PostProcessing = PostProcessing()
) -> tuple[np.ndarray, float]:
    """Cleaned-up probabilities of a (S, R, A) stack or a 2-D footprint, and what was removed as
    extra pieces: mL in 3-D (in 2-D, the pixel area in mm² / 1000).

    Voxels of removed pieces become 0, filled holes and closed gaps become 1; the kept piece
    and its one-voxel rim keep their values, so thresholding after upsampling still follows
    the soft edge.
    """
    connectivity = np.ones((3,) * probabilities.ndim, bool)  # full: 26-connected voxels in 3-D, 8-connected pixels in 2-D
    brain = probabilities > threshold
    removed = 0.0
    keep = brain
    if options.largest_component and brain.any():
        labels, n = ndimage.label(brain, structure=connectivity)
        if n > 1:
            largest = int(np.argmax(np.bincount(labels.ravel())[1:])) + 1
            keep = labels == largest
            removed = float(np.count_nonzero(brain & ~keep)) * voxel_ml(spacing)
    filled = keep
    if options.closing_mm > 0:
        ball = ellipsoid_ball(options.closing_mm, spacing)
        radius = [n // 2 for n in ball.shape]
        padded = np.pad(filled, [(r, r) for r in radius])
        filled = ndimage.binary_closing(padded, structure=ball)[tuple(slice(r, -r) for r in radius)] | keep
    if options.fill_holes:
        filled = fill_holes(filled)
    out = probabilities.copy()
    if keep is not brain:
        out[~ndimage.binary_dilation(keep, structure=connectivity)] = 0.0
    out[filled & ~keep] = 1.0
    return out, removed
