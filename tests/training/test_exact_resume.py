"""A run killed with SIGKILL anywhere (mid-epoch, during validation, while a checkpoint is being
written) and resumed with ``ckpt_path=last`` ends bit for bit as the uninterrupted run with the
same seed: the same weights, optimizer and scheduler state, and the same metrics.json.

Each run is ``python train.py`` in a subprocess on one thread (OMP_NUM_THREADS=1). The kill points
are drawn at random (seeded: the draw is in each test's id) and injected by
:class:`tests.training.kill_points.KillPoint`. 12 phantoms -> 8 training cases, batch 2: 4 steps per
epoch, 3 epochs = 12 steps; last.ckpt after steps 3, 6 and 9 (step 12 ends an epoch) and after each
epoch's validation (steps 4, 8, 12).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]
STEPS_PER_EPOCH, EPOCHS, SAVE_EVERY = 4, 3, 3
DRAW = random.Random(16)  # the kill points: change the seed to try others
KILLS = {
    "after_step": [f"after_step={DRAW.randint(4, 12)}"],
    "in_validation": [f"in_validation={DRAW.randint(0, EPOCHS - 1)}"],
    "in_step_checkpoint": [f"in_save_at_step={DRAW.choice([6, 9])}"],
    "in_epoch_end_checkpoint": [f"in_save_at_step={DRAW.choice([4, 8, 12])}"],
    "twice": [f"after_step={DRAW.randint(4, 7)}", f"in_validation={EPOCHS - 1}"],
}


def train(tmp: Path, run: str, *overrides: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, str(ROOT / "train.py"), "data=folder", f"data.root={tmp / 'ds'}", f"data.cache_dir={tmp / 'cache'}",
        "data.image_size=32", "data.batch_size=2", "data.preprocess_workers=1", "model.net.channels=[4,8]",
        f"trainer.max_epochs={EPOCHS}", "logger=csv", "callbacks.validation_panel=null", "callbacks.progress_bar=null",
        f"callbacks.last_checkpoint.every_n_train_steps={SAVE_EVERY}", f"hydra.run.dir={tmp / run}", *overrides,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # bitwise: one thread
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=600)


def kill_at(point: str) -> list[str]:
    return ["+callbacks.kill._target_=tests.training.kill_points.KillPoint", f"+callbacks.kill.{point}"]


def outcome(run: Path) -> tuple[dict, dict]:
    """The final last.ckpt and metrics.json (the best checkpoint by file name: runs differ in folder)."""
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["best_checkpoint"] = Path(metrics["best_checkpoint"]).name
    return checkpoint, metrics


def assert_identical(left, right, where: str = "checkpoint") -> None:
    if isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            assert_identical(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right)):
            assert_identical(a, b, f"{where}[{index}]")
    elif isinstance(left, torch.Tensor):
        assert left.dtype == right.dtype and torch.equal(left, right), f"{where} differs"
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, tuple[dict, dict]]:
    tmp = tmp_path_factory.mktemp("exact_resume")
    make_dataset(tmp / "ds", n=12, shape=(40, 36, 10))
    completed = train(tmp, "uninterrupted")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return tmp, outcome(tmp / "uninterrupted")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(KILLS), ids=[f"{name}-{'-'.join(points)}" for name, points in KILLS.items()])
def test_a_killed_and_resumed_run_ends_bit_for_bit_as_the_uninterrupted_one(uninterrupted, name):
    tmp, (expected_checkpoint, expected_metrics) = uninterrupted
    run = tmp / name
    for attempt, point in enumerate(KILLS[name]):
        resuming = ["ckpt_path=last"] if attempt else []
        killed = train(tmp, name, *resuming, *kill_at(point))
        assert killed.returncode == -9, f"{point}: not killed (exit {killed.returncode}): {killed.stderr[-2000:]}"
        saved = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)  # whole: it loads
        if point.startswith("in_save_at_step"):
            assert list((run / "checkpoints").glob(".*.tmp")), "the kill was not inside a checkpoint write"
            assert saved["global_step"] < int(point.split("=")[1])  # the last good one, not the interrupted one
    resumed = train(tmp, name, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    checkpoint, metrics = outcome(run)
    assert metrics == expected_metrics
    for key in ("global_step", "epoch", "state_dict", "optimizer_states", "lr_schedulers", "loops"):
        assert_identical(checkpoint[key], expected_checkpoint[key], key)
    assert checkpoint["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert not list((run / "checkpoints").glob(".*.tmp"))  # what the killed write left is gone
