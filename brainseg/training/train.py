"""Training: compose the objects a config names, fit, test the best checkpoint, write metrics.json.

No logic of its own beyond wiring; each concept lives in its own module.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig

from brainseg.evaluation.cross_validation import TEST_CASES_FOLDER
from brainseg.evaluation.evaluate import evaluate_run_split
from brainseg.training.config import check_config, instantiate_keyed, resolve_checkpoint
from brainseg.training.distributed import config_digest, ddp_runs_this_job
from brainseg.training.hparams import REPORTED_METRICS, log_hparams

log = logging.getLogger(__name__)


def build(cfg: DictConfig) -> tuple[pl.LightningDataModule, pl.LightningModule, pl.Trainer]:
    """The datamodule, model and trainer a config describes (nothing runs yet)."""
    check_config(cfg)
    if cfg.get("seed") is not None:
        pl.seed_everything(cfg.seed, workers=True)
    datamodule = instantiate(cfg.data)
    model = instantiate(
        cfg.model,
        loss=instantiate(cfg.loss),
        optimizer=instantiate(cfg.optimizer),
        scheduler=instantiate(cfg.scheduler, _convert_="all"),
    )
    trainer = instantiate(cfg.trainer, callbacks=instantiate_keyed(cfg.get("callbacks")), logger=instantiate_keyed(cfg.get("logger")) or False)
    return datamodule, model, trainer


def scores_test_cases(cfg: DictConfig) -> bool:
    """``test_per_case``: true, false, or ``auto`` (in k-fold runs, whose cross-validation summary needs them)."""
    wanted = cfg.get("test_per_case", "auto")
    return cfg.data.get("num_folds") is not None if wanted == "auto" else bool(wanted)


def score_test_cases(cfg: DictConfig, best: str, device: str) -> dict[str, float]:
    """Score the best checkpoint case by case on the test split into ``<run>/test/`` (``per_case.csv``,
    ``metrics.json``); the means as ``test_cases/<score>``."""
    output = Path(cfg.paths.output_dir) / TEST_CASES_FOLDER
    scores = evaluate_run_split(best, cfg.data, output, "test", "cuda" if device == "cuda" else "cpu")
    return {f"test_cases/{name}": scores[f"{name}/mean"] for name in ("dice", "iou", "hd95_mm") if f"{name}/mean" in scores}


def train(cfg: DictConfig) -> dict[str, float]:
    """Train, test the best checkpoint, write ``metrics.json`` in the run folder, return the metrics."""
    log.info("config digest %s", config_digest(cfg))  # logged by every DDP process: they must agree
    with ddp_runs_this_job():  # in a sweep, DDP's extra processes rerun this job, not the sweep
        return _fit_and_test(cfg)


def _fit_and_test(cfg: DictConfig) -> dict[str, float]:
    datamodule, model, trainer = build(cfg)
    log_hparams(trainer, cfg, REPORTED_METRICS)
    # weights_only: explicit, so that no environment variable (TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD) can turn it off
    checkpoint = resolve_checkpoint(cfg.get("ckpt_path"), cfg.paths.output_dir)
    trainer.fit(model, datamodule=datamodule, ckpt_path=checkpoint, weights_only=True)
    metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}

    if cfg.get("test") and not trainer.fast_dev_run:
        best = trainer.checkpoint_callback.best_model_path if trainer.checkpoint_callback else ""
        if not best:
            log.warning("no best checkpoint was saved; testing the current weights")
        trainer.test(model, datamodule=datamodule, ckpt_path=best or None, weights_only=True)
        metrics.update({name: float(value) for name, value in trainer.callback_metrics.items()})
        baseline = datamodule.baseline_scores()  # a classical baseline, where the representation has one
        metrics.update(baseline)
        for logger in trainer.loggers:
            logger.log_metrics(baseline, step=trainer.global_step)
        metrics["best_checkpoint"] = best
        if best and trainer.is_global_zero and scores_test_cases(cfg):
            metrics.update(score_test_cases(cfg, best, trainer.strategy.root_device.type))

    if trainer.is_global_zero:
        output = Path(cfg.paths.output_dir) / "metrics.json"
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(dict(sorted(metrics.items())), indent=2) + "\n")
        log.info("metrics: %s", {k: v for k, v in metrics.items() if k in REPORTED_METRICS})
    for logger in trainer.loggers:
        logger.finalize("success")
    return metrics
