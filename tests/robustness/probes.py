"""A test instrument that runs inside ``python train.py`` (added with ``+callbacks.probe=...``)."""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


class TrainingStateProbe(pl.Callback):
    """Records the training state when fitting starts (after a checkpoint is restored) and ends,
    and can stop at a training step as a crash would: it writes ``<record>.hung`` and waits to be killed.

    Args:
        record: a ``.pt`` file for ``{"start": state, "end": state}``; a state holds the epoch and
            step counters, the batches run by this process, the weights, the optimizer's and the
            schedulers' state dicts.
        hang_at_step: global step after which to wait; ``None`` never waits.
    """

    def __init__(self, record: str, hang_at_step: int | None = None):
        self.record = Path(record)
        self.hang_at_step = hang_at_step
        self.states: dict[str, dict] = {}
        self.batches_run = 0

    def _state(self, trainer: pl.Trainer, module: pl.LightningModule) -> dict:
        state = {
            "epoch": trainer.current_epoch,
            "global_step": trainer.global_step,
            "batches_run": self.batches_run,
            "weights": module.state_dict(),
            "optimizer": trainer.optimizers[0].state_dict(),
            "schedulers": [config.scheduler.state_dict() for config in trainer.lr_scheduler_configs],
        }
        return copy.deepcopy(state)  # state dicts hold the live tensors, which training goes on changing

    def _save(self) -> None:
        torch.save(self.states, self.record)

    def on_train_start(self, trainer, pl_module) -> None:
        self.states["start"] = self._state(trainer, pl_module)
        self._save()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.batches_run += 1
        if trainer.global_step == self.hang_at_step:
            Path(f"{self.record}.hung").touch()
            time.sleep(600)  # the test kills the process with SIGKILL now

    def on_train_end(self, trainer, pl_module) -> None:
        self.states["end"] = self._state(trainer, pl_module)
        self._save()
