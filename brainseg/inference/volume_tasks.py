"""Prediction and evaluation for slice-mode checkpoints: 3-D masks, skull-free MIPs, 3-D scores.

``scripts/predict.py`` and ``scripts/evaluate.py`` read the checkpoint's
``brainseg.preprocessing.mode`` (:func:`checkpoint_mode`) and hand slice-mode checkpoints to
:func:`predict_volumes` and :func:`evaluate_volumes`; MIP checkpoints keep their own path.
Options live under ``volumes:`` in conf/predict.yaml and conf/evaluate.yaml.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from brainseg.checkpoint import read_checkpoint
from brainseg.data.dicom import open_image
from brainseg.data.discovery import discover_cases
from brainseg.data.nifti import open_nifti
from brainseg.data.projection import check_same_grid
from brainseg.errors import BadCaseError, ConfigError
from brainseg.evaluation.volume_metrics import score_volume
from brainseg.inference.inputs import find_inputs
from brainseg.inference.vessels import VESSEL_WINDOW, write_vessel_views
from brainseg.inference.volume import (
    PostProcessing,
    SliceModel,
    mask_path,
    save_mask,
    segment_volume,
)

log = logging.getLogger(__name__)

VOLUME_SCORES = ("dice", "hd95_mm", "volume_ml", "volume_truth_ml", "volume_difference_ml")
SUMMARY_STATISTICS = {"mean": np.mean, "median": np.median, "std": np.std, "min": np.min, "max": np.max}


def checkpoint_mode(path: str | Path) -> str:
    """'mip' or 'slices': how the checkpoint's training data were made (read weights-only)."""
    preprocessing = read_checkpoint(path)["brainseg"].get("preprocessing") or {}
    return preprocessing.get("mode", "mip")


def _options(cfg: DictConfig) -> dict:
    return dict(cfg.get("volumes") or {})


def _segment(model: SliceModel, path: Path, options: dict):
    return segment_volume(
        model,
        path,
        postprocessing=PostProcessing(**dict(options.get("postprocessing") or {})),
        slice_step_mm=options.get("slice_step_mm"),
    )


