"""LightningModule: the U-Net with its loss, torchmetrics Dice and IoU, and its optimizer.

Probabilities are the sigmoid of the logits, applied once (the losses do it internally);
``threshold`` applies to probabilities. The metrics receive thresholded INTEGER masks
(N, 1, H, W): given a float probability map with ``input_format="mixed"``, torchmetrics'
``DiceScore`` would take an argmax over the single channel, see all zeros and read 0 forever.

A checkpoint also holds what a run killed mid-epoch needs to end as if it had not been: the
running sums of the epoch's training metrics and torch's global random state (dropout draws
from it), restored when training restarts (docs/robustness.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import pytorch_lightning as pl
import torch
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.segmentation import DiceScore, MeanIoU

STAGES = ("train", "val", "test")


def check_binary_target(target: torch.Tensor) -> None:
    """Refuse masks that are not {0, 1}: e.g. masks normalized like images into {-1, 1}."""
    if ((target != 0) & (target != 1)).any():
        values = torch.unique(target)[:6].tolist()
        raise ValueError(f"masks must hold only 0 and 1, got values {values}; masks must never be normalized")


def make_metrics() -> nn.ModuleDict:
    """Per-image Dice and IoU of the brain class; an image whose mask and prediction are both
    empty is left out of the mean (torchmetrics' NaN handling), rather than scored 0 or 1.

    They take integer masks shaped (N, 1, H, W): the brain class as its own one-hot channel.
    Scores are those of ``num_classes=2, include_background=False`` on index masks (a test
    compares them), at a seventh of the cost per batch: no one-hot expansion of every pixel.
    """
    options = {"num_classes": 1, "include_background": True, "input_format": "one-hot"}
    with warnings.catch_warnings():  # torchmetrics warns about the default average even when it is set
        warnings.filterwarnings("ignore", message=".*DiceScore metric currently defaults.*")
        dice = DiceScore(average="micro", **options)
    return nn.ModuleDict({"dice": dice, "iou": MeanIoU(**options)})


class CaseDice(Metric):
    """Mean over cases of each case's Dice, whatever number of samples a case spans.

    In MIP mode a case is one image; in slice mode it is every slice of the volume, so this is
    the 3-D Dice of the volume, as inference and evaluation score it (before post-processing).
    A case with an empty mask and an empty prediction is left out, as in :func:`make_metrics`.
    """

    full_state_update = False

    def __init__(self):
        super().__init__()
        self.add_state("counts", default=[], dist_reduce_fx="cat")  # rows: case, overlap, predicted, true

    def update(self, prediction: torch.Tensor, truth: torch.Tensor, case: torch.Tensor) -> None:
        dims = tuple(range(1, prediction.ndim))
        overlap, predicted, true = (prediction * truth).sum(dims), prediction.sum(dims), truth.sum(dims)
        self.counts.append(torch.stack([case.to(overlap), overlap, predicted, true], dim=1).double())

    def compute(self) -> torch.Tensor:
        counts = torch.cat(self.counts) if isinstance(self.counts, list) else self.counts
        cases, index = torch.unique(counts[:, 0], return_inverse=True)
        totals = torch.zeros(len(cases), 3, dtype=torch.float64, device=counts.device).index_add_(0, index, counts[:, 1:])
        scored = totals[:, 1] + totals[:, 2] > 0
        return (2 * totals[scored, 0] / (totals[scored, 1] + totals[scored, 2])).mean().float()


class SegmentationModule(pl.LightningModule):
    """Trains a network that outputs logits for a binary brain mask.

    Args:
        net: the network (logits out), e.g. :class:`brainseg.models.UNet`.
        loss: a loss on logits and {0, 1} targets (:mod:`brainseg.models.losses`).
        optimizer: a partial optimizer, called with ``params=``.
        scheduler: Lightning's lr-scheduler dict whose ``scheduler`` is a partial called with
            ``optimizer=``, plus ``monitor``/``interval``; ``None`` or a ``None`` scheduler for none.
        threshold: probability above which a pixel is brain. Defaults to 0.5.
        channels_last: keep the network's weights and inputs in the NHWC memory layout, which
            oneDNN's CPU convolutions (and cuDNN's with mixed precision) run faster; the values,
            and what the checkpoint holds, are the same. Defaults to False.
    """

    def __init__(
        self,
        net: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: dict | None = None,
        threshold: float = 0.5,
        channels_last: bool = False,
    ):
        super().__init__()
        if not 0.0 < threshold < 1.0:
            raise ValueError(f"model.threshold applies to probabilities and must be in (0, 1), got {threshold}")
        self.save_hyperparameters(ignore=["net", "loss", "optimizer", "scheduler"], logger=False)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net = net.to(memory_format=self.memory_format)
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_config = dict(scheduler) if scheduler else None
        self.threshold = threshold
        self.metrics = nn.ModuleDict({stage: make_metrics() for stage in ("fit", "val", "test")})
        self.case_dice = nn.ModuleDict({stage: CaseDice() for stage in ("val", "test")})
        self.train_loss = MeanMetric()  # the epoch's mean training loss, weighted by batch size
        self._resumed_random_state: dict | None = None

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Logits of the brain class, shape (N, 1, H, W)."""
        return self.net(image.contiguous(memory_format=self.memory_format))

    def predict_mask(self, logits: torch.Tensor) -> torch.Tensor:
        """Integer {0, 1} masks (N, H, W) from logits: sigmoid once, then the threshold."""
        return (torch.sigmoid(logits.float()) > self.threshold).long().squeeze(1)

    def _step(self, batch: dict, stage: str) -> torch.Tensor:
        image, target = batch["image"], batch["mask"]
        check_binary_target(target)
        logits = self(image)
        loss = self.loss(logits, target)
        prediction, truth = self.predict_mask(logits), target.long().squeeze(1)
        metrics = self.metrics["fit" if stage == "train" else stage]
        size = image.shape[0]
        if stage == "train":  # a metric object, so that its running sum can be saved in mid-epoch checkpoints
            self.train_loss(loss.detach(), size)
            self.log("train/loss", self.train_loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=size)
        else:
            # sync_dist: under DDP the logged loss is the mean over all processes, not rank 0's share
            # (the torchmetrics below sync themselves); a no-op in a single process.
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=size, sync_dist=True)
        for name, metric in metrics.items():  # update, not forward: logged per epoch only, no batch value needed
            metric.update(prediction.unsqueeze(1), truth.unsqueeze(1))
            self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "dice", batch_size=size)
        if stage in self.case_dice and "case" in batch:
            self.case_dice[stage].update(prediction, truth, batch["case"])
            self.log(f"{stage}/case_dice", self.case_dice[stage], on_step=False, on_epoch=True, batch_size=size)
        return loss

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._step(batch, "test")

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(params=self.parameters())
        if not self.scheduler_config or self.scheduler_config.get("scheduler") is None:
            return optimizer
        schedule = dict(self.scheduler_config)
        schedule["scheduler"] = schedule["scheduler"](optimizer=optimizer)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Make the checkpoint self-describing: network, threshold and preprocessing, as plain types."""
        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        from brainseg.checkpoint import describe

        preprocessing = datamodule.preprocessing() if hasattr(datamodule, "preprocessing") else None
        checkpoint["brainseg"] = describe(self.net, self.threshold, preprocessing)
        # The epoch's running training metrics matter only if the epoch has batches left: resumed
        # after its last batch, Lightning goes straight on to the next epoch.
        mid_epoch = self._trainer is not None and not self.trainer.fit_loop.epoch_loop.batch_progress.is_last_batch
        metrics = {name: metric_state(metric) for name, metric in self._epoch_metrics().items()} if mid_epoch else None
        checkpoint["resume"] = {"epoch_metrics": metrics, "random": random_state()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming: the epoch's running training metrics now, torch's random state at ``on_train_start``."""
        resume = checkpoint.get("resume")
        if not resume or self._trainer is None or self.trainer.state.fn != TrainerFn.FITTING:
            return
        if self.trainer.world_size > 1:
            return  # each process's sums differ and only rank 0's are saved: under DDP they start over
        for name, metric in self._epoch_metrics().items() if resume["epoch_metrics"] else ():
            restore_metric(metric, resume["epoch_metrics"][name])
        self._resumed_random_state = resume["random"]

    def on_train_start(self) -> None:
        # here, after Lightning has set up the loaders (which may draw from the global stream),
        # and before the first step: the stream goes on where the checkpoint left it
        if self._resumed_random_state is not None:
            set_random_state(self._resumed_random_state)
            self._resumed_random_state = None

    def _epoch_metrics(self) -> dict[str, Metric]:
        return {"train_loss": self.train_loss, **{f"fit/{name}": metric for name, metric in self.metrics["fit"].items()}}


def metric_state(metric: Metric) -> dict:
    """A torchmetrics metric's accumulated state (tensors or lists of tensors) and update count, on the CPU."""
    state = {name: [v.detach().cpu().clone() for v in value] if isinstance(value, list) else value.detach().cpu().clone()
             for name, value in metric.metric_state.items()}
    return {"state": state, "updates": int(metric.update_count)}


def restore_metric(metric: Metric, saved: dict) -> None:
    """Put back what :func:`metric_state` saved, on the metric's current device."""
    metric.reset()
    for name, value in saved["state"].items():
        setattr(metric, name, [v.to(metric.device) for v in value] if isinstance(value, list) else value.to(metric.device))
    metric._update_count = saved["updates"]  # no public setter; compute() warns when it reads 0


def random_state() -> dict:
    """Torch's global random state (CPU, and every CUDA device once CUDA is in use)."""
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
