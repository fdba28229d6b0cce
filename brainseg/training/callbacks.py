"""Callbacks: the validation image panel in TensorBoard (and as a PNG in the run folder)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
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
