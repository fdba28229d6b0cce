"""trainer=ddp started from train.py: two CPU processes (gloo) share one run folder and one config,
rank 0 alone writes, and they train like one process on the same global batch."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from brainseg.training.distributed import job_command_line
from tests.conftest import compose_config, make_dataset

ROOT = Path(__file__).resolve().parents[2]

# Same data, same global batch (4 = 1 process x 4 = 2 processes x 2), one step per epoch over the
# whole training split. The losses are per-image means (dice per image, BCE per pixel of equal-sized
# images), so the mean of the two processes' means is the single process's mean, and DDP's averaged
# gradient is the single process's gradient. Instance norm, because BatchNorm statistics would be per
# process; no augmentation, because each process draws its own random numbers. What is left is the
# order of floating-point sums (measured: differences <= 1.2e-7), hence the tolerance.
TOLERANCE = 1e-5
SAME_DATA = [
    "trainer.max_epochs=3", "data.image_size=32", "model.net.channels=[4,8]", "model.net.norm=instance",
    "data.augmentation=null", "data.split.train=0.5", "data.split.val=0.25", "data.split.test=0.25",
    "callbacks.validation_panel=null",
]
COMPARED = ("train/loss_epoch", "val/loss", "val/dice", "val/iou", "test/loss", "test/dice", "test/iou")


def run_train(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    dataset = tmp_path / "ds"
    if not dataset.exists():
        make_dataset(dataset, n=8, shape=(24, 20, 8))  # 4 train, 2 val, 2 test: even, so no process repeats a case
    paths = [f"data.root={dataset}", f"data.cache_dir={tmp_path / 'cache'}", f"paths.root_dir={tmp_path}"]
    command = [sys.executable, str(ROOT / "train.py"), *overrides, *paths]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def config_digests(run: Path) -> dict[str, str]:
    """The resolved-config digest each process logged, by log file (train.log is rank 0)."""
    return {log.name: re.search(r"config digest (\w+)", log.read_text()).group(1) for log in run.glob("*.log")}


@pytest.fixture(scope="module")
def single_and_ddp(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ddp")
    single = run_train(tmp_path, *SAME_DATA, "data.batch_size=4", f"hydra.run.dir={tmp_path / 'single'}")
    ddp = run_train(tmp_path, *SAME_DATA, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "data.batch_size=2", f"hydra.run.dir={tmp_path / 'ddp'}")
    assert single.returncode == 0, single.stderr[-3000:]
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    return tmp_path


@pytest.mark.slow
def test_two_process_ddp_on_cpu_matches_a_single_process_run(single_and_ddp):
    single = json.loads((single_and_ddp / "single" / "metrics.json").read_text())
    ddp = json.loads((single_and_ddp / "ddp" / "metrics.json").read_text())
    for name in COMPARED:
        assert ddp[name] == pytest.approx(single[name], abs=TOLERANCE), name


@pytest.mark.slow
def test_ddp_processes_share_one_run_folder_and_one_resolved_config(single_and_ddp):
    run = single_and_ddp / "ddp"
    digests = config_digests(run)
    assert set(digests) == {"train.log", "train_ddp_process_1.log"}  # rank 1 logged into this run's folder
    assert len(set(digests.values())) == 1
    assert not (single_and_ddp / "outputs").exists()  # no stray run folder of another rank
    assert len(list((run / "checkpoints").glob("epoch*.ckpt"))) == 1 and (run / "checkpoints" / "last.ckpt").is_file()
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) >= 1


@pytest.mark.slow
def test_ddp_jobs_of_a_sweep_rerun_their_own_job_not_the_sweep(tmp_path):
    # Both jobs run in this one process (basic launcher): the second must start its own process group.
    result = run_train(
        tmp_path, "-m", "optimizer=adam,adamw", "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2",
        "trainer.max_epochs=1", "data.image_size=32", "model.net.channels=[4,8]", "callbacks.validation_panel=null",
        "test=false", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = sorted(path.name for path in (tmp_path / "sweep").iterdir() if path.is_dir() and path.name.isdigit())
    assert jobs == ["0", "1"]
    digests = [config_digests(tmp_path / "sweep" / job) for job in jobs]
    assert all(set(d) == {"train.log", "train_ddp_process_1.log"} and len(set(d.values())) == 1 for d in digests)
    assert digests[0]["train.log"] != digests[1]["train.log"]  # adam vs adamw: each rank 1 ran its own job
    assert not (tmp_path / "outputs").exists()  # no rank started a sweep or a run folder of its own


def test_a_sweep_job_is_rerun_as_a_single_run_of_its_own_overrides():
    hydra = OmegaConf.create(
        {
            "job": {"config_name": "train"},
            "runtime": {"config_sources": [{"path": "hydra.conf", "schema": "pkg", "provider": "hydra"}, {"path": "/x/conf", "schema": "file", "provider": "main"}]},
            "overrides": {"task": ["optimizer=adam", "optimizer.lr=0.001", "trainer=ddp"], "hydra": ["hydra.mode=MULTIRUN", "hydra.sweeper.n_trials=4"]},
        }
    )
    assert job_command_line(hydra) == [
        "--config-name=train", "--config-path=/x/conf", "optimizer=adam", "optimizer.lr=0.001", "trainer=ddp",
        "hydra.sweeper.n_trials=4", "hydra.mode=RUN",
    ]


def test_trainer_ddp_composes_with_devices_nodes_and_strategy(tmp_path):
    cfg = compose_config(["trainer=ddp"], tmp_path)
    assert (cfg.trainer.strategy, cfg.trainer.devices, cfg.trainer.num_nodes) == ("ddp", 2, 1)
