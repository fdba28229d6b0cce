"""Sweep bookkeeping: ``sweep_summary.csv`` in every multirun folder, and one HParams table.

:class:`SweepSummary` is a Hydra callback (registered in ``conf/hydra/default.yaml``). When a job
starts and when it ends, ok or failed, it rewrites ``<sweep dir>/sweep_summary.csv``: one row per
job with its number, status, a column per swept override, final metrics (from the job's
``metrics.json``, or ``preprocess_summary.json`` for preprocessing), all overrides, run folder,
duration and, for a failed job, the error. A job that started and never ended (killed, out of memory, over its SLURM time) stays
``running``. Each job keeps its row in ``<sweep dir>/.sweep_rows/<job>.json`` and the CSV is rebuilt
from those under a file lock, so jobs running at once (submitit) never lose each other's rows.

Failures: a job that raises is recorded ``failed`` and the sweep goes on. Hydra's basic sweeper
runs every job, then re-raises the first failure (the command exits with status 1); the Optuna
sweeper marks the trial failed and goes on while the failed fraction stays within its
``max_failure_rate``, then writes ``optimization_results.yaml`` (best parameters and value).

TensorBoard shows the hyperparameter columns of ONE experiment summary per logdir. In a sweep each
job writes only its session (:mod:`brainseg.training.hparams`), and this callback writes one summary with the
keys of every job so far into ``<sweep dir>/hparams_table/``: ``tensorboard --logdir <sweep dir>``
then shows every job in one table, with the metric columns filled from each job's scalars.

Cross-validation (``data.num_folds``): each time a fold job ends, the folds done so far are
summarized (:mod:`brainseg.evaluation.cross_validation`) into ``cv_summary.json``, ``cv_summary.md``
and the pooled ``per_case.csv`` of the sweep folder; jobs that differ in more than their fold
(``loss=dice,focal data.fold=0,1,2``) get one such summary each, in ``cv_<setting>/``. The pooled
scores are also a row of the HParams table (``cv/dice``, ``cv/iou``, ``cv/hd95_mm`` and the
Dice CI), written as its own session in ``<summary folder>/cv_tensorboard/``.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

SUMMARY_NAME = "sweep_summary.csv"
ROWS_DIR = ".sweep_rows"
HPARAMS_DIR = "hparams_table"
METRICS_FILES = ("metrics.json", "preprocess_summary.json")  # the first found in a job's folder
CV_SESSION_DIR = "cv_tensorboard"
CV_METRICS = ("cv/dice", "cv/iou", "cv/hd95_mm", "cv/dice_ci95_low", "cv/dice_ci95_high")
LEADING_COLUMNS = ("job", "status", "overrides")
TRAILING_COLUMNS = ("run_dir", "seconds", "error")


def _global_rank() -> int:
    """This process's rank where a launcher says (SLURM tasks, torchrun); 0 otherwise."""
    return int(os.environ.get("RANK") or os.environ.get("SLURM_PROCID") or 0)


def read_job_metrics(run_dir: Path) -> dict[str, Any]:
    """Scalars of the job's metrics file; a list or dict becomes its length (e.g. skipped cases)."""
    for name in METRICS_FILES:
        path = Path(run_dir) / name
        if path.is_file():
            content = json.loads(path.read_text())
            return {key: len(value) if isinstance(value, (list, dict)) else value for key, value in content.items()}
    return {}


def one_line(error: BaseException) -> str:
    """``Type: message`` on one line, for a CSV cell."""
    return f"{type(error).__name__}: {error}".replace("\r", " ").replace("\n", " | ")


def _split_overrides(overrides: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in overrides if "=" in item)


