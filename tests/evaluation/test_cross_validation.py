"""The cross-validation summary from fold run folders: per-fold scores, the pooled table, the partition."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from brainseg.evaluation.cross_validation import (
    read_fold,
    summarize_folds,
    write_cv_summary,
)
from brainseg.evaluation.statistics import bootstrap_mean_ci

CASES = [f"case{i:02d}" for i in range(10)]


def fold_run(root: Path, fold: int, num_folds: int = 5, cases=CASES, dice_offset: float = 0.0) -> Path:
    """A fold's run folder as training leaves it: split.json and test/per_case.csv (2-D columns)."""
    test = cases[fold::num_folds]
    rest = [c for c in cases if c not in test]
    run = root / str(fold)
    (run / "test").mkdir(parents=True)
    (run / "split.json").write_text(json.dumps({"fold": fold, "num_folds": num_folds, "train": rest[1:], "val": rest[:1], "test": test}))
    with open(run / "test" / "per_case.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "dice", "iou", "hd95_mm", "note"])
        writer.writeheader()
        for case_id in test:
            dice = 0.8 + 0.01 * int(case_id[-2:]) + dice_offset
            writer.writerow({"case_id": case_id, "dice": dice, "iou": dice / (2 - dice), "hd95_mm": 20 * (1 - dice)})
    return run


def expected_dice(case_id: str) -> float:
    return 0.8 + 0.01 * int(case_id[-2:])


def test_every_case_is_pooled_once_with_its_fold_and_the_statistics_are_its_own(tmp_path):
    folds = [read_fold(fold_run(tmp_path, fold)) for fold in range(5)]
    summary = write_cv_summary(tmp_path, folds, seed=0)
    assert summary["partition"] and summary["folds_done"] == [0, 1, 2, 3, 4] and not summary["folds_missing"]
    with open(tmp_path / "per_case.csv", newline="") as stream:
        pooled = list(csv.DictReader(stream))
    assert [row["case_id"] for row in pooled] == CASES  # each case once
    assert all(int(row["fold"]) == CASES.index(row["case_id"]) % 5 for row in pooled)  # scored by the fold that tested it
    dice = np.array([expected_dice(c) for c in CASES])
    assert summary["pooled"]["dice"]["mean"] == pytest.approx(dice.mean())
    assert summary["pooled"]["dice"]["std"] == pytest.approx(dice.std())
    assert (summary["pooled"]["dice"]["ci95_low"], summary["pooled"]["dice"]["ci95_high"]) == pytest.approx(bootstrap_mean_ci(dice, seed=0))
    assert summary["folds"][2]["dice"] == pytest.approx((expected_dice("case02") + expected_dice("case07")) / 2)
    fold_means = [entry["dice"] for entry in summary["folds"]]
    assert summary["across_folds"]["dice"] == pytest.approx({"mean": np.mean(fold_means), "std": np.std(fold_means)})
    assert summary["pooled"]["hd95_mm"]["mean"] == pytest.approx((20 * (1 - dice)).mean())
    markdown = (tmp_path / "cv_summary.md").read_text()
    assert "# Cross-validation: 5 of 5 folds done" in markdown and "each scored once by the model that did not train on it" in markdown
    assert json.loads((tmp_path / "cv_summary.json").read_text()) == summary


def test_a_missing_fold_is_named_and_the_partition_is_not_claimed(tmp_path):
    folds = [read_fold(fold_run(tmp_path, fold)) for fold in (0, 1, 3, 4)]
    summary, pooled = summarize_folds(folds)
    assert summary["folds_missing"] == [2] and not summary["partition"] and len(pooled) == 8
    write_cv_summary(tmp_path / "out", folds)
    assert "# Cross-validation: 4 of 5 folds done; missing: 2" in (tmp_path / "out" / "cv_summary.md").read_text()


def test_a_run_without_a_fold_or_without_test_scores_is_not_a_fold(tmp_path):
    run = fold_run(tmp_path, 0)
    (run / "test" / "per_case.csv").unlink()
    assert read_fold(run) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "split.json").write_text(json.dumps({"train": ["a"], "val": [], "test": ["b"]}))
    (plain / "test").mkdir()
    (plain / "test" / "per_case.csv").write_text("case_id,dice\nb,0.9\n")
    assert read_fold(plain) is None
