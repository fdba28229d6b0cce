"""Callbacks: the validation image panel in TensorBoard (and as a PNG in the run folder), the step
checkpoints that a run killed mid-epoch resumes from, and a learning-rate log that survives the resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from brainseg.visualization import error_map, grid, overlay, save_png


class ValidationPanel(pl.Callback):
    """After each validation epoch, draw input | truth | prediction | errors for a few fixed cases.

    Args:
        num_cases: how many validation cases (always the same ones). Defaults to 4.
        every_n_epochs: draw every n-th validation epoch. Defaults to 1.
        filename: PNG written into the run folder (overwritten each time); ``None`` for none.
    """

    def __init__(self, num_cases: int = 4, every_n_epochs: int = 1, filename: str | None = "val_panel.png"):
        self.num_cases = num_cases
        self.every_n_epochs = every_n_epochs
        self.filename = filename

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or trainer.current_epoch % self.every_n_epochs:
            return
        cases = getattr(trainer.datamodule, "cases", {}).get("val", [])[: self.num_cases]
        if not cases:
            return
        panel = self.render(pl_module, cases)
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_image("val/panel", panel, trainer.global_step, dataformats="HWC")
        if self.filename:
            save_png(panel, Path(trainer.default_root_dir) / self.filename)

    @staticmethod
    @torch.no_grad()
    def render(pl_module: pl.LightningModule, cases) -> np.ndarray:
        images = torch.stack([case.image for case in cases]).to(pl_module.device)
        predictions = pl_module.predict_mask(pl_module(images)).cpu().numpy()
        rows = []
        for case, prediction in zip(cases, predictions):
            hu, truth = case.hu[0].numpy(), case.mask[0].numpy()
            rows.append(
                [
                    overlay(hu),
                    overlay(hu, [truth]),
                    overlay(hu, [truth, prediction]),
                    error_map(truth, prediction, hu),
                ]
            )
        return grid(rows)


class StepCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that saves every ``every_n_train_steps`` steps, except after an epoch's last batch.

    A checkpoint taken after the last batch, before that epoch's validation, resumes as an epoch
    already over: Lightning (2.6) skips its validation, so the last epoch ends without ``val/*``
    and its checkpoint, and the test runs on an older best. The end of an epoch is saved after
    validation by ``callbacks.model_checkpoint`` instead; a run killed during validation resumes
    from the step checkpoint before it and repeats the steps since. Nor does it save again when
    training ends if last.ckpt was just written at that step.

    Takes every argument of ``ModelCheckpoint``.
    """

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch, batch_idx: int) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # ModelCheckpoint saves last.ckpt once more at the end when this process has not saved one
        # (a resumed run whose remaining steps held no save). If another callback has written it at
        # this step, a second save, after the loop has ended, would record the run as one epoch
        # further on than the uninterrupted run's last.ckpt does.
        if any(other is not self and other.save_last and other._last_global_step_saved == trainer.global_step
               for other in trainer.checkpoint_callbacks if isinstance(other, ModelCheckpoint)):
            return
        super().on_train_end(trainer, pl_module)


class ResumingLearningRateMonitor(LearningRateMonitor):
    """``LearningRateMonitor`` that also logs the epoch's learning rate when a run resumes mid-epoch.

    With ``logging_interval: epoch`` the rate is logged as each epoch starts; a run resumed in the
    middle of an epoch does not start it again, and would end without its last ``lr-*`` value.

    Takes every argument of ``LearningRateMonitor``.
    """

    def on_train_start(self, trainer: pl.Trainer, *args, **kwargs) -> None:
        super().on_train_start(trainer, *args, **kwargs)
        if trainer.fit_loop.restarted_mid_epoch:
            self.on_train_epoch_start(trainer, *args, **kwargs)