def summary_table(rows: list[dict]) -> str:
    """CSV text: job and status, a column per override that differs between jobs, every metric
    seen in any row (sorted), then the full overrides (to rerun a job), run folder, time and error."""
    rows = sorted(rows, key=lambda row: row["job"])
    settings = [_split_overrides(row.get("overrides", [])) for row in rows]
    keys = list(dict.fromkeys(key for setting in settings for key in setting))
    varying = [key for key in keys if len({setting.get(key) for setting in settings}) > 1]
    fixed = set(LEADING_COLUMNS) | set(TRAILING_COLUMNS) | set(varying)
    metrics = sorted({key for row in rows for key in row.get("metrics", {})} - fixed)
    columns = [*LEADING_COLUMNS[:2], *varying, *metrics, *LEADING_COLUMNS[2:], *TRAILING_COLUMNS]
    stream = io.StringIO()
    writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row, setting in zip(rows, settings):
        cells = {**row.get("metrics", {}), **{key: setting.get(key, "") for key in varying}}
        cells.update({key: row.get(key, "") for key in (*LEADING_COLUMNS, *TRAILING_COLUMNS)})
        writer.writerow({**cells, "overrides": " ".join(row.get("overrides", []))})
    return stream.getvalue()


def write_hparams_table(folder: Path, rows: list[dict], metric_names: tuple[str, ...]) -> None:
    """One TensorBoard experiment summary declaring every job's hyperparameter keys and the metrics."""
    from torch.utils.tensorboard.summary import hparams
    from torch.utils.tensorboard.writer import FileWriter

    params: dict = {}
    for row in rows:
        for key, value in row.get("hparams", {}).items():
            params.setdefault(key, value)
    if not params:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    writer = FileWriter(str(folder))
    writer.add_summary(hparams(params, {name: 0.0 for name in metric_names})[0])
    writer.close()


