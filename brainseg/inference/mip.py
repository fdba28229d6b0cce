"""MIP prediction: a case's HU MIP in, its brain footprint (probability and mask) on the same grid out.

The path from a projection to the network input is the DataModule's (:func:`plan_square_fit`,
:func:`fit_planes`, the checkpoint's :class:`Preprocessing`), and the probability map is
mapped back with :func:`restore_from_square`. Per input case, prediction writes a mask, a
probability map and an overlay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from brainseg.data.normalization import window_hu
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.projection import Projection
from brainseg.data.transforms import (
    SquareFit,
    fit_planes,
    plan_square_fit,
    restore_from_square,
)
from brainseg.errors import BadCaseError
from brainseg.inference.inputs import InputCase, is_windowed_png, project_input
from brainseg.inference.plausibility import (
    MipLimits,
    check_ct_input,
    check_mip_plausibility,
)
from brainseg.inference.postprocessing import PostProcessing, postprocess
from brainseg.inference.tta import augmented, check_tta
from brainseg.visualization import PREDICTION_COLOUR, enlarge, overlay


@dataclass
class Prediction:
    """A case's prediction on its projection grid and on the network grid."""

    probability: np.ndarray  # float32 [0, 1], (rows, cols) of the projection
    mask: np.ndarray  # uint8 {0, 1}, probability > threshold
    network_probability: np.ndarray  # float32 [0, 1], (size, size)
    network_mask: np.ndarray  # uint8 {0, 1}
    fit: SquareFit  # how the projection was fitted to the network grid


class MipPredictor:
    """A MIP network with the threshold and preprocessing it was trained with.

    Args:
        net: logits-out network, in eval mode.
        preprocessing: the checkpoint's :class:`Preprocessing` (``mode="mip"``).
        threshold: probability above which a pixel is brain. Defaults to 0.5.
        tta: test-time augmentation, 'none' or 'flip' (:mod:`brainseg.inference.tta`). Defaults to 'none'.
        postprocessing: clean-up of the footprint on the network grid (largest piece, holes filled),
            as for 3-D masks: a brain's footprint is one piece. ``None`` keeps the raw prediction.
    """

    outputs = ("case_id", "input", "brain_area_mm2", "warnings")  # predictions.csv columns
    LR_DIM = -1  # the network input's left-right axis: the columns of a MIP in display orientation

    def __init__(self, net: nn.Module, preprocessing: Preprocessing, threshold: float = 0.5, tta: str = "none",
                 postprocessing: PostProcessing | None = PostProcessing()):
        self.device = next(net.parameters(), torch.empty(0)).device
        self.postprocessing = postprocessing
        self.net = net.eval()
        self.threshold = float(threshold)
        self.preprocessing = preprocessing
        self.image_size = preprocessing.input_size
        self.tta = check_tta(tta)

    def network_input(self, projection: Projection) -> tuple[torch.Tensor, SquareFit]:
        """A case's projection -> normalized ``(C, size, size)`` tensor, as the DataModule makes it, and the fit used."""
        planes, fit = self.fitted_planes(projection)
        return self.normalized(planes), fit

    def fitted_planes(self, projection: Projection) -> tuple[np.ndarray, SquareFit]:
        """A case's MIP (HU) and the extra projections this model takes, on the network grid
        (``(C, size, size)``, aspect kept, padded with air), and the fit.

        Raises:
            ValueError: the projection lacks an extra projection the model takes (a MIP picture).
        """
        fit = plan_square_fit(projection.image.shape, projection.spacing, self.image_size)
        return fit_planes(projection, self.preprocessing.extra_projections, fit), fit

    def normalized(self, planes: np.ndarray) -> torch.Tensor:
        """``(C, size, size)`` fitted planes -> the network input, with this model's normalization."""
        return torch.from_numpy(self.preprocessing.normalize_planes(planes))

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Brain probabilities of a normalized ``(N, C, size, size)`` batch, on the CPU: the sigmoid
        of the network's logits, averaged with the flipped input's where ``tta='flip'``."""
        return augmented(self._sigmoid, images, self.tta, self.LR_DIM)

    def _sigmoid(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(images.to(self.device)).float()).cpu()

    def network_probability(self, planes: np.ndarray) -> torch.Tensor:
        """Brain probability ``(size, size)`` of a case on the network grid, from its :meth:`fitted_planes`."""
        return self.probabilities(self.normalized(planes)[None])[0, 0]

    def predict(self, projection: Projection) -> Prediction:
        """Brain probability and mask of one case's projection (display orientation) on its own grid,
        post-processed on the network grid and mapped back from there."""
        planes, fit = self.fitted_planes(projection)
        network_probability = self.network_probability(planes)
        if self.postprocessing is not None:
            cleaned, _ = postprocess(network_probability.numpy(), self.threshold, (fit.spacing_mm,) * 2, self.postprocessing)
            network_probability = torch.from_numpy(cleaned)
        probability = restore_from_square(network_probability, fit).clamp(0, 1).numpy()
        network_probability = network_probability.numpy()
        return Prediction(
            probability=probability,
            mask=(probability > self.threshold).astype(np.uint8),
            network_probability=network_probability,
            network_mask=(network_probability > self.threshold).astype(np.uint8),
            fit=fit,
        )

    def run(self, case: InputCase, options: dict) -> "MipResult":
        """Project one input case (or read its MIP PNG), check it looks like CT, predict its footprint, check that.

        Raises:
            BadCaseError: the input cannot be read or projected; not CT under ``on_non_ct='fail'``.
        """
        projection = project_input(case, self.preprocessing.hu_window, self.preprocessing.extra_projections)
        warnings = [] if is_windowed_png(case) else check_ct_input(projection.image, case.path, options.get("on_non_ct", "warn"), projection=True)
        try:
            prediction = self.predict(projection)
        except ValueError as error:  # a MIP picture for a model that takes extra projections
            raise BadCaseError(case.path, str(error)) from None
        warnings += check_mip_plausibility(prediction.mask, projection.spacing, MipLimits(**dict(options.get("mip_limits") or {})))
        return MipResult(projection.image, projection.spacing, prediction, warnings)

    def write(self, case: InputCase, result: "MipResult", output: Path, options: dict) -> None:
        """Write ``<case>_{mask,prob,overlay}.png`` into ``output``."""
        pictures = case_pictures(result.mip, result.prediction, self.preprocessing.hu_window)
        write_pngs({output / f"{case.case_id}_{name}.png": array for name, array in pictures.items()})

    def row(self, case: InputCase, result: "MipResult") -> dict:
        """The case's row of ``predictions.csv``."""
        return {"case_id": case.case_id, "input": str(case.path), "brain_area_mm2": f"{result.area_mm2:.1f}", "warnings": "; ".join(result.warnings)}


