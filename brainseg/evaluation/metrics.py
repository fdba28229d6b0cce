"""Scores of one case: 2-D footprints (MIP mode) and 3-D masks (slice mode).

2-D (:func:`score_case`): Dice and IoU (torchmetrics' ``dice_score`` and ``mean_iou``, as in
training), precision, recall, the 95th-percentile Hausdorff distance in mm (:func:`hausdorff95`)
and the predicted and true areas in mm^2. Empty masks never give a silent NaN; the convention
is explicit:

* truth and prediction both empty: ``both_empty='exclude'`` leaves the case out of the summary
  (its scores are blank in ``per_case.csv``; training's Dice does the same), ``'one'`` scores
  every overlap measure 1 and HD95 0;
* exactly one empty: every overlap measure is 0 and HD95 is the diagonal of the image in mm
  (the largest distance the grid allows), so a missed brain is the worst case, not a gap.

3-D (:func:`score_volume`): Dice, IoU, HD95 in scanner mm (surfaces through the affine) and the
predicted and true volumes in mL, on the image's own voxel grid.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import nibabel as nib
import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from torchmetrics.functional.segmentation import dice_score, mean_iou

from brainseg.data.baseline import dice

SCORES = ("dice", "iou", "precision", "recall", "hd95_mm")  # 2-D, per MIP
VOLUME_SCORES = (  # 3-D, per volume
    "dice", "iou", "hd95_mm", "volume_ml", "volume_truth_ml", "volume_difference_ml",
    "footprint_dice", "dice_inferior_third", "dice_middle_third", "dice_superior_third",
)
BOTH_EMPTY_POLICIES = ("exclude", "one")


@dataclass
class CaseScores:
    """One row of ``per_case.csv``; a score is ``None`` when the case is excluded."""

    case_id: str
    dice: float | None
    iou: float | None
    precision: float | None
    recall: float | None
    hd95_mm: float | None
    predicted_area_mm2: float
    true_area_mm2: float
    note: str = ""


def edge(mask: np.ndarray) -> np.ndarray:
    """Boundary pixels of a binary mask: inside it, with a 4-neighbour outside it (or off the image)."""
    mask = np.asarray(mask, bool)
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def surface_distances(source: np.ndarray, target: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """For each edge pixel of ``source``, the distance in mm to the nearest edge pixel of ``target``."""
    to_target = ndimage.distance_transform_edt(~edge(target), sampling=spacing)
    return to_target[edge(source)]


def hausdorff95(prediction: np.ndarray, truth: np.ndarray, spacing: tuple[float, float], percentile: float = 95.0) -> float:
    """Symmetric percentile Hausdorff distance in mm between two non-empty masks' edges.

    The larger of the two directed ``percentile``-th distances (MONAI's ``percentile=95``
    definition); ``percentile=100`` is the plain Hausdorff distance.
    """
    forward = surface_distances(prediction, truth, spacing)
    backward = surface_distances(truth, prediction, spacing)
    return float(max(np.percentile(forward, percentile), np.percentile(backward, percentile)))


def score_case(
    case_id: str,
    prediction: np.ndarray,
    truth: np.ndarray,
    spacing: tuple[float, float],
    both_empty: str = "exclude",
) -> CaseScores:
    """Scores of one binary prediction against its truth on a grid of ``spacing`` mm (rows, cols)."""
    if both_empty not in BOTH_EMPTY_POLICIES:
        raise ValueError(f"both_empty must be one of {BOTH_EMPTY_POLICIES}, got {both_empty!r}")
    prediction, truth = np.asarray(prediction) > 0, np.asarray(truth) > 0
    pixel_area = float(spacing[0]) * float(spacing[1])
    areas = {"predicted_area_mm2": float(prediction.sum()) * pixel_area, "true_area_mm2": float(truth.sum()) * pixel_area}
    if not prediction.any() and not truth.any():
        if both_empty == "exclude":
            return CaseScores(case_id, None, None, None, None, None, **areas, note="both empty: excluded")
        return CaseScores(case_id, 1.0, 1.0, 1.0, 1.0, 0.0, **areas, note="both empty: scored 1")
    if not prediction.any() or not truth.any():
        diagonal = math.hypot(truth.shape[0] * spacing[0], truth.shape[1] * spacing[1])
        note = "prediction empty" if not prediction.any() else "truth empty"
        return CaseScores(case_id, 0.0, 0.0, 0.0, 0.0, diagonal, **areas, note=f"{note}: scored 0, HD95 = image diagonal")
    preds, target = torch.from_numpy(prediction[None].astype(np.int64)), torch.from_numpy(truth[None].astype(np.int64))
    options = {"num_classes": 2, "include_background": False, "input_format": "index"}
    true_positive = float((prediction & truth).sum())
    with warnings.catch_warnings():  # torchmetrics warns about a default that `average` here overrides
        warnings.filterwarnings("ignore", message="dice_score metric currently defaults")
        dice = float(dice_score(preds, target, average="micro", **options))
    return CaseScores(
        case_id,
        dice=dice,
        iou=float(mean_iou(preds, target, **options)),
        precision=true_positive / float(prediction.sum()),
        recall=true_positive / float(truth.sum()),
        hd95_mm=hausdorff95(prediction, truth, spacing),
        **areas,
    )



# ---- 3-D masks on a volume's own grid ----------------------------------------------------------


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
    """Dice, IoU, HD95 (mm), both volumes and their difference (prediction - truth, mL) of two masks
    on one grid, plus :func:`score_regions`.

    Both masks empty: Dice and IoU 1 (nothing to find, nothing found), HD95 NaN."""
    if prediction.shape != truth.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from truth shape {truth.shape}")
    predicted, expected = volume_ml(prediction, affine), volume_ml(truth, affine)
    union = np.count_nonzero((prediction > 0) | (truth > 0))
    return {
        "dice": dice(prediction, truth),
        "iou": float(np.count_nonzero((prediction > 0) & (truth > 0)) / union) if union else 1.0,
        "hd95_mm": hausdorff95_mm(prediction, truth, affine),
        "volume_ml": predicted,
        "volume_truth_ml": expected,
        "volume_difference_ml": predicted - expected,
        **score_regions(prediction, truth, affine),
    }


def score_regions(prediction: np.ndarray, truth: np.ndarray, affine: np.ndarray) -> dict[str, float]:
    """Where a 3-D mask is right or wrong along the patient's S axis.

    * ``footprint_dice``: Dice of the two masks' projections along S (the union over axial
      slices), what a MIP model predicts: a 3-D model scored as a MIP model is;
    * ``dice_{inferior,middle,superior}_third``: 3-D Dice within each third of the true brain's
      S extent (skull base, middle, vertex), so that a weak skull base cannot hide in a good mean.
    """
    orientation = nib.orientations.io_orientation(np.asarray(affine))  # nearest RAS axes (tilt: a shear, ignored here)
    predicted = nib.orientations.apply_orientation(np.asarray(prediction, bool), orientation)
    expected = nib.orientations.apply_orientation(np.asarray(truth, bool), orientation)
    scores = {"footprint_dice": dice(predicted.any(axis=2), expected.any(axis=2))}
    levels = np.flatnonzero(expected.any(axis=(0, 1)))
    edges = np.linspace(levels[0], levels[-1] + 1, 4).round().astype(int) if len(levels) else None
    for name, third in zip(("inferior", "middle", "superior"), range(3)):
        if edges is None:
            scores[f"dice_{name}_third"] = float("nan")
            continue
        z = slice(edges[third], edges[third + 1])
        scores[f"dice_{name}_third"] = dice(predicted[:, :, z], expected[:, :, z])
    return scores