def cross_validation_groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Fold jobs grouped by their other overrides: ``{"": rows}`` when only the fold varies, else
    ``{"cv_<varying overrides>": rows}`` per setting (the folder of that setting's summary)."""
    fold_rows = [row for row in rows if row.get("num_folds") is not None]
    settings = {row["job"]: {k: v for k, v in _split_overrides(row.get("overrides", [])).items() if k != "data.fold"} for row in fold_rows}
    keys = list(dict.fromkeys(key for setting in settings.values() for key in setting))
    varying = [key for key in keys if len({setting.get(key) for setting in settings.values()}) > 1]
    groups: dict[str, list[dict]] = {}
    for row in fold_rows:
        label = ",".join(f"{key}={settings[row['job']].get(key, '')}" for key in varying)
        groups.setdefault(f"cv_{label}".replace("/", "_") if label else "", []).append(row)
    return groups


def write_cross_validation(sweep_dir: Path, rows: list[dict]) -> None:
    """Summarize every group of fold jobs, over the folds done so far."""
    from brainseg.evaluation.cross_validation import read_fold, write_cv_summary

    for name, group in cross_validation_groups(rows).items():
        folds = [fold for fold in (read_fold(row["run_dir"]) for row in group) if fold is not None]
        if not folds:
            continue
        folder = sweep_dir / name
        summary = write_cv_summary(folder, folds)
        params = next((dict(row["hparams"]) for row in group if row.get("hparams")), None)
        if params is not None:
            params.pop("data.fold", None)  # the pooled row stands for every fold
            write_cv_session(folder / CV_SESSION_DIR, params, summary["pooled"])


def write_cv_session(folder: Path, params: dict, pooled: dict) -> None:
    """The pooled scores as one TensorBoard HParams session (a row of the sweep's table)."""
    from torch.utils.tensorboard.summary import hparams, scalar
    from torch.utils.tensorboard.writer import FileWriter

    values = {f"cv/{name}": stats["mean"] for name, stats in pooled.items()}
    if "dice" in pooled:
        values.update({"cv/dice_ci95_low": pooled["dice"]["ci95_low"], "cv/dice_ci95_high": pooled["dice"]["ci95_high"]})
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("events.out.tfevents.*"):
        old.unlink()
    _, session_start, session_end = hparams(params, {})
    writer = FileWriter(str(folder))
    writer.add_summary(session_start)
    for name, value in values.items():
        writer.add_summary(scalar(name, value), global_step=0)
    writer.add_summary(session_end)
    writer.close()


def _atomic_write(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


@contextmanager
def _locked(folder: Path):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class SweepSummary(Callback):
    """Hydra callback: keeps ``sweep_summary.csv`` (and the sweep's HParams table) up to date.

    Args:
        filename: name of the CSV in the sweep folder. Defaults to ``sweep_summary.csv``.
    """

    def __init__(self, filename: str = SUMMARY_NAME):
        self.filename = filename

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if self._records(config):
            self._save(config, {**self._identity(config), "status": "running", "started": time.time()})

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if not self._records(config):
            return
        row = {**self._identity(config), **self._read_row(config)}
        row["seconds"] = round(time.time() - row.get("started", time.time()), 1)
        row["metrics"] = read_job_metrics(Path(row["run_dir"]))
        row["status"] = "ok"
        if job_return.status != JobStatus.COMPLETED:
            try:
                job_return.return_value  # re-raises the job's exception
            except Exception as error:  # noqa: BLE001 - any failure is a row, not a crash of the sweep
                row["status"], row["error"] = "failed", one_line(error)
        if self._uses_tensorboard(config):
            from brainseg.training.hparams import (
                flatten_hparams,  # Lightning: only where TensorBoard logs
            )

            try:
                row["hparams"] = flatten_hparams(config, dict(config.hydra.runtime.choices))
            except Exception as error:  # noqa: BLE001 - e.g. an unresolvable value: the row still counts
                log.warning("no HParams columns for job %s: %s", row["job"], one_line(error))
        self._save(config, row)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        if (sweep_dir / self.filename).is_file():
            log.info("sweep summary: %s", sweep_dir / self.filename)
        for summary in sorted([*sweep_dir.glob("cv_summary.md"), *sweep_dir.glob("cv_*/cv_summary.md")]):
            log.info("cross-validation summary: %s", summary)
        results = sweep_dir / "optimization_results.yaml"
        if results.is_file():
            best = OmegaConf.load(results)
            log.info("best value %s with %s (%s)", best.get("best_value"), dict(best.get("best_params", {})), results)

    # ---- helpers -----------------------------------------------------------------------------
    @staticmethod
    def _records(config: DictConfig) -> bool:
        """Multirun jobs only, and only their global rank 0 (every SLURM task runs the job)."""
        return config.hydra.mode == RunMode.MULTIRUN and _global_rank() == 0

    @staticmethod
    def _identity(config: DictConfig) -> dict:
        return {
            "job": int(config.hydra.job.num),
            "overrides": list(config.hydra.overrides.task),
            "run_dir": str(config.hydra.runtime.output_dir),
            "num_folds": OmegaConf.select(config, "data.num_folds", default=None),  # a fold of a cross-validation
        }

    @staticmethod
    def _uses_tensorboard(config: DictConfig) -> bool:
        loggers = config.get("logger") or {}
        return any(entry and str(entry.get("_target_", "")).endswith("TensorBoardLogger") for entry in loggers.values())

    def _read_row(self, config: DictConfig) -> dict:
        path = Path(config.hydra.sweep.dir) / ROWS_DIR / f"{int(config.hydra.job.num)}.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def _save(self, config: DictConfig, row: dict) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        rows_dir = sweep_dir / ROWS_DIR
        with _locked(rows_dir):
            _atomic_write(rows_dir / f"{row['job']}.json", json.dumps(row, default=str))
            rows = [json.loads(path.read_text()) for path in rows_dir.glob("*.json")]
            _atomic_write(sweep_dir / self.filename, summary_table(rows))
            if row.get("status") != "running":
                write_cross_validation(sweep_dir, rows)
            if any("hparams" in stored for stored in rows):
                from brainseg.training.hparams import REPORTED_METRICS

                cross_validation = any(stored.get("num_folds") is not None for stored in rows)
                write_hparams_table(sweep_dir / HPARAMS_DIR, rows, REPORTED_METRICS + (CV_METRICS if cross_validation else ()))
