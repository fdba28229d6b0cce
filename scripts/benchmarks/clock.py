"""A training callback that times each step: waiting for the batch, computing it, and the Dice over time.

:class:`StepClock` splits the training loop's time into *waiting* (from the end of one batch
to the start of the next: the DataLoader fetching, collating, augmenting) and *computing*
(forward, loss, backward, optimizer step, logging). The training benchmark reads its throughput
and time to a Dice score from it; the loading benchmark reads the share of waiting.
"""

from __future__ import annotations

import time

import pytorch_lightning as pl

from benchmarks.common import ratio


class StepClock(pl.Callback):
    """Times every training batch (wait for data, compute) and records ``monitor`` after each validation.

    Args:
        target_dice: stop training once ``monitor`` reaches this. ``None`` never stops. Defaults to None.
        max_seconds: stop training after this much time (a cap for slow variants). Defaults to None.
        monitor: the validation metric to follow. Defaults to 'val/dice'.
    """

    def __init__(self, target_dice: float | None = None, max_seconds: float | None = None, monitor: str = "val/dice"):
        self.target_dice = target_dice
        self.max_seconds = max_seconds
        self.monitor = monitor
        self.batches: list[dict] = []  # per training batch: epoch, images, wait_s, compute_s
        self.validations: list[dict] = []  # per validation: epoch, seconds since training started, score
        self.reached: dict | None = None  # the first validation at or above target_dice
        self._start = self._last_end = self._batch_start = 0.0

    def on_train_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._last_end = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._batch_start = time.perf_counter()
        self._wait = self._batch_start - self._last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._last_end = time.perf_counter()
        images = int(batch["image"].shape[0]) if isinstance(batch, dict) else int(batch[0].shape[0])
        self.batches.append(
            {"epoch": trainer.current_epoch, "images": images, "wait_s": self._wait, "compute_s": self._last_end - self._batch_start}
        )
        if self.max_seconds is not None and self._last_end - self._start > self.max_seconds:
            trainer.should_stop = True

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        entry = {"epoch": trainer.current_epoch + 1, "seconds": time.perf_counter() - self._start, "score": score}
        self.validations.append(entry)
        if self.target_dice is not None and self.reached is None and score >= self.target_dice:
            self.reached = entry
            trainer.should_stop = True

    def summary(self, skip_epochs: int = 1) -> dict:
        """Throughput and waiting share over the batches after the first ``skip_epochs`` epochs
        (warm-up: worker start, allocator, first-touch), or over all of them if that leaves none."""
        steady = [b for b in self.batches if b["epoch"] >= skip_epochs] or self.batches
        images = sum(b["images"] for b in steady)
        wait = sum(b["wait_s"] for b in steady)
        compute = sum(b["compute_s"] for b in steady)
        return {
            "images_per_s": ratio(images, wait + compute),
            "wait_share": ratio(wait, wait + compute),
            "step_s": ratio(wait + compute, len(steady)),
            "wait_ms_per_step": 1000 * (ratio(wait, len(steady)) or 0.0),
            "batches": len(self.batches),
            "epochs": (self.validations[-1]["epoch"] if self.validations else None),
            "final_score": self.validations[-1]["score"] if self.validations else None,
            "best_score": max((v["score"] for v in self.validations), default=None),
            "seconds_to_target": self.reached["seconds"] if self.reached else None,
            "epochs_to_target": self.reached["epoch"] if self.reached else None,
            "train_seconds": (self._last_end - self._start) if self.batches else None,
        }
