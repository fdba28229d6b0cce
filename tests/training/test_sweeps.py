"""Sweeps: every multirun leaves a summary row per job (failed ones too), Optuna leaves its best
parameters, TensorBoard's HParams table shows every job with its metrics, and submitit runs jobs."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from brainseg.training.hparams import REPORTED_METRICS
from brainseg.training.sweeps import summary_table
from tests.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]


def read_summary(sweep: Path) -> list[dict]:
    with open(sweep / "sweep_summary.csv", newline="") as stream:
        return list(csv.DictReader(stream))


def run_sweep(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    """``python train.py -m`` on a tiny phantom dataset, outputs under ``tmp_path``."""
    dataset = tmp_path / "ds"
    if not dataset.exists():
        make_dataset(dataset, n=6, shape=(24, 20, 8))
    tiny = [
        f"data.root={dataset}", f"data.cache_dir={tmp_path / 'cache'}", "data.image_size=32",
        "model.net.channels=[4,8]", "trainer.max_epochs=1", "callbacks.validation_panel=null",
        f"paths.root_dir={tmp_path}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    command = [sys.executable, str(ROOT / "train.py"), "-m", *overrides, *tiny]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)


def hparams_table(logdir: Path):
    """What TensorBoard's HParams tab shows for ``logdir``: (experiment, session groups).

    Runs TensorBoard's own HParams backend (the handlers behind the tab) over the event files.
    """
    from tensorboard import context
    from tensorboard.backend.event_processing import (
        data_provider,
        plugin_event_multiplexer,
    )
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import (
        api_pb2,
        backend_context,
        get_experiment,
        list_session_groups,
    )

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    backend = backend_context.Context(base_plugin.TBContext(logdir=str(logdir), multiplexer=multiplexer, data_provider=provider))
    request = context.RequestContext()
    experiment = get_experiment.Handler(request, backend, "", api_pb2.GetExperimentRequest()).run()
    everything = api_pb2.ListSessionGroupsRequest(start_index=0, slice_size=100)
    everything.allowed_statuses.extend([api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE, api_pb2.STATUS_RUNNING])
    groups = list_session_groups.Handler(request, backend, "", everything).run().session_groups
    return experiment, groups


# ---- the summary table, by hand ----------------------------------------------------------------
def test_the_summary_has_a_column_per_swept_override_and_per_metric_and_keeps_failed_jobs():
    common = ["trainer.max_epochs=1"]
    rows = [
        {"job": 1, "status": "failed", "overrides": ["optimizer.lr=-1", *common], "run_dir": "s/1", "error": "ConfigError: optimizer.lr must be > 0"},
        {"job": 0, "status": "ok", "overrides": ["optimizer.lr=0.01", *common], "run_dir": "s/0", "metrics": {"val/dice": 0.9, "test/dice": 0.8}},
        {"job": 2, "status": "running", "overrides": ["optimizer.lr=0.1", *common], "run_dir": "s/2"},
    ]
    table = list(csv.DictReader(summary_table(rows).splitlines()))
    assert list(table[0]) == ["job", "status", "optimizer.lr", "test/dice", "val/dice", "overrides", "run_dir", "seconds", "error"]
    assert [(row["job"], row["status"], row["optimizer.lr"]) for row in table] == [("0", "ok", "0.01"), ("1", "failed", "-1"), ("2", "running", "0.1")]
    assert table[0]["val/dice"] == "0.9" and table[1]["val/dice"] == ""
    assert table[1]["error"] == "ConfigError: optimizer.lr must be > 0"
    assert table[0]["overrides"] == "optimizer.lr=0.01 trainer.max_epochs=1"  # enough to rerun the job


# ---- real multiruns ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sweep_with_a_failure(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("sweep")
    result = run_sweep(tmp_path, "loss=dice,focal", "optimizer.lr=0.003,-1")
    return result, tmp_path / "sweep"


@pytest.mark.slow
def test_a_failed_job_is_a_row_with_its_error_and_the_sweep_goes_on(sweep_with_a_failure):
    result, sweep = sweep_with_a_failure
    # Hydra's basic sweeper runs every job, then re-raises the first failure: exit status 1.
    assert result.returncode == 1
    rows = read_summary(sweep)
    assert [(row["job"], row["loss"], row["optimizer.lr"], row["status"]) for row in rows] == [
        ("0", "dice", "0.003", "ok"), ("1", "dice", "-1", "failed"), ("2", "focal", "0.003", "ok"), ("3", "focal", "-1", "failed"),
    ]
    for row in rows:
        assert Path(row["run_dir"]) == sweep / row["job"]
        if row["status"] == "ok":
            assert float(row["val/dice"]) >= 0 and float(row["test/loss"]) > 0 and not row["error"]
        else:
            assert row["error"] == "ConfigError: optimizer.lr must be > 0, got -1" and not row["val/dice"]


@pytest.mark.slow
def test_tensorboard_on_the_sweep_folder_shows_every_job_in_one_table_with_metrics(sweep_with_a_failure):
    _, sweep = sweep_with_a_failure
    experiment, groups = hparams_table(sweep)
    columns = {info.name for info in experiment.hparam_infos}
    assert {"loss/choice", "optimizer.lr", "loss.smooth", "loss.gamma"} <= columns  # dice's key and focal's key
    assert [info.name.tag for info in experiment.metric_infos] == list(REPORTED_METRICS)
    assert sorted(group.name for group in groups) == ["0/tensorboard", "2/tensorboard"]  # the failed jobs never logged
    for group in groups:
        filled = {value.name.tag: value.value for value in group.metric_values}
        assert set(filled) == set(REPORTED_METRICS), f"empty metric columns for {group.name}"


@pytest.mark.slow
def test_an_optuna_search_writes_every_trial_and_the_best_parameters(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper")
    result = run_sweep(tmp_path, "hparams_search=optuna", "hydra.sweeper.n_trials=3")
    assert result.returncode == 0, result.stderr[-3000:]
    sweep = tmp_path / "sweep"
    rows = read_summary(sweep)
    assert [row["status"] for row in rows] == ["ok"] * 3
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    assert best["best_value"] == pytest.approx(max(float(row["val/dice"]) for row in rows))
    searched = {"loss", "optimizer", "optimizer.lr", "data.augmentation.rotate_deg", "data.augmentation.scale", "data.augmentation.intensity_scale"}
    assert set(best["best_params"]) == searched  # model.net.channels was fixed on the command line
    assert searched - {"optimizer", "loss"} <= set(rows[0])  # swept values have their own columns


def test_the_slurm_preset_asks_for_one_task_and_one_gpu_per_ddp_process(tmp_path, monkeypatch):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    import submitit
    from hydra import compose, initialize_config_dir
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf

    from tests.conftest import CONF_DIR

    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        overrides = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "trainer=ddp", "trainer.devices=4", "trainer.num_nodes=2"]
        launcher = OmegaConf.to_container(compose("train", overrides=overrides, return_hydra_config=True).hydra.launcher, resolve=True)
    # The launcher's own translation of its keys into submitit parameters; a fake `srun` stands in for a cluster.
    (tmp_path / "srun").write_text("#!/bin/sh\n")
    (tmp_path / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{Path(sys.executable).parent}:/usr/bin:/bin")
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    parameters = {key if key in base else f"slurm_{key}": value for key, value in launcher.items() if key not in ("_target_", "submitit_folder", "max_num_timeout")}
    executor = submitit.AutoExecutor(folder=str(tmp_path / "submitit"), cluster="slurm")
    executor.update_parameters(**parameters)  # refuses any key submitit does not know
    sbatch = executor._executor._make_submission_file_text("python train.py", "job")
    for line in ("--partition=gpu", "--nodes=2", "--ntasks-per-node=4", "--gpus-per-node=4", "--time=240", "--mem=64GB"):
        assert f"#SBATCH {line}\n" in sbatch


@pytest.mark.slow
def test_the_submitit_local_launcher_runs_two_jobs_and_each_writes_its_row(tmp_path):
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    result = run_sweep(tmp_path, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "optimizer=adam,adamw")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_summary(tmp_path / "sweep")
    assert [(row["optimizer"], row["status"]) for row in rows] == [("adam", "ok"), ("adamw", "ok")]
    assert all((Path(row["run_dir"]) / "metrics.json").is_file() for row in rows)
