"""Prediction on new scans, whatever the checkpoint's mode: one loop, one predictor per mode.

:func:`load_predictor` is the one place that asks which representation a checkpoint was trained
on: a MIP model predicts a 2-D footprint per case (:class:`MipPredictor`), a slice model a 3-D
mask on the input's grid plus skull-free vessel views (:class:`VolumePredictor`). Both run an
input case, write its files and give its row of ``predictions.csv``; :func:`predict_case` is that
one step, shared by the command line (:func:`predict`) and the Python API (:mod:`brainseg.api`).
Without a checkpoint, the shipped 3-D model is used (:mod:`brainseg.pretrained`).
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig
from tqdm.auto import tqdm

from brainseg.checkpoint import load_model
from brainseg.errors import BadCaseError, ConfigError
from brainseg.inference.ensemble import (
    EnsemblePredictor,
    make_ensemble,
    member_names,
    resolve_checkpoints,
)
from brainseg.inference.inputs import InputCase, find_inputs
from brainseg.inference.mip import MipPredictor, MipResult
from brainseg.inference.postprocessing import PostProcessing
from brainseg.inference.tta import check_tta
from brainseg.inference.volume import VolumePredictor, VolumeSegmentation
from brainseg.pretrained import PREFIX, resolve_checkpoint

log = logging.getLogger(__name__)

PREDICTORS = {"mip": MipPredictor, "slices": VolumePredictor}  # Preprocessing.mode -> predictor
STATUS_COLUMNS = ("status", "reason")  # ok | warning | failed | skipped, and why
REPORT = "predict_report.json"


def load_predictor(path: str | Path | None = None, device: str = "cpu", threshold: float | None = None) -> MipPredictor | VolumePredictor:
    """The predictor of a checkpoint's mode, read weights-only.

    Args:
        path: a ``.ckpt`` written by brainseg training, ``pretrained:mip`` / ``pretrained:volume``
            (a shipped model, its SHA-256 checked), or ``None`` for the shipped 3-D model.
        device: 'cpu', 'cuda', ...
        threshold: overrides the checkpoint's threshold when given.

    Raises:
        BadCheckpointError: see :func:`brainseg.checkpoint.load_model`. ConfigError: an unknown shipped model.
    """
    model = load_model(resolve_checkpoint(path), device, threshold)
    return PREDICTORS[model.preprocessing.mode](model.net, model.preprocessing, model.threshold)


@dataclass
class CaseResult:
    """What predicting one case gave: its ``predictions.csv`` row and the prediction itself."""

    row: dict
    prediction: MipResult | VolumeSegmentation


def predict_case(predictor: MipPredictor | VolumePredictor, case: InputCase, output: Path | None, options: dict) -> CaseResult:
    """Predict one input case; write its files into ``output`` (none when ``None``); log its warnings.

    Raises:
        BadCaseError: the case cannot be predicted (unreadable, a duplicate ID, not CT under
            ``on_non_ct='fail'``, ...).
    """
    if case.problem:  # a duplicate case ID: its outputs would overwrite another case's
        raise BadCaseError(case.path, case.problem)
    if case.skipped:
        raise BadCaseError(case.path, f"series {case.case_id} left out: {case.skipped}")
    result = predictor.run(case, options)
    if output is not None:
        predictor.write(case, result, output, options)
    for warning in result.warnings:
        log.warning("%s: %s", case.case_id, warning)
    row = predictor.row(case, result)
    return CaseResult({**row, "status": "warning" if result.warnings else "ok", "reason": ""}, result)


def case_options(cfg: DictConfig) -> dict:
    """The per-case options of predict and evaluate: ``volumes:``, ``mip_limits`` and ``on_non_ct``."""
    return {**dict(cfg.get("volumes") or {}), "mip_limits": dict(cfg.get("mip_limits") or {}), "on_non_ct": cfg.get("on_non_ct", "warn")}


def configured_predictor(cfg: DictConfig, ckpt_path) -> MipPredictor | VolumePredictor | EnsemblePredictor:
    """The predictor predict and evaluate run: :func:`load_predictors` with the config's device,
    threshold and test-time augmentation, and a MIP model's ``mip_postprocessing`` (null: the raw
    network output, as training scores it)."""
    predictor = load_predictors(ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"), cfg.get("tta", "none"))
    if isinstance(predictor, MipPredictor):
        options = cfg.get("mip_postprocessing", {})
        predictor.postprocessing = None if options is None else PostProcessing(**options)
    return predictor


def checkpoint_choice(cfg: DictConfig) -> str | None:
    """``cfg.ckpt_path`` (``model=mip|volume`` sets it to a shipped model); refuses a training ``model`` group."""
    if cfg.get("model") is not None:
        raise ConfigError("model= picks a shipped model here: model=mip or model=volume (or give ckpt_path=FILE)")
    return cfg.get("ckpt_path")


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
    if ckpt_path is None or str(ckpt_path).startswith(PREFIX):  # a shipped model
        paths = [ckpt_path]
    else:
        paths = resolve_checkpoints(ckpt_path)
    members = [load_predictor(path, device, threshold) for path in paths]
    for member in members:
        member.tta = tta
    return members[0] if len(members) == 1 else make_ensemble(members, member_names([Path(p) for p in paths]), threshold)


def predict(cfg: DictConfig) -> list[str]:
    """Predict on every case of ``cfg.input`` into ``cfg.output``, plus ``predictions.csv`` (a row per
    case and per DICOM series left out, with its status) and ``predict_report.json``.

    A case that fails gets one logged line and no files; the others go on. Returns the
    failures, one line each.
    """
    return [f"{entry['error']}" for entry in predict_report(cfg)["failed"]]


def predict_report(cfg: DictConfig) -> dict:
    """:func:`predict`, returning what it writes into ``predict_report.json``: the checkpoint, the
    cases predicted, their warnings, the failures and the DICOM series left out."""
    ckpt_path = checkpoint_choice(cfg)
    predictor = configured_predictor(cfg, ckpt_path)
    options = case_options(cfg)
    cases = find_inputs(cfg.input, dict(cfg.get("dicom") or {}))
    if not cases:
        raise FileNotFoundError(f"{cfg.input}: no NIfTI files, DICOM series or MIP PNGs found")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    failures, rows, skipped = [], [], []
    for case in tqdm(cases, desc="Predicting", unit="case", leave=False):
        if case.skipped:
            log.info("%s: series left out: %s", case.case_id, case.skipped)
            rows.append({"case_id": case.case_id, "input": str(case.path), "status": "skipped", "reason": case.skipped})
            skipped.append({"name": case.case_id, "folder": str(case.path), **case.describe(), "reason": case.skipped})
            continue
        try:
            rows.append(predict_case(predictor, case, output, options).row)
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error) if isinstance(error, BadCaseError) else f"{case.path}: {type(error).__name__}: {error}"
            line = line.splitlines()[0] if line else str(case.path)
            log.error("%s", line)
            failures.append(line)
            rows.append({"case_id": case.case_id, "input": str(case.path), "status": "failed", "reason": line})
    write_rows(output / "predictions.csv", rows, (*predictor.outputs, *STATUS_COLUMNS))
    report = {
        "checkpoint": str(ckpt_path or "pretrained:volume"),
        "input": str(cfg.input),
        "predicted": [row["case_id"] for row in rows if row["status"] in ("ok", "warning")],
        "warnings": {row["case_id"]: row["warnings"] for row in rows if row["status"] == "warning"},
        "failed": [{"case_id": row["case_id"], "error": row["reason"]} for row in rows if row["status"] == "failed"],
        "skipped_series": skipped,
    }
    (output / REPORT).write_text(json.dumps(report, indent=2) + "\n")
    predicted, flagged = len(report["predicted"]), len(report["warnings"])
    print(f"{predicted} of {len(cases) - len(skipped)} case(s) predicted into {output}" + (f" ({flagged} with warnings)" if flagged else ""))
    if skipped:
        print(f"{len(skipped)} DICOM series left out:", *(f"  {entry['name']}: {entry['reason']}" for entry in skipped), sep="\n")
    if failures:
        print(f"{len(failures)} failed:", *(f"  {line}" for line in failures), sep="\n")
    return report


def write_rows(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """``predictions.csv``: one row per case, in input order; missing cells blank."""
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore", restval="")
        writer.writeheader()
        writer.writerows(rows)
