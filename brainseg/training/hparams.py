"""Hyperparameters in TensorBoard's HParams tab, with the metric columns filled.

Lightning's own ``log_hyperparams`` declares no metrics (or writes placeholder scalars), so the
HParams table shows empty metric columns. Here the experiment summary declares the metric
names up front and writes no values: TensorBoard fills each column from the run's own scalars
of that name (``val/dice``, ``test/dice``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.tensorboard.summary import hparams

from brainseg.training.config import in_multirun

# Columns of TensorBoard's HParams table, and the minimum content of metrics.json. Each must be
# a scalar tag in the run's events: a loss logged on step and epoch is only there as `<name>_epoch`.
REPORTED_METRICS = (
    "train/loss_epoch",
    "val/loss",
    "val/dice",
    "val/iou",
    "test/loss",
    "test/dice",
    "test/iou",
    "test/dice_baseline",
)

# Top-level config sections worth a column; the rest (paths, callbacks, hydra) are not hyperparameters.
HPARAM_SECTIONS = ("data", "model", "loss", "optimizer", "scheduler", "trainer", "seed")


def flatten_hparams(cfg: DictConfig, choices: dict | None = None) -> dict[str, float | int | str | bool]:
    """Dotted keys -> scalars (lists become strings), plus the chosen group options."""
    container = OmegaConf.to_container(cfg, resolve=True)
    flat: dict = {}

    def visit(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                if not str(key).startswith("_"):
                    visit(f"{prefix}.{key}" if prefix else str(key), child)
            if "_target_" in value:
                flat[prefix] = value["_target_"].rsplit(".", 1)[-1]
        elif isinstance(value, (bool, int, float, str)):
            flat[prefix] = value
        elif value is not None:
            flat[prefix] = str(value)

    for section in HPARAM_SECTIONS:
        if section in container:
            visit(section, container[section])
    for group, option in (choices or {}).items():
        if group in HPARAM_SECTIONS and option is not None:
            flat[f"{group}/choice"] = str(option)
    return flat


def _group_choices() -> dict:
    try:
        from hydra.core.hydra_config import HydraConfig

        return dict(HydraConfig.get().runtime.choices)
    except ValueError:  # not running under @hydra.main (e.g. tests composing the config)
        return {}


def log_hparams(trainer: pl.Trainer, cfg: DictConfig, metric_names: Iterable[str]) -> None:
    """Write the run's hyperparameters and declare ``metric_names`` as HParams columns."""
    params = flatten_hparams(cfg, _group_choices())
    experiment, session_start, session_end = hparams(params, {name: 0.0 for name in metric_names})
    # TensorBoard takes the columns of ONE experiment summary in its logdir. In a sweep, jobs may have
    # different keys (loss=focal has loss.gamma), so the sweep folder holds one summary of all jobs
    # (brainseg.training.sweeps) and each job writes only its session.
    summaries = (session_start, session_end) if in_multirun() else (experiment, session_start, session_end)
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            writer = logger.experiment._get_file_writer()
            if writer is None:  # not rank 0 under DDP: rank 0 alone writes events
                continue
            for summary in summaries:
                writer.add_summary(summary)
        else:
            logger.log_hyperparams(params)
