"""Prediction on new scans, whatever the checkpoint's mode: one loop, one predictor per mode.

:func:`load_predictor` is the one place that asks which representation a checkpoint was trained
on: a MIP model predicts a 2-D footprint per case (:class:`MipPredictor`), a slice model a 3-D
mask on the input's grid plus skull-free vessel views (:class:`VolumePredictor`). Both take an
input case and an output folder and return the case's row of ``predictions.csv``.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from omegaconf import DictConfig
from tqdm.auto import tqdm

from brainseg.checkpoint import load_model
from brainseg.errors import BadCaseError
from brainseg.inference.ensemble import (
    EnsemblePredictor,
    make_ensemble,
    member_names,
    resolve_checkpoints,
)
from brainseg.inference.inputs import find_inputs
from brainseg.inference.mip import MipPredictor
from brainseg.inference.tta import check_tta
from brainseg.inference.volume import VolumePredictor

log = logging.getLogger(__name__)

PREDICTORS = {"mip": MipPredictor, "slices": VolumePredictor}  # Preprocessing.mode -> predictor


def load_predictor(path: str | Path, device: str = "cpu", threshold: float | None = None) -> MipPredictor | VolumePredictor:
    """The predictor of a checkpoint's mode, read weights-only.

    Args:
        path: a ``.ckpt`` written by brainseg training.
        device: 'cpu', 'cuda', ...
        threshold: overrides the checkpoint's threshold when given.

    Raises:
        BadCheckpointError: see :func:`brainseg.checkpoint.load_model`.
    """
    model = load_model(path, device, threshold)
    return PREDICTORS[model.preprocessing.mode](model.net, model.preprocessing, model.threshold)


def load_predictors(
    ckpt_path, device: str = "cpu", threshold: float | None = None, tta: str = "none"
) -> MipPredictor | VolumePredictor | EnsemblePredictor:
    """One checkpoint's predictor, or the ensemble of several: ``ckpt_path`` is a checkpoint, a list,
    a training run or a multirun folder (:func:`~brainseg.inference.ensemble.resolve_checkpoints`).

    Args:
        tta: test-time augmentation, 'none' or 'flip' (:mod:`brainseg.inference.tta`).

    Raises:
        ConfigError: see :mod:`brainseg.inference.ensemble`. BadCheckpointError: see :func:`load_predictor`.
    """
    check_tta(tta)
    paths = resolve_checkpoints(ckpt_path)
    members = [load_predictor(path, device, threshold) for path in paths]
    for member in members:
        member.tta = tta
    return members[0] if len(members) == 1 else make_ensemble(members, member_names(paths), threshold)


def predict(cfg: DictConfig) -> list[str]:
    """Predict on every case of ``cfg.input`` into ``cfg.output``, plus ``predictions.csv``.

    A case that fails gets one logged line and no files; the others go on. Returns the
    failures, one line each.
    """
    predictor = load_predictors(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"), cfg.get("tta", "none"))
    options = dict(cfg.get("volumes") or {})
    cases = find_inputs(cfg.input)
    if not cases:
        raise FileNotFoundError(f"{cfg.input}: no NIfTI files, DICOM series folders or MIP PNGs found")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    failures, rows = [], []
    for case in tqdm(cases, desc="Predicting", unit="case", leave=False):
        try:
            if case.problem:  # a duplicate case ID: its outputs would overwrite another case's
                raise BadCaseError(case.path, case.problem)
            rows.append(predictor.predict_input(case, output, options))
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error) if isinstance(error, BadCaseError) else f"{case.path}: {type(error).__name__}: {error}"
            line = line.splitlines()[0] if line else str(case.path)
            log.error("%s", line)
            failures.append(line)
    with open(output / "predictions.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(predictor.outputs))
        writer.writeheader()
        writer.writerows(rows)
    flagged = sum(bool(row.get("warnings")) for row in rows)
    print(f"{len(rows)} of {len(cases)} case(s) predicted into {output}" + (f" ({flagged} with warnings)" if flagged else ""))
    if failures:
        print(f"{len(failures)} failed:", *(f"  {line}" for line in failures), sep="\n")
    return failures
