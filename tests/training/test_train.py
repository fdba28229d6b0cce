"""End to end: a short real training learns, and a run folder holds everything promised."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from brainseg.training.train import train
from tests.conftest import compose_config, make_dataset

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["data.image_size=64", "model.net.channels=[8,16,32,64]", "data.batch_size=4"]


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    overrides = [f"data.root={synthetic_root}", f"data.cache_dir={tmp / 'cache'}", "trainer.max_epochs=25", *SMALL]
    cfg = compose_config(overrides, tmp)
    return train(cfg), Path(cfg.paths.output_dir)


@pytest.mark.slow
def test_a_short_training_on_synthetic_data_learns_the_brain(trained):
    metrics, _ = trained
    assert metrics["test/dice"] >= 0.9
    assert metrics["train/loss"] < 0.5 * 0.6931  # far below the ln 2 plateau of the old pipeline


@pytest.mark.slow
def test_the_run_folder_holds_metrics_checkpoints_split_and_pictures(trained):
    metrics, run = trained
    written = json.loads((run / "metrics.json").read_text())
    for name in ("train/loss", "val/dice", "test/dice", "test/iou", "test/dice_baseline"):
        assert isinstance(written[name], float)
    assert written["test/dice"] == pytest.approx(metrics["test/dice"])
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert Path(written["best_checkpoint"]).is_file() and "dice" in Path(written["best_checkpoint"]).name
    assert set(json.loads((run / "split.json").read_text())) == {"train", "val", "test"}
    assert (run / "val_panel.png").stat().st_size > 1000


@pytest.mark.slow
def test_tensorboard_has_scalars_an_image_panel_and_hparams_with_metric_columns(trained):
    _, run = trained
    events = EventAccumulator(str(run / "tensorboard"), size_guidance={"images": 0, "scalars": 0}).Reload()
    tags = events.Tags()
    assert {"train/loss_epoch", "val/dice", "val/iou", "test/dice", "test/dice_baseline"} <= set(tags["scalars"])
    assert any(tag.startswith("lr-") for tag in tags["scalars"])
    assert "val/panel" in tags["images"]
    plugin = events.PluginTagToContent("hparams")
    experiment = plugin["_hparams_/experiment"]
    assert b"val/dice" in experiment and b"test/dice" in experiment  # metric columns declared


@pytest.mark.slow
def test_the_model_beats_the_head_footprint_baseline(trained):
    metrics, _ = trained
    assert metrics["test/dice"] > metrics["test/dice_baseline"]


def _run_train(*args, cwd=ROOT):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_two_job_multirun_writes_two_run_folders(tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=6, shape=(24, 20, 8))
    result = _run_train(
        "-m", "optimizer=adam,adamw", f"data.root={dataset}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.image_size=32", "model.net.channels=[4,8]", "trainer.max_epochs=1",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", f"paths.data_dir={tmp_path / 'data'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    jobs = sorted(p.parent for p in (tmp_path / "sweep").glob("*/metrics.json"))
    assert [job.name for job in jobs] == ["0", "1"]


@pytest.mark.slow
def test_a_bad_dataset_under_fail_exits_non_zero_with_the_file_named(tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=4, shape=(24, 20, 8))
    (dataset / "CTA images" / "case01.nii.gz").write_bytes(b"not a nifti file")
    result = _run_train(
        f"data.root={dataset}", "data.on_bad_case=fail", f"hydra.run.dir={tmp_path / 'run'}",
        f"paths.data_dir={tmp_path / 'data'}",
    )
    assert result.returncode == 1
    error_lines = [line for line in result.stderr.splitlines() if "case01.nii.gz" in line]
    assert error_lines and "not a readable NIfTI" in error_lines[0]
    assert "Traceback" not in result.stderr
