"""The classical baseline a model must beat: the head's footprint shrunk by a fixed margin.

In a MIP the brain's footprint is close to the head's footprint shrunk by the scalp and skull.
The baseline thresholds air (HU below -500), fills holes, and erodes by one margin in mm chosen
to maximise Dice on the training split. A model that does not beat it has learnt nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

AIR_THRESHOLD_HU = -500.0
MARGINS_MM = np.arange(0.0, 30.01, 0.5)


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    """Dice of two binary masks; 1.0 when both are empty."""
    prediction, truth = prediction > 0, truth > 0
    total = prediction.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (prediction & truth).sum() / total)


def head_depth_mm(hu: np.ndarray, spacing_mm: float) -> np.ndarray:
    """For each pixel inside the head's footprint, its distance in mm to the outside air."""
    head = ndimage.binary_fill_holes(hu > AIR_THRESHOLD_HU)
    return ndimage.distance_transform_edt(head) * spacing_mm


def baseline_mask(hu: np.ndarray, spacing_mm: float, margin_mm: float) -> np.ndarray:
    """Head footprint eroded by ``margin_mm``."""
    return head_depth_mm(hu, spacing_mm) > margin_mm


def fit_margin(images: Sequence[np.ndarray], masks: Sequence[np.ndarray], spacings: Sequence[float]) -> float:
    """The single margin (mm) that maximises mean Dice over the given (training) cases."""
    depths = [head_depth_mm(hu, s) for hu, s in zip(images, spacings)]
    scores = [np.mean([dice(depth > margin, mask) for depth, mask in zip(depths, masks)]) for margin in MARGINS_MM]
    return float(MARGINS_MM[int(np.argmax(scores))])


def score_baseline(train_cases: Sequence, test_cases: Sequence) -> dict[str, float]:
    """Fit the margin on ``train_cases`` and return the mean Dice on ``test_cases``.

    Cases are :class:`brainseg.data.mip_datamodule.MipCase` (HU, mask and pixel size at network resolution).
    """

    def unpack(cases):
        return [c.hu[0].numpy() for c in cases], [c.mask[0].numpy() for c in cases], [c.fit.spacing_mm for c in cases]

    margin = fit_margin(*unpack(train_cases))
    images, masks, spacings = unpack(test_cases)
    scores = [dice(baseline_mask(hu, s, margin), m) for hu, m, s in zip(images, masks, spacings)]
    return {"test/dice_baseline": float(np.mean(scores)), "baseline/margin_mm": margin}
