"""A test instrument inside ``python train.py`` (``+callbacks.kill=...``): SIGKILL at a chosen point.

The process kills itself, as the machine or a scheduler would: no handler runs, nothing is
cleaned up. Points (at most one is set):

* ``after_step=k``: when training step ``k`` is done (its batch, backward and optimizer step);
* ``in_validation=e``: in the middle of epoch ``e``'s validation (after its first batch);
* ``in_save_at_step=k``: while the checkpoint saved after step ``k`` is being written. A 64 MiB
  block is added to that checkpoint so that writing it takes a while, and a thread kills the
  process as soon as a new file in the checkpoint folder has data in it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


class KillPoint(pl.Callback):
    def __init__(self, after_step: int | None = None, in_validation: int | None = None, in_save_at_step: int | None = None):
        self.after_step = after_step
        self.in_validation = in_validation
        self.in_save_at_step = in_save_at_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.after_step:
            die()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if not trainer.sanity_checking and trainer.current_epoch == self.in_validation:
            die()

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if trainer.global_step != self.in_save_at_step:
            return
        folder = Path(trainer.default_root_dir) / "checkpoints"
        before = {path.name for path in folder.glob("*")} if folder.is_dir() else set()
        checkpoint["padding"] = torch.zeros(16 * 2**20)  # 64 MiB: the write takes long enough to be caught in it
        threading.Thread(target=_kill_once_written_into, args=(folder, before), daemon=True).start()


def _kill_once_written_into(folder: Path, before: set[str]) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for path in folder.glob("*") if folder.is_dir() else ():
            try:
                if path.name not in before and path.stat().st_size > 0:
                    die()
            except FileNotFoundError:
                pass
        time.sleep(0.0005)
