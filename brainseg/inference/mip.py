"""A trained checkpoint as a ready predictor: MIP in, brain probability on the same grid out.

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain containers
are unpickled, so a file that tries to run code is refused before anything runs. Everything
prediction needs travels in ``checkpoint["brainseg"]`` (network configuration, threshold,
preprocessing); nothing else is read. The path from a MIP to the network input is the
DataModule's (:func:`plan_square_fit`, :func:`fit_to_square`, :func:`normalize_hu`), and the
probability map is mapped back with :func:`restore_from_square`.

:func:`predict` runs a predictor over new scans (NIfTI files, DICOM series folders, MIP PNGs) and
writes a mask, a probability map and an overlay per case; a case that fails is listed, not fatal.
"""

from __future__ import annotations

import csv
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from PIL import Image
from torch import nn
from tqdm.auto import tqdm

from brainseg.checkpoint import build_network, read_checkpoint
from brainseg.data.normalization import normalize_hu, window_hu
from brainseg.data.transforms import (
    SquareFit,
    fit_to_square,
    plan_square_fit,
    restore_from_square,
)
from brainseg.errors import BadCaseError, BadCheckpointError, ConfigError
from brainseg.inference.inputs import find_inputs, project_input
from brainseg.models.unet import UNet
from brainseg.visualization import PREDICTION_COLOUR, enlarge, overlay

log = logging.getLogger(__name__)

NETWORKS = {"UNet": UNet}  # checkpoint["brainseg"]["net"]["name"] -> class



@dataclass
class Prediction:
    """A case's prediction on its projection grid and on the network grid."""

    probability: np.ndarray  # float32 [0, 1], (rows, cols) of the projection
    mask: np.ndarray  # uint8 {0, 1}, probability > threshold
    network_probability: np.ndarray  # float32 [0, 1], (size, size)
    network_mask: np.ndarray  # uint8 {0, 1}
    fit: SquareFit  # how the projection was fitted to the network grid


class Predictor:
    """A network with the threshold and preprocessing it was trained with.

    Args:
        net: logits-out network, in eval mode.
        threshold: probability above which a pixel is brain.
        preprocessing: the DataModule's ``preprocessing()`` dict (image_size, normalization, window, statistics).
        device: where the network runs. Defaults to 'cpu'.
    """

    def __init__(self, net: nn.Module, threshold: float, preprocessing: dict, device: str = "cpu"):
        if not 0.0 < float(threshold) < 1.0:
            raise ConfigError(f"threshold applies to probabilities and must be in (0, 1), got {threshold}")
        if preprocessing.get("mode", "mip") != "mip":
            raise ValueError(f"this predictor handles MIP checkpoints, got mode {preprocessing.get('mode')!r}")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.threshold = float(threshold)
        self.preprocessing = dict(preprocessing)
        self.image_size = int(preprocessing["image_size"])

    def network_input(self, hu: np.ndarray, spacing: tuple[float, float]) -> tuple[torch.Tensor, SquareFit]:
        """HU MIP -> normalized ``(1, size, size)`` tensor, as the DataModule makes it, and the fit used."""
        fit = plan_square_fit(hu.shape, spacing, self.image_size)
        fitted, _ = fit_to_square(np.asarray(hu, np.float32), None, fit)
        p = self.preprocessing
        image = normalize_hu(fitted.numpy(), p["normalization"], p["window"], p.get("statistics"))
        return torch.from_numpy(image), fit

    @torch.no_grad()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Sigmoid of the network's logits for a ``(N, 1, size, size)`` batch, on the CPU."""
        return torch.sigmoid(self.net(images.to(self.device)).float()).cpu()

    def predict(self, hu: np.ndarray, spacing: tuple[float, float]) -> Prediction:
        """Brain probability and mask of one HU MIP (display orientation) on its own grid."""
        image, fit = self.network_input(hu, spacing)
        network_probability = self.probabilities(image[None])[0, 0]
        probability = restore_from_square(network_probability, fit).clamp(0, 1).numpy()
        network_probability = network_probability.numpy()
        return Prediction(
            probability=probability,
            mask=(probability > self.threshold).astype(np.uint8),
            network_probability=network_probability,
            network_mask=(network_probability > self.threshold).astype(np.uint8),
            fit=fit,
        )


def load_predictor(path: str | Path, device: str = "cpu", threshold: float | None = None) -> Predictor:
    """Read a checkpoint weights-only and return its :class:`Predictor`.

    Args:
        path: a ``.ckpt`` written by brainseg training.
        device: 'cpu', 'cuda', ...
        threshold: overrides the checkpoint's threshold when given.

    Raises:
        BadCheckpointError: see :func:`read_checkpoint` and :func:`build_network`.
    """
    checkpoint = read_checkpoint(path)
    meta = checkpoint["brainseg"]
    preprocessing = meta.get("preprocessing")
    if not preprocessing:
        raise BadCheckpointError(path, "no preprocessing recorded (trained without a brainseg DataModule)")
    if preprocessing.get("mode", "mip") != "mip":
        raise BadCheckpointError(path, f"trained with data.mode={preprocessing['mode']!r}; this predictor needs 'mip'")
    net = build_network(checkpoint, path)
    return Predictor(net, meta["threshold"] if threshold is None else threshold, preprocessing, device)


# ---- prediction on new scans: inputs in, three PNGs per case out --------------------------------

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


def predict(cfg: DictConfig) -> list[str]:
    """Predict on every case of ``cfg.input``; write ``<case>_{mask,prob,overlay}.png`` into ``cfg.output``.

    A case that fails gets one logged line and no files; the others go on. Also writes
    ``predictions.csv`` (case, input, predicted brain area in mm^2). Returns the failures, one line each.
    """
    predictor = load_predictor(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"))
    window = tuple(predictor.preprocessing["window"])
    cases = find_inputs(cfg.input)
    if not cases:
        raise FileNotFoundError(f"{cfg.input}: no NIfTI files, DICOM series folders or MIP PNGs found")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    failures, rows = [], []
    for case in tqdm(cases, desc="Predicting", unit="case", leave=False):
        try:
            if case.problem:
                raise BadCaseError(case.path, case.problem)
            projection = project_input(case, window)
            prediction = predictor.predict(projection.image, projection.spacing)
            pictures = case_pictures(projection.image, prediction, window)
            write_pngs({output / f"{case.case_id}_{name}.png": array for name, array in pictures.items()})
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error) if isinstance(error, BadCaseError) else f"{case.path}: {type(error).__name__}: {error}"
            line = line.splitlines()[0] if line else str(case.path)
            log.error("%s", line)
            failures.append(line)
            continue
        area = float(prediction.mask.sum()) * projection.spacing[0] * projection.spacing[1]
        rows.append({"case_id": case.case_id, "input": str(case.path), "brain_area_mm2": f"{area:.1f}"})
    with open(output / "predictions.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "input", "brain_area_mm2"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"{len(rows)} of {len(cases)} case(s) predicted into {output}")
    if failures:
        print(f"{len(failures)} failed:", *(f"  {line}" for line in failures), sep="\n")
    return failures
