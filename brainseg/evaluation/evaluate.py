"""The evaluation of a checkpoint on a dataset, case by case, in the checkpoint's own terms.

A MIP checkpoint is scored in 2-D on the cached MIPs (the grid training scores on, or the MIP's
own); a slice checkpoint is scored in 3-D on each volume's own voxel grid. Both write a visual
``report.html`` (MIPs, or axial slices of the volumes), and ``per_case.csv``, ``metrics.json`` (:func:`~brainseg.evaluation.summary.summarize`)
and ``data_report.json`` into the run folder. The cases are ``data.root`` whole, or a split of
the checkpoint's training run.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from brainseg.data.cache import dataset_cache_dir
from brainseg.data.cases import open_case
from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.preparation import load_item, prepare_dataset
from brainseg.data.projection import MipRepresentation
from brainseg.data.transforms import fit_to_square
from brainseg.errors import BadCaseError, ConfigError
from brainseg.evaluation.metrics import (
    BOTH_EMPTY_POLICIES,
    SCORES,
    VOLUME_SCORES,
    CaseScores,
    score_case,
    score_volume,
)
from brainseg.evaluation.report import CasePicture, pick_cases, write_report
from brainseg.evaluation.summary import summarize, write_per_case
from brainseg.evaluation.volume_report import axial_views, write_volume_report
from brainseg.inference.ensemble import resolve_checkpoints
from brainseg.inference.mip import MipPredictor
from brainseg.inference.predict import configured_predictor
from brainseg.inference.volume import VolumePredictor
from brainseg.pretrained import PREFIX

log = logging.getLogger(__name__)

RESOLUTIONS = ("network", "original")
SPLIT_NAMES = ("train", "val", "test", "all")


def check_evaluate_config(cfg: DictConfig) -> None:
    """Refuse values that cannot work, before any case is read."""
    if cfg.resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution must be one of {RESOLUTIONS}, got {cfg.resolution!r}")
    if cfg.both_empty not in BOTH_EMPTY_POLICIES:
        raise ConfigError(f"both_empty must be one of {BOTH_EMPTY_POLICIES}, got {cfg.both_empty!r}")
    if cfg.data.get("root") is None and cfg.split not in SPLIT_NAMES:
        raise ConfigError(f"split must be one of {SPLIT_NAMES}, got {cfg.split!r}")


def evaluation_dataset(cfg: DictConfig, checkpoints: list[Path]) -> tuple[Path, list[str] | None]:
    """The dataset folder to score and the case IDs wanted (``None`` = every case): ``data.root``,
    or the split of the checkpoints' training run (``split.json`` and ``data_report.json``
    next to ``checkpoints/``). An ensemble's runs must agree on the dataset and on the split.

    Raises:
        ConfigError: no ``data.root`` and no training run folder around a checkpoint, or an
            ensemble whose runs split differently (the folds of a cross-validation).
    """
    if cfg.data.get("root") is not None:
        return Path(cfg.data.root), None
    if any(str(checkpoint).startswith(PREFIX) for checkpoint in checkpoints):
        raise ConfigError(f"{cfg.ckpt_path} is a shipped model, with no training run here; give data.root=DIR to score it on a dataset")
    found = {_run_split(checkpoint, cfg.split) for checkpoint in checkpoints}
    if len(found) > 1:
        raise ConfigError(
            f"the checkpoints' runs hold different {cfg.split} splits (e.g. folds of a cross-validation, each case "
            "trained on by some of them); give data.root=DIR of cases none of them trained on"
        )
    root, wanted = found.pop()
    return root, list(wanted)


def _run_split(checkpoint: Path, split: str) -> tuple[Path, tuple[str, ...]]:
    run = Path(checkpoint).resolve().parent.parent
    split_file, report_file = run / "split.json", run / "data_report.json"
    if not split_file.is_file() or not report_file.is_file():
        raise ConfigError(f"{run} holds no split.json/data_report.json of a training run; give data.root=DIR to score a whole dataset")
    root = training_dataset(run, json.loads(report_file.read_text())["dataset"])
    splits = json.loads(split_file.read_text())  # k-fold runs also name their fold
    wanted = sorted(sum((splits[name] for name in ("train", "val", "test")), [])) if split == "all" else splits[split]
    return root, tuple(wanted)


def training_dataset(run: Path, recorded: str) -> Path:
    """The dataset folder a training run recorded: absolute since runs record it so; an older run's
    relative path is looked up from the working directory, then from the folders above the run
    (training ran in the folder that holds ``outputs/``).

    Raises:
        ConfigError: the folder is not found.
    """
    root = Path(recorded)
    candidates = [root] if root.is_absolute() else [root, *(folder / root for folder in run.parents)]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"the training run's dataset {recorded} is not here (give data.root=DIR)")


def _keep_wanted(items: dict, wanted: list[str] | None, split: str) -> dict:
    if wanted is None:
        return dict(sorted(items.items()))
    missing = [case_id for case_id in wanted if case_id not in items]
    if missing:
        log.warning("%d case(s) of split %r are missing or unusable now: %s", len(missing), split, ", ".join(missing))
    return {case_id: items[case_id] for case_id in wanted if case_id in items}


def score_mip_cases(predictor: MipPredictor, cfg: DictConfig, root: Path, wanted, output: Path) -> list[dict]:
    """2-D scores of every case's cached MIP; writes ``report.html`` with the worst and best cases.

    The cases are prepared (validated, projected, cached) first, then read back from the cache one
    at a time: memory does not grow with the number of cases. So are the few shown in the report,
    predicted again once the scores say which they are.
    """
    data = cfg.data
    cache_base = Path(data.cache_dir) if data.get("cache_dir") else dataset_cache_dir(root, data.cache_root)
    representation = MipRepresentation(predictor.preprocessing.extra_projections)
    cache = cache_base / representation.cache_folder
    prepared = prepare_dataset(
        root, cache, representation, on_bad_case=data.on_bad_case, workers=data.get("preprocess_workers"),
        affine_tolerance=data.affine_tolerance, keep_items=False,
    )
    _write_data_report(output, root, prepared.skipped, prepared.warnings)
    records = _keep_wanted(prepared.records, wanted, cfg.split)
    rows = []
    for case_id, record in tqdm(records.items(), desc="Evaluating", unit="case", leave=False):
        picture, spacing = _mip_picture(predictor, load_item(record, representation, cache), cfg.resolution)
        rows.append(score_case(case_id, picture.prediction, picture.truth, spacing, cfg.both_empty))
    metrics = summarize([asdict(row) for row in rows], SCORES)
    shown = {row.case_id for chosen in pick_cases(rows, cfg.report.n_cases) for row in chosen}
    pictures = {case_id: _mip_picture(predictor, load_item(records[case_id], representation, cache), cfg.resolution)[0]
                for case_id in sorted(shown)}
    context = {"checkpoint": getattr(predictor, "models", cfg.ckpt_path), "cases": _cases_label(cfg), "resolution": cfg.resolution, "both_empty": cfg.both_empty}
    write_report(output / "report.html", rows, pictures, metrics, context, predictor.preprocessing.hu_window, cfg.report.n_cases, prepared.warnings)
    return [asdict(row) for row in rows]


def _mip_picture(predictor: MipPredictor, projection, resolution: str) -> tuple[CasePicture, tuple[float, float]]:
    """A case's MIP, truth and prediction on the grid it is scored on, and that grid's pixel size."""
    if projection is None:
        raise ConfigError("the MIP cache changed while evaluating (a case's cached MIP vanished); run again")
    prediction = predictor.predict(projection)
    if resolution == "network":  # the square grid training scores on (truth resized by nearest neighbour)
        hu, truth = fit_to_square(projection.image, projection.mask, prediction.fit)
        return CasePicture(hu[0].numpy(), truth[0].numpy(), prediction.network_mask), (prediction.fit.spacing_mm,) * 2
    return CasePicture(projection.image, projection.mask, prediction.mask), projection.spacing


def score_volume_cases(predictor: VolumePredictor, cfg: DictConfig, root: Path, wanted, output: Path) -> list[dict]:
    """3-D scores of every case on its own voxel grid; a case that fails is a row with its ``error``.
    Writes ``report.html`` with the worst and best volumes as axial slices."""
    discovery = discover_cases(root)
    records: dict[str, CaseRecord] = _keep_wanted({record.case_id: record for record in discovery.cases}, wanted, cfg.split)
    options = dict(cfg.get("volumes") or {})
    rows, warnings, views = [], [], {}
    for case_id, record in tqdm(records.items(), desc="Evaluating volumes", unit="case", leave=False):
        try:
            case = open_case(record, cfg.data.get("affine_tolerance", 1e-3))
            warnings += case.warnings  # DICOM tilt and spacing fixes, binarized masks
            result = predictor.segment(record.image_path, options)
            predicted = np.asanyarray(result.mask.dataobj) != 0
            scores = score_volume(predicted, case.mask, case.image.affine)
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.error("failed %s: %s", case_id, line)
            rows.append({"case_id": case_id, "error": line})
            continue
        rows.append({"case_id": case_id, **scores, "warnings": "; ".join(result.warnings)})
        views[case_id] = axial_views(case.image, case.mask, predicted)
        views = _views_the_report_may_show(views, rows, cfg.report.n_cases)  # memory stays flat over any number of cases
    _write_data_report(output, root, dict(discovery.problems), warnings)
    context = {"checkpoint": cfg.ckpt_path, "cases": _cases_label(cfg), "scored": "3-D, on each volume's own grid"}
    window = predictor.preprocessing.hu_window
    write_volume_report(output / "report.html", rows, views, summarize(rows, VOLUME_SCORES), context, cfg.report.n_cases, window, warnings)
    return rows


def _views_the_report_may_show(views: dict, rows: list[dict], count: int) -> dict:
    """Only the views of cases that can still be among the report's worst, farthest or best: the
    ``count`` lowest Dice, the ``count`` highest HD95 and the ``2 * count`` highest Dice so far (a
    case outside these now can only fall further out as more cases come)."""
    scored = [row for row in rows if row["case_id"] in views and row.get("dice") is not None]
    by_dice = sorted(scored, key=lambda row: (row["dice"], row["case_id"]))
    by_distance = sorted(scored, key=lambda row: -row["hd95_mm"] if _is_finite(row.get("hd95_mm")) else 0.0)
    keep = {row["case_id"] for row in by_dice[:count] + by_dice[-2 * count :] + by_distance[:count]}
    return {case_id: view for case_id, view in views.items() if case_id in keep}


def _is_finite(value) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.ckpt_path`` (a checkpoint, ``pretrained:<name>``, or an ensemble: a list, a run or
    multirun folder) case by case; write ``per_case.csv``, ``metrics.json``, ``report.html`` and
    ``data_report.json`` (the files left out, with their reasons, and what reading them had to
    fix). An ensemble's rows name the models that voted."""
    check_evaluate_config(cfg)
    checkpoints = resolve_checkpoints(cfg.ckpt_path)
    predictor = configured_predictor(cfg, checkpoints)
    root, wanted = evaluation_dataset(cfg, checkpoints)
    output = Path(cfg.paths.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    if isinstance(predictor, VolumePredictor):
        rows, scores = score_volume_cases(predictor, cfg, root, wanted, output), VOLUME_SCORES
        columns = ("case_id", *VOLUME_SCORES, "warnings", "error")
    else:
        rows, scores = score_mip_cases(predictor, cfg, root, wanted, output), SCORES
        columns = tuple(field.name for field in fields(CaseScores))
    if not rows:
        raise ConfigError("no cases to evaluate")
    if hasattr(predictor, "models"):  # an ensemble: who voted
        rows, columns = [{**row, "models": predictor.models} for row in rows], (*columns, "models")
    write_per_case(rows, output / "per_case.csv", columns)
    metrics = summarize(rows, scores)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    shown = [f"{name} {metrics[name]:.4f}" for name in ("dice/mean", "iou/mean", "hd95_mm/mean", "volume_difference_ml/mean") if name in metrics]
    failed = f", {metrics['cases_failed']} failed" if metrics["cases_failed"] else ""
    print(f"{len(rows)} case(s){failed}: {', '.join(shown)}; per_case.csv, metrics.json in {output}")
    if metrics["cases_failed"] and cfg.data.get("on_bad_case") == "fail":
        raise BadCaseError(root, f"{metrics['cases_failed']} case(s) failed under data.on_bad_case=fail (see per_case.csv)")
    return metrics


def evaluate_run_split(checkpoint: str | Path, data: DictConfig, output: str | Path, split: str = "test", device: str = "cpu") -> dict[str, float]:
    """Score a training run's checkpoint on a split of that run (``split.json`` next to
    ``checkpoints/``), with :func:`evaluate`'s defaults: per-case scores at the network's
    resolution (MIPs) or in 3-D on each volume's grid (slices), into ``output``.

    Args:
        data: the training run's ``data`` config (the cache and the bad-case policy are reused).
    """
    cfg = OmegaConf.create({
        "ckpt_path": str(checkpoint), "split": split, "resolution": "network", "both_empty": "exclude",
        "threshold": None, "device": device, "report": {"n_cases": 4}, "volumes": {},
        "paths": {"output_dir": str(output)},
        "data": {
            "root": None, "cache_dir": data.get("cache_dir"), "cache_root": data.get("cache_root", "data/cache"),
            "on_bad_case": data.get("on_bad_case", "skip"), "affine_tolerance": data.get("affine_tolerance", 1e-3),
            "preprocess_workers": data.get("preprocess_workers"),
        },
    })
    return evaluate(cfg)


def _cases_label(cfg: DictConfig) -> str:
    return f"data.root={cfg.data.root}" if cfg.data.get("root") else f"split={cfg.split}"


def _write_data_report(output: Path, root: Path, skipped: dict, warnings: list) -> None:
    report = {"dataset": str(Path(root).resolve()), "dataset_given": str(root), "skipped": skipped, "warnings": warnings}
    (output / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
