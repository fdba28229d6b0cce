"""A training run killed with SIGKILL mid-epoch resumes from its last checkpoint, in its own run
folder, with the same epoch and step counters, weights, optimizer and scheduler state."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]
# 10 cases -> 6 train (batch 2: 3 steps per epoch), 2 val, 2 test; 3 epochs = 9 steps.
STEPS_PER_EPOCH, EPOCHS = 3, 3
SAVE_EVERY, KILL_AFTER = 2, 5  # last.ckpt at steps 2, 3 (epoch end), 4, ...; killed after step 5


def train_command(tmp: Path, record: Path, *overrides: str) -> list[str]:
    return [
        sys.executable, str(ROOT / "train.py"), "data=folder", f"data.root={tmp / 'ds'}", f"data.cache_dir={tmp / 'cache'}",
        "data.image_size=32", "data.batch_size=2", "data.preprocess_workers=1", "model.net.channels=[4,8]",
        f"trainer.max_epochs={EPOCHS}", "logger=csv", "callbacks.validation_panel=null", "callbacks.progress_bar=null",
        f"callbacks.last_checkpoint.every_n_train_steps={SAVE_EVERY}", f"hydra.run.dir={tmp / 'run'}",
        "+callbacks.probe._target_=tests.robustness.probes.TrainingStateProbe", f"+callbacks.probe.record={record}",
        *overrides,
    ]


def assert_same_tensors(left, right, where: str = "") -> None:
    """Equal nested dicts/lists of tensors and plain values."""
    if isinstance(left, dict):
        assert left.keys() == right.keys(), where
        for key in left:
            assert_same_tensors(left[key], right[key], f"{where}.{key}")
    elif isinstance(left, (list, tuple)):
        assert len(left) == len(right), where
        for index, (a, b) in enumerate(zip(left, right)):
            assert_same_tensors(a, b, f"{where}[{index}]")
    elif isinstance(left, torch.Tensor):
        assert torch.equal(left, torch.as_tensor(right)), where
    else:
        assert left == right, where


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory):
    """Train until step 5, SIGKILL the process, keep a copy of last.ckpt, resume with ckpt_path=last."""
    tmp = tmp_path_factory.mktemp("resume")
    make_dataset(tmp / "ds", n=10, shape=(40, 36, 10))
    first = tmp / "first.pt"
    process = subprocess.Popen(train_command(tmp, first, f"+callbacks.probe.hang_at_step={KILL_AFTER}"),
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not Path(f"{first}.hung").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"training ended before step {KILL_AFTER}: {process.communicate()[1][-3000:]}")
        time.sleep(0.2)
    process.kill()  # SIGKILL: no handler, no cleanup, as when the machine or the scheduler ends the job
    process.communicate()
    shutil.copy(tmp / "run" / "checkpoints" / "last.ckpt", tmp / "at_kill.ckpt")

    second = tmp / "second.pt"
    resumed = subprocess.run(train_command(tmp, second, "ckpt_path=last"), cwd=ROOT, capture_output=True, text=True, timeout=300)
    return tmp, process.returncode, resumed, torch.load(second, weights_only=True)


@pytest.mark.slow
def test_the_run_was_killed_mid_epoch_after_a_step_checkpoint(killed_and_resumed):
    tmp, killed_with, _, _ = killed_and_resumed
    assert killed_with == -9
    checkpoint = torch.load(tmp / "at_kill.ckpt", weights_only=True)
    assert checkpoint["global_step"] == 4 and checkpoint["epoch"] == 1  # one step into the second epoch
    assert checkpoint["global_step"] % STEPS_PER_EPOCH != 0


@pytest.mark.slow
def test_resuming_restores_counters_weights_optimizer_and_scheduler(killed_and_resumed):
    tmp, _, resumed, states = killed_and_resumed
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    checkpoint = torch.load(tmp / "at_kill.ckpt", weights_only=True)
    start = states["start"]
    assert (start["epoch"], start["global_step"]) == (checkpoint["epoch"], checkpoint["global_step"])
    assert_same_tensors(start["weights"], checkpoint["state_dict"], "weights")
    assert_same_tensors(start["optimizer"], checkpoint["optimizer_states"][0], "optimizer")
    assert start["optimizer"]["state"][0]["step"] == 4  # AdamW's bias correction continues, not restarts
    assert_same_tensors(start["schedulers"], checkpoint["lr_schedulers"], "schedulers")


@pytest.mark.slow
def test_the_resumed_run_finishes_the_remaining_steps_in_the_same_run_folder(killed_and_resumed):
    tmp, _, resumed, states = killed_and_resumed
    assert states["end"]["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert states["end"]["batches_run"] == STEPS_PER_EPOCH * EPOCHS - 4  # steps 5 to 9; none twice
    run = tmp / "run"
    assert (run / "metrics.json").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"] == STEPS_PER_EPOCH * EPOCHS
    assert sorted(path.name for path in (run / "checkpoints").iterdir() if not path.name.startswith("epoch")) == ["last.ckpt"]
    assert sorted(path.name for path in tmp.iterdir() if path.is_dir()) == ["cache", "ds", "run"]  # no second run folder