@dataclass
class MipResult:
    """A case's HU MIP (display orientation) and its predicted brain footprint on the same grid."""

    mip: np.ndarray  # float32 HU, (rows, cols): anterior up, the patient's right on the left
    spacing: tuple[float, float]  # mm between rows, between columns
    prediction: Prediction
    warnings: list[str]

    @property
    def mask(self) -> np.ndarray:
        """uint8 {0, 1}, the MIP's grid."""
        return self.prediction.mask

    @property
    def probability(self) -> np.ndarray:
        """float32 [0, 1], the MIP's grid."""
        return self.prediction.probability

    @property
    def area_mm2(self) -> float:
        return float(self.prediction.mask.sum()) * self.spacing[0] * self.spacing[1]


OVERLAY_MIN_SIDE = 512  # a smaller MIP's overlay is enlarged by an integer factor, for people to look at


def case_pictures(hu: np.ndarray, prediction: Prediction, window: tuple[float, float]) -> dict[str, np.ndarray]:
    """The three output pictures of a case, keyed by file suffix, in display orientation.

    ``mask``: 0/255 uint8. ``prob``: probability x 65535 as 16-bit. ``overlay``: the MIP in the
    model's HU window with the predicted outline in red, enlarged to ``OVERLAY_MIN_SIDE`` if smaller.
    """
    gray = (window_hu(hu, window) * 255).round().astype(np.uint8)
    gray, (mask,) = enlarge(gray, [prediction.mask], OVERLAY_MIN_SIDE)
    width = max(1, round(max(gray.shape) / 256))
    return {
        "mask": prediction.mask * np.uint8(255),
        "prob": np.rint(prediction.probability * 65535).astype(np.uint16),
        "overlay": overlay(gray, [mask], colours=[PREDICTION_COLOUR], width=width),
    }


def write_pngs(pictures: dict[Path, np.ndarray]) -> None:
    """Write every picture or none: each goes to a temporary name first, then all are renamed."""
    temporary = {path: path.with_name(f".{path.name}.tmp") for path in pictures}
    try:
        for path, array in pictures.items():
            Image.fromarray(array).save(temporary[path], format="PNG")
        for path, temp in temporary.items():
            os.replace(temp, path)
    finally:
        for temp in temporary.values():
            temp.unlink(missing_ok=True)
