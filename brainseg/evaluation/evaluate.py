"""Per-case scores of binary masks, their summary, and the evaluation of a checkpoint on a dataset.

Scores of one case (:func:`score_case`): Dice and IoU (torchmetrics' ``dice_score`` and
``mean_iou``, as in training), precision, recall, the 95th-percentile Hausdorff distance in mm
(:func:`hausdorff95`) and the predicted and true areas in mm^2. Empty masks never give a silent
NaN; the convention is explicit:

* truth and prediction both empty: ``both_empty='exclude'`` leaves the case out of the summary
  (its scores are blank in ``per_case.csv``; training's Dice does the same), ``'one'`` scores
  every overlap measure 1 and HD95 0;
* exactly one empty: every overlap measure is 0 and HD95 is the diagonal of the image in mm
  (the largest distance the grid allows), so a missed brain is the worst case, not a gap.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from scipy import ndimage
from torchmetrics.functional.segmentation import dice_score, mean_iou
from tqdm.auto import tqdm

from brainseg.data.datamodule import MipDataModule
from brainseg.data.transforms import fit_to_square
from brainseg.errors import ConfigError
from brainseg.inference.mip import load_predictor

log = logging.getLogger(__name__)

SCORES = ("dice", "iou", "precision", "recall", "hd95_mm")
BOTH_EMPTY_POLICIES = ("exclude", "one")
RESOLUTIONS = ("network", "original")


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


def summarize(rows: list[CaseScores]) -> dict[str, float]:
    """``<score>/{mean,median,std,min,max}`` over the scored cases, plus case counts; sorted keys."""
    summary: dict[str, float] = {"cases": len(rows), "cases_excluded": sum(row.dice is None for row in rows)}
    for name in SCORES:
        values = np.array([getattr(row, name) for row in rows if getattr(row, name) is not None], float)
        if values.size == 0:
            continue
        summary.update(
            {
                f"{name}/mean": float(values.mean()),
                f"{name}/median": float(np.median(values)),
                f"{name}/std": float(values.std()),
                f"{name}/min": float(values.min()),
                f"{name}/max": float(values.max()),
            }
        )
    return dict(sorted(summary.items()))


def write_per_case(rows: list[CaseScores], path: str | Path) -> None:
    """``per_case.csv``: one row per case in the given order; excluded scores are blank cells."""
    names = [field.name for field in fields(CaseScores)]
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=names)
        writer.writeheader()
        for row in rows:
            values = asdict(row)
            writer.writerow({name: "" if value is None else (f"{value:.6f}" if isinstance(value, float) else value) for name, value in values.items()})


# ---- the evaluation of a checkpoint -------------------------------------------------------------


def check_evaluate_config(cfg: DictConfig) -> None:
    """Refuse values that cannot work, before any case is read."""
    if cfg.resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution must be one of {RESOLUTIONS}, got {cfg.resolution!r}")
    if cfg.both_empty not in BOTH_EMPTY_POLICIES:
        raise ConfigError(f"both_empty must be one of {BOTH_EMPTY_POLICIES}, got {cfg.both_empty!r}")
    if cfg.data.get("root") is None and cfg.split not in ("train", "val", "test", "all"):
        raise ConfigError(f"split must be train, val, test or all, got {cfg.split!r}")


def evaluation_cases(cfg: DictConfig) -> dict:
    """Case ID -> :class:`Projection` (with its mask) to score: ``data.root`` whole, or a split of
    the checkpoint's training run (``split.json`` and ``data_report.json`` next to ``checkpoints/``).
    The files left out are listed in the output folder's own ``data_report.json``.

    Raises:
        ConfigError: no ``data.root`` and no training run folder around the checkpoint.
    """
    root, wanted = cfg.data.get("root"), None
    if root is None:
        run = Path(cfg.ckpt_path).resolve().parent.parent
        split_file, report_file = run / "split.json", run / "data_report.json"
        if not split_file.is_file() or not report_file.is_file():
            raise ConfigError(
                f"{run} holds no split.json/data_report.json of a training run; give data.root=DIR to score a whole dataset"
            )
        root = json.loads(report_file.read_text())["dataset"]
        if not Path(root).is_dir():
            raise ConfigError(f"the training run's dataset {root} is not here (run from where training ran, or give data.root=DIR)")
        splits = json.loads(split_file.read_text())
        wanted = sorted(sum(splits.values(), [])) if cfg.split == "all" else splits[cfg.split]
    data = cfg.data
    datamodule = MipDataModule(
        root=str(root),
        cache_dir=data.get("cache_dir"),
        cache_root=data.cache_root,
        on_bad_case=data.on_bad_case,
        affine_tolerance=data.affine_tolerance,
        preprocess_workers=data.get("preprocess_workers"),
    )
    datamodule.prepare_data()
    # Like training's run folder, the output lists the files left out under on_bad_case=skip.
    prepared, output = datamodule.prepared, Path(cfg.paths.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    report = {"dataset": str(root), "skipped": prepared.skipped, "warnings": prepared.warnings}
    (output / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
    projections = prepared.projections
    if wanted is None:
        return dict(sorted(projections.items()))
    missing = [case_id for case_id in wanted if case_id not in projections]
    if missing:
        log.warning("%d case(s) of split %r are missing or unusable now: %s", len(missing), cfg.split, ", ".join(missing))
    return {case_id: projections[case_id] for case_id in wanted if case_id in projections}


def on_scoring_grid(projection, prediction, resolution: str):
    """(HU image, truth, predicted mask, spacing in mm) on the grid scores are computed on.

    'network' is the square ``image_size`` grid training scores on (truth resized by nearest
    neighbour, as the DataModule does); 'original' is the MIP's own grid (probability restored).
    """
    if resolution == "network":
        hu, truth = fit_to_square(projection.image, projection.mask, prediction.fit)
        side = prediction.fit.spacing_mm
        return hu[0].numpy(), truth[0].numpy(), prediction.network_mask, (side, side)
    return projection.image, projection.mask, prediction.mask, projection.spacing


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.ckpt_path`` case by case; write ``per_case.csv``, ``metrics.json``, ``report.html``
    and ``data_report.json`` (the files left out, with their reasons)."""
    from brainseg.evaluation.report import (  # report.py imports this module
        CasePicture,
        write_report,
    )

    check_evaluate_config(cfg)
    predictor = load_predictor(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"))
    cases = evaluation_cases(cfg)
    if not cases:
        raise ConfigError("no cases to evaluate")
    rows, pictures = [], {}
    for case_id, projection in tqdm(cases.items(), desc="Evaluating", unit="case", leave=False):
        prediction = predictor.predict(projection.image, projection.spacing)
        hu, truth, predicted, spacing = on_scoring_grid(projection, prediction, cfg.resolution)
        rows.append(score_case(case_id, predicted, truth, spacing, cfg.both_empty))
        pictures[case_id] = CasePicture(hu, truth, predicted)
    output = Path(cfg.paths.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    write_per_case(rows, output / "per_case.csv")
    metrics = summarize(rows)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    context = {
        "checkpoint": cfg.ckpt_path,
        "cases": f"data.root={cfg.data.root}" if cfg.data.get("root") else f"split={cfg.split}",
        "resolution": cfg.resolution,
        "both_empty": cfg.both_empty,
    }
    window = tuple(predictor.preprocessing["window"])
    write_report(output / "report.html", rows, pictures, metrics, context, window, cfg.report.n_cases)
    shown = [f"{name} {metrics[name]:.4f}" for name in ("dice/mean", "iou/mean", "hd95_mm/mean") if name in metrics]
    print(f"{len(rows)} case(s): {', '.join(shown)}; per_case.csv, metrics.json, report.html in {output}")
    return metrics
