"""A real k-fold multirun: the test folds partition the dataset and the sweep folder holds the
cross-validation summary, its pooled per-case table and its row of the HParams table."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from brainseg.training.sweeps import CV_METRICS
from tests.conftest import make_dataset
from tests.training.test_sweeps import hparams_table

ROOT = Path(__file__).resolve().parents[2]


def run_folds(tmp_path: Path, mode: str, num_folds: int) -> tuple[subprocess.CompletedProcess, Path]:
    dataset = make_dataset(tmp_path / "ds", n=10, shape=(40, 36, 10))
    size = "data.image_size=32" if mode == "mip" else "data.crop_size=32"
    command = [
        sys.executable, str(ROOT / "train.py"), "-m", f"mode={mode}", f"data.num_folds={num_folds}",
        "data.fold=" + ",".join(map(str, range(num_folds))), "data=folder", f"data.root={dataset}",
        f"data.cache_dir={tmp_path / 'cache'}", size, "model.net.channels=[4,8]", "trainer.max_epochs=2",
        "callbacks.validation_panel=null", "callbacks.progress_bar=null", f"paths.root_dir={tmp_path}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return result, tmp_path / "sweep"


@pytest.mark.slow
@pytest.mark.parametrize("mode, num_folds", [("mip", 5), ("slices", 3)])
def test_a_k_fold_multirun_partitions_the_cases_and_writes_the_cv_summary(tmp_path, mode, num_folds):
    _, sweep = run_folds(tmp_path, mode, num_folds)
    splits = [json.loads((sweep / str(job) / "split.json").read_text()) for job in range(num_folds)]
    assert [split["fold"] for split in splits] == list(range(num_folds)) and {split["num_folds"] for split in splits} == {num_folds}
    tested = sorted(case_id for split in splits for case_id in split["test"])
    assert tested == [f"case{i:02d}" for i in range(10)]  # disjoint test folds covering every case
    for split in splits:
        assert not set(split["test"]) & set(split["train"] + split["val"])

    summary = json.loads((sweep / "cv_summary.json").read_text())
    assert summary["partition"] and summary["folds_done"] == list(range(num_folds)) and summary["cases"] == 10
    with open(sweep / "per_case.csv", newline="") as stream:
        pooled = list(csv.DictReader(stream))
    assert sorted(row["case_id"] for row in pooled) == tested
    for row in pooled:  # scored by the one model that did not train on it
        assert row["case_id"] in splits[int(row["fold"])]["test"]
    for entry in summary["folds"]:
        fold_scores = json.loads((sweep / str(entry["fold"]) / "test" / "metrics.json").read_text())
        assert entry["dice"] == pytest.approx(fold_scores["dice/mean"], abs=1e-6)  # per_case.csv keeps 6 decimals
        assert entry["iou"] == pytest.approx(fold_scores["iou/mean"], abs=1e-6)
    pooled_dice = summary["pooled"]["dice"]
    assert pooled_dice["n"] == 10 and pooled_dice["ci95_low"] <= pooled_dice["mean"] <= pooled_dice["ci95_high"]
    assert "hd95_mm" in summary["pooled"] and "| dice | 10 |" in (sweep / "cv_summary.md").read_text()

    if mode == "mip":  # the pooled scores are a row of the sweep's HParams table
        experiment, groups = hparams_table(sweep)
        assert set(CV_METRICS) <= {info.name.tag for info in experiment.metric_infos}
        cv_row = next(group for group in groups if group.name == "cv_tensorboard")
        values = {value.name.tag: value.value for value in cv_row.metric_values}
        assert values["cv/dice"] == pytest.approx(pooled_dice["mean"]) and values["cv/dice_ci95_high"] == pytest.approx(pooled_dice["ci95_high"])