def predict_volumes(cfg: DictConfig) -> list[str]:
    """For every CTA under ``cfg.input``: ``<case>_brainmask.nii.gz``, ``<case>_brain_mip.png`` (and slab
    MIPs with ``volumes.slab_mm``), plus ``predictions.csv`` with each volume and its plausibility
    warnings. A case that fails gets one logged line and no files; returns the failures.
    """
    options = _options(cfg)
    model = SliceModel.from_checkpoint(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"))
    cases = find_inputs(cfg.input)
    if not cases:
        raise FileNotFoundError(f"{cfg.input}: no NIfTI files or DICOM series folders found")
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    failures, rows = [], []
    for case in tqdm(cases, desc="Segmenting volumes", unit="case", leave=False):
        try:
            if case.problem:  # a duplicate case ID: its outputs would overwrite another case's
                raise BadCaseError(case.path, case.problem)
            if case.path.suffix.lower() == ".png":
                raise BadCaseError(case.path, "a slice-mode checkpoint segments volumes (NIfTI or DICOM), not MIP PNGs")
            result = _segment(model, case.path, options)
            save_mask(result, mask_path(output, case.case_id))
            if options.get("brain_mip", True):
                write_vessel_views(
                    case.case_id, case.path, result.mask, output,
                    window=tuple(options.get("window") or VESSEL_WINDOW),
                    margin_mm=float(options.get("margin_mm", 1.0)),
                    slab_mm=options.get("slab_mm"),
                    overlap_mm=float(options.get("overlap_mm") or 0.0),
                )
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error) if isinstance(error, BadCaseError) else f"{case.path}: {type(error).__name__}: {error}"
            log.error("%s", line.splitlines()[0])
            failures.append(line.splitlines()[0])
            continue
        for warning in result.warnings:
            log.warning("%s: %s", case.case_id, warning)
        volume = f"{result.volume_ml:.1f}"
        rows.append({"case_id": case.case_id, "input": str(case.path), "brain_volume_ml": volume, "warnings": "; ".join(result.warnings)})
    with open(output / "predictions.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "input", "brain_volume_ml", "warnings"])
        writer.writeheader()
        writer.writerows(rows)
    flagged = sum(bool(row["warnings"]) for row in rows)
    print(f"{len(rows)} of {len(cases)} volume(s) segmented into {output} ({flagged} with warnings)")
    if failures:
        print(f"{len(failures)} failed:", *(f"  {line}" for line in failures), sep="\n")
    return failures


def _evaluation_records(cfg: DictConfig) -> list:
    """The cases to score: ``data.root`` whole, or a split of the checkpoint's training run."""
    root, wanted = cfg.data.get("root"), None
    if root is None:
        run = Path(cfg.ckpt_path).resolve().parent.parent
        split_file, report_file = run / "split.json", run / "data_report.json"
        if not split_file.is_file() or not report_file.is_file():
            raise ConfigError(f"{run} holds no split.json/data_report.json of a training run; give data.root=DIR")
        root = json.loads(report_file.read_text())["dataset"]
        splits = json.loads(split_file.read_text())
        wanted = set(sum(splits.values(), [])) if cfg.split == "all" else set(splits[cfg.split])
    records = discover_cases(root).cases
    return [record for record in records if wanted is None or record.case_id in wanted]


def evaluate_volumes(cfg: DictConfig) -> dict[str, float]:
    """Score a slice-mode checkpoint case by case in 3-D: Dice, HD95 (mm), volumes (mL).

    Writes ``per_case.csv`` (with the plausibility warnings) and ``metrics.json``
    (``<score>/{mean,median,std,min,max}``, sorted keys) into the run folder.
    """
    options = _options(cfg)
    model = SliceModel.from_checkpoint(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"))
    records = _evaluation_records(cfg)
    if not records:
        raise ConfigError("no cases to evaluate")
    output = Path(cfg.paths.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rows = []
    for record in tqdm(records, desc="Evaluating volumes", unit="case", leave=False):
        try:
            truth = open_nifti(record.mask_path)
            check_same_grid(open_image(record.image_path), truth, cfg.data.get("affine_tolerance", 1e-3))
            result = _segment(model, record.image_path, options)
            scores = score_volume(np.asarray(result.mask.dataobj), truth.read() != 0, truth.affine)
        except BadCaseError as error:
            log.error("skipped %s", error)
            continue
        rows.append({"case_id": record.case_id, **scores, "warnings": "; ".join(result.warnings)})
    with open(output / "per_case.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", *VOLUME_SCORES, "warnings"])
        writer.writeheader()
        for row in rows:
            writer.writerow({k: f"{v:.6f}" if isinstance(v, float) else v for k, v in row.items()})
    metrics: dict[str, float] = {"cases": len(rows)}
    for name in VOLUME_SCORES:
        values = np.array([row[name] for row in rows], float)
        values = values[np.isfinite(values)]
        for statistic, function in SUMMARY_STATISTICS.items():
            if values.size:
                metrics[f"{name}/{statistic}"] = float(function(values))
    metrics = dict(sorted(metrics.items()))
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    headline = ("dice/mean", "hd95_mm/mean", "volume_difference_ml/mean")
    shown = [f"{name} {metrics[name]:.4f}" for name in headline if name in metrics]
    print(f"{len(rows)} volume(s): {', '.join(shown)}; per_case.csv, metrics.json in {output}")
    return metrics


def by_checkpoint_mode(mip_task, slices_task):
    """A task that runs ``slices_task`` for a slice-mode checkpoint (``cfg.ckpt_path``) and ``mip_task`` otherwise."""

    def task(cfg: DictConfig):
        return (slices_task if checkpoint_mode(cfg.ckpt_path) == "slices" else mip_task)(cfg)

    return task
