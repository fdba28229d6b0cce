"""3-D mask metrics in physical units: Dice, 95th-percentile Hausdorff distance (mm), volume (mL).

Distances are measured between voxel centres in scanner millimetres through the affine, so
anisotropic voxels and gantry-tilt shear count exactly. Surfaces are the mask voxels with a
6-neighbour outside the mask; HD95 follows MONAI's ``compute_hausdorff_distance(percentile=95)``:
the larger of the two directed 95th percentiles.

Empty masks: Dice is 1 when both are empty (nothing to find, nothing found); HD95 is NaN when
either mask is empty (no surface to measure from), and such cases are left out of means.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

from brainseg.data.nifti import open_nifti
from brainseg.data.projection import check_same_grid
from brainseg.evaluation.baseline import dice


def surface_points(mask: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Scanner coordinates (N, 3) in mm of the voxels on a mask's surface."""
    mask = mask > 0
    if not mask.any():
        return np.zeros((0, 3))
    box = ndimage.find_objects(mask.astype(np.uint8))[0]
    crop = np.pad(mask[box], 1)
    surface = crop & ~ndimage.binary_erosion(crop)
    ijk = np.argwhere(surface) - 1 + np.array([s.start for s in box])
    return ijk @ np.asarray(affine)[:3, :3].T


def hausdorff95_mm(prediction: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> float:
    """Symmetric 95th-percentile surface distance in mm; NaN if either mask is empty."""
    a, b = surface_points(prediction, affine), surface_points(truth, affine)
    if not len(a) or not len(b):
        return float("nan")
    a_to_b = cKDTree(b).query(a, workers=-1)[0]
    b_to_a = cKDTree(a).query(b, workers=-1)[0]
    return float(max(np.percentile(a_to_b, 95), np.percentile(b_to_a, 95)))


def volume_ml(mask: np.ndarray, affine: np.ndarray) -> float:
    """Volume of a mask in mL (voxel volume from the affine's determinant)."""
    return float(np.count_nonzero(mask)) * abs(float(np.linalg.det(np.asarray(affine)[:3, :3]))) / 1000.0


def score_volume(prediction: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> dict[str, float]:
    """Dice, HD95 (mm), both volumes and their difference (prediction - truth, mL) of two masks on one grid."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from truth shape {truth.shape}")
    predicted, expected = volume_ml(prediction, affine), volume_ml(truth, affine)
    return {
        "dice": dice(prediction, truth),
        "hd95_mm": hausdorff95_mm(prediction, truth, affine),
        "volume_ml": predicted,
        "volume_truth_ml": expected,
        "volume_difference_ml": predicted - expected,
    }


def score_mask_files(prediction_path: str | Path, truth_path: str | Path, affine_tolerance: float = 1e-3) -> dict[str, float]:
    """:func:`score_volume` of two NIfTI masks, after checking they share one voxel grid.

    Raises:
        BadCaseError: unreadable files, or masks on different grids.
    """
    truth = open_nifti(truth_path)
    prediction = open_nifti(prediction_path)
    check_same_grid(truth, prediction, affine_tolerance)
    return score_volume(_binary(prediction), _binary(truth), truth.affine)


def _binary(volume) -> np.ndarray:
    raw = volume.read()
    scaled = (volume.slope, volume.intercept) != (1.0, 0.0)
    return (volume.scale(raw) if scaled else raw) != 0
