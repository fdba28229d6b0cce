"""The evaluation of a checkpoint on a dataset, case by case, in the checkpoint's own terms.

A MIP checkpoint is scored in 2-D on the cached MIPs (the grid training scores on, or the MIP's
own), with a visual ``report.html``; a slice checkpoint is scored in 3-D on each volume's own
voxel grid. Both write ``per_case.csv``, ``metrics.json`` (:func:`~brainseg.evaluation.summary.summarize`)
and ``data_report.json`` into the run folder. The cases are ``data.root`` whole, or a split of
the checkpoint's training run.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
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
from brainseg.inference.mip import MipPredictor
from brainseg.inference.predict import load_predictor
from brainseg.inference.volume import VolumePredictor

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


def evaluation_dataset(cfg: DictConfig) -> tuple[Path, list[str] | None]:
    """The dataset folder to score and the case IDs wanted (``None`` = every case): ``data.root``,
    or the split of the checkpoint's training run (``split.json`` and ``data_report.json``
    next to ``checkpoints/``).

    Raises:
        ConfigError: no ``data.root`` and no training run folder around the checkpoint.
    """
    if cfg.data.get("root") is not None:
        return Path(cfg.data.root), None
    run = Path(cfg.ckpt_path).resolve().parent.parent
    split_file, report_file = run / "split.json", run / "data_report.json"
    if not split_file.is_file() or not report_file.is_file():
        raise ConfigError(f"{run} holds no split.json/data_report.json of a training run; give data.root=DIR to score a whole dataset")
    root = Path(json.loads(report_file.read_text())["dataset"])
    if not root.is_dir():
        raise ConfigError(f"the training run's dataset {root} is not here (run from where training ran, or give data.root=DIR)")
    splits = json.loads(split_file.read_text())
    wanted = sorted(sum(splits.values(), [])) if cfg.split == "all" else splits[cfg.split]
    return root, wanted


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
    representation = MipRepresentation()
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
    context = {"checkpoint": cfg.ckpt_path, "cases": _cases_label(cfg), "resolution": cfg.resolution, "both_empty": cfg.both_empty}
    write_report(output / "report.html", rows, pictures, metrics, context, predictor.preprocessing.hu_window, cfg.report.n_cases)
    return [asdict(row) for row in rows]


def _mip_picture(predictor: MipPredictor, projection, resolution: str) -> tuple[CasePicture, tuple[float, float]]:
    """A case's MIP, truth and prediction on the grid it is scored on, and that grid's pixel size."""
    if projection is None:
        raise ConfigError("the MIP cache changed while evaluating (a case's cached MIP vanished); run again")
    prediction = predictor.predict(projection.image, projection.spacing)
    if resolution == "network":  # the square grid training scores on (truth resized by nearest neighbour)
        hu, truth = fit_to_square(projection.image, projection.mask, prediction.fit)
        return CasePicture(hu[0].numpy(), truth[0].numpy(), prediction.network_mask), (prediction.fit.spacing_mm,) * 2
    return CasePicture(projection.image, projection.mask, prediction.mask), projection.spacing


def score_volume_cases(predictor: VolumePredictor, cfg: DictConfig, root: Path, wanted, output: Path) -> list[dict]:
    """3-D scores of every case on its own voxel grid; a case that fails is a row with its ``error``."""
    discovery = discover_cases(root)
    _write_data_report(output, root, dict(discovery.problems), [])
    records: dict[str, CaseRecord] = _keep_wanted({record.case_id: record for record in discovery.cases}, wanted, cfg.split)
    options = dict(cfg.get("volumes") or {})
    rows = []
    for case_id, record in tqdm(records.items(), desc="Evaluating volumes", unit="case", leave=False):
        try:
            case = open_case(record, cfg.data.get("affine_tolerance", 1e-3))
            result = predictor.segment(record.image_path, options)
            scores = score_volume(np.asanyarray(result.mask.dataobj) != 0, case.mask, case.image.affine)
        except (BadCaseError, OSError, ValueError, MemoryError) as error:
            line = str(error).splitlines()[0] if str(error) else type(error).__name__
            log.error("failed %s: %s", case_id, line)
            rows.append({"case_id": case_id, "error": line})
            continue
        rows.append({"case_id": case_id, **scores, "warnings": "; ".join(result.warnings)})
    return rows


def evaluate(cfg: DictConfig) -> dict[str, float]:
    """Score ``cfg.ckpt_path`` case by case; write ``per_case.csv``, ``metrics.json`` and
    ``data_report.json`` (the files left out, with their reasons), plus ``report.html`` for MIPs."""
    check_evaluate_config(cfg)
    predictor = load_predictor(cfg.ckpt_path, cfg.get("device", "cpu"), cfg.get("threshold"))
    root, wanted = evaluation_dataset(cfg)
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
    write_per_case(rows, output / "per_case.csv", columns)
    metrics = summarize(rows, scores)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    shown = [f"{name} {metrics[name]:.4f}" for name in ("dice/mean", "iou/mean", "hd95_mm/mean", "volume_difference_ml/mean") if name in metrics]
    failed = f", {metrics['cases_failed']} failed" if metrics["cases_failed"] else ""
    print(f"{len(rows)} case(s){failed}: {', '.join(shown)}; per_case.csv, metrics.json in {output}")
    if metrics["cases_failed"] and cfg.data.get("on_bad_case") == "fail":
        raise BadCaseError(root, f"{metrics['cases_failed']} case(s) failed under data.on_bad_case=fail (see per_case.csv)")
    return metrics


def _cases_label(cfg: DictConfig) -> str:
    return f"data.root={cfg.data.root}" if cfg.data.get("root") else f"split={cfg.split}"


def _write_data_report(output: Path, root: Path, skipped: dict, warnings: list) -> None:
    report = {"dataset": str(root), "skipped": skipped, "warnings": warnings}
    (output / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")
