"""The summary of a k-fold cross-validation: per-fold test scores and the pooled per-case table.

Each fold's run folder holds ``split.json`` (naming its fold) and ``test/per_case.csv`` (its best
checkpoint scored case by case on its test fold, written at the end of training). The test folds
partition the dataset, so pooling the tables scores every case exactly once, by the one model
that did not train on it. :func:`write_cv_summary` writes into a folder (the multirun folder):

* ``cv_summary.json``: per fold its test Dice, IoU and HD95 (means over its cases); pooled over
  every case the mean, std and a seeded bootstrap 95% CI of the mean; the mean and std of the
  fold means; which folds are done, and whether their test sets partition the dataset;
* ``cv_summary.md``: the same as tables;
* ``per_case.csv``: the pooled table, with the fold whose model scored each case, so that
  ``scripts/compare.py`` compares two cross-validations case by case.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from brainseg.evaluation.statistics import N_RESAMPLES, describe
from brainseg.evaluation.summary import write_per_case

CV_SCORES = ("dice", "iou", "hd95_mm")
TEST_CASES_FOLDER = "test"  # <run>/test/: a training run's per-case test scores (per_case.csv, metrics.json)
SPLITS = ("train", "val", "test")


@dataclass
class FoldResult:
    """One finished fold: its number, run folder, cases and per-case test rows."""

    fold: int
    num_folds: int
    run_dir: Path
    cases: list[str]  # every case the fold's split held (train + val + test)
    test: list[str]
    rows: list[dict]  # per_case.csv rows, numbers parsed


def read_fold(run_dir: str | Path) -> FoldResult | None:
    """The fold a run folder holds, or ``None`` if it is not a finished fold run (no fold in
    ``split.json``, or no ``test/per_case.csv`` yet)."""
    run_dir = Path(run_dir)
    split_file, table = run_dir / "split.json", run_dir / TEST_CASES_FOLDER / "per_case.csv"
    if not split_file.is_file() or not table.is_file():
        return None
    split = json.loads(split_file.read_text())
    if split.get("num_folds") is None:
        return None
    with open(table, newline="") as stream:
        rows = [{key: _parse(key, value) for key, value in row.items()} for row in csv.DictReader(stream)]
    cases = sorted(case_id for name in SPLITS for case_id in split.get(name, []))
    return FoldResult(int(split["fold"]), int(split["num_folds"]), run_dir, cases, sorted(split["test"]), rows)


def _parse(key: str, value: str):
    if key in ("case_id", "note", "warnings", "error") or value in ("", None):
        return value if value != "" else None
    try:
        return float(value)
    except ValueError:
        return value


def _scores(rows: list[dict], name: str) -> np.ndarray:
    values = [row.get(name) for row in rows]
    return np.array([v for v in values if isinstance(v, float) and math.isfinite(v)], float)


def summarize_folds(folds: list[FoldResult], seed: int = 0) -> tuple[dict, list[dict]]:
    """The cross-validation summary and the pooled per-case rows (each with its ``fold``)."""
    folds = sorted(folds, key=lambda result: result.fold)
    num_folds = max(result.num_folds for result in folds)
    done = [result.fold for result in folds]
    pooled = [{"fold": result.fold, **row} for result in folds for row in result.rows]
    tested = [case_id for result in folds for case_id in result.test]
    every_case = sorted({case_id for result in folds for case_id in result.cases})
    summary: dict = {
        "num_folds": num_folds,
        "folds_done": done,
        "folds_missing": sorted(set(range(num_folds)) - set(done)),
        # the promise of k-fold: complete, disjoint test folds covering every case of one dataset
        "partition": len(done) == num_folds == len(set(done)) and sorted(tested) == every_case
        and all(result.cases == every_case for result in folds),
        "cases": len(pooled),
        "bootstrap": {"resamples": N_RESAMPLES, "confidence": 0.95, "seed": seed},
        "folds": [],
        "pooled": {},
        "across_folds": {},
    }
    for result in folds:
        entry = {"fold": result.fold, "run_dir": str(result.run_dir), "cases": len(result.rows)}
        for name in CV_SCORES:
            values = _scores(result.rows, name)
            entry[name] = float(values.mean()) if values.size else None
        summary["folds"].append(entry)
    for name in CV_SCORES:
        values = _scores(pooled, name)
        if values.size:
            summary["pooled"][name] = describe(values, seed=seed)
        means = np.array([entry[name] for entry in summary["folds"] if entry[name] is not None], float)
        if means.size:
            summary["across_folds"][name] = {"mean": float(means.mean()), "std": float(means.std())}
    return summary, pooled


def write_cv_summary(folder: str | Path, folds: list[FoldResult], seed: int = 0) -> dict:
    """Write ``cv_summary.json``, ``cv_summary.md`` and the pooled ``per_case.csv`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    summary, pooled = summarize_folds(folds, seed)
    (folder / "cv_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (folder / "cv_summary.md").write_text(cv_markdown(summary))
    columns = ["fold", *dict.fromkeys(key for row in pooled for key in row if key != "fold")]
    write_per_case(sorted(pooled, key=lambda row: row["case_id"]), folder / "per_case.csv", columns)
    return summary


def _cell(statistics: dict | None) -> str:
    if not statistics:
        return "-"
    return f"{statistics['mean']:.4f} ± {statistics['std']:.4f} [{statistics['ci95_low']:.4f}, {statistics['ci95_high']:.4f}]"


def cv_markdown(summary: dict) -> str:
    """``cv_summary.md``: per-fold scores, then the pooled statistics."""
    k, done = summary["num_folds"], summary["folds_done"]
    missing = f"; missing: {', '.join(map(str, summary['folds_missing']))}" if summary["folds_missing"] else ""
    partition = (
        f"yes: {summary['cases']} cases, each scored once by the model that did not train on it"
        if summary["partition"] else "no (folds missing, or folds of different datasets or seeds)"
    )
    lines = [
        f"# Cross-validation: {len(done)} of {k} folds done{missing}", "",
        f"Test folds partition the dataset: {partition}.", "",
        "| fold | cases | Dice | IoU | HD95 (mm) | run |", "| --- | --- | --- | --- | --- | --- |",
    ]
    for entry in summary["folds"]:
        scores = " | ".join("-" if entry[name] is None else f"{entry[name]:.4f}" for name in CV_SCORES)
        lines.append(f"| {entry['fold']} | {entry['cases']} | {scores} | `{entry['run_dir']}` |")
    across = summary["across_folds"]
    lines.append("| mean ± std of folds | | " + " | ".join(
        f"{across[name]['mean']:.4f} ± {across[name]['std']:.4f}" if name in across else "-" for name in CV_SCORES) + " | |")
    lines += [
        "", "Pooled over every case (mean ± std [bootstrap 95% CI of the mean, "
        f"{summary['bootstrap']['resamples']} resamples, seed {summary['bootstrap']['seed']}]):", "",
        "| score | cases | mean ± std [95% CI] |", "| --- | --- | --- |",
    ]
    lines += [f"| {name} | {stats['n']} | {_cell(stats)} |" for name, stats in summary["pooled"].items()]
    return "\n".join(lines) + "\n"
