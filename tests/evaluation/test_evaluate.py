"""Per-case scores against plain formulas, HD95 against brute force, explicit empty-mask conventions,
and an evaluation run that reproduces training's test Dice."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest
import torch
from torchmetrics.functional.segmentation import hausdorff_distance

from brainseg.errors import ConfigError
from brainseg.evaluation.evaluate import evaluate
from brainseg.evaluation.metrics import SCORES, CaseScores, hausdorff95, score_case
from brainseg.evaluation.report import pick_cases
from brainseg.evaluation.summary import summarize, write_per_case
from tests.conftest import compose_config


def numpy_scores(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """The textbook formulas, for two non-empty masks."""
    tp = float((prediction & truth).sum())
    fp = float((prediction & ~truth).sum())
    fn = float((~prediction & truth).sum())
    return {"dice": 2 * tp / (2 * tp + fp + fn), "iou": tp / (tp + fp + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn)}


def brute_force_hd(prediction: np.ndarray, truth: np.ndarray, spacing, percentile=95.0) -> float:
    """Every edge pixel against every edge pixel; edge = inside, with a 4-neighbour outside or off the image."""

    def edge_points(mask):
        padded = np.pad(mask, 1)
        inner = padded[1:-1, 1:-1] & padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
        return np.argwhere(mask & ~inner) * np.asarray(spacing, float)

    a, b = edge_points(prediction), edge_points(truth)
    distances = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return max(np.percentile(distances.min(axis=1), percentile), np.percentile(distances.min(axis=0), percentile))


def random_masks(seed: int, shape=(24, 20)):
    rng = np.random.default_rng(seed)
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    blobs = []
    for _ in range(2):
        r, c, radius = rng.uniform(5, shape[0] - 5), rng.uniform(5, shape[1] - 5), rng.uniform(3, 7)
        blobs.append((rows - r) ** 2 + (cols - c) ** 2 < radius**2)
    noise = rng.random(shape) < 0.03
    return blobs[0] | noise, blobs[1] | (rng.random(shape) < 0.03)


@pytest.mark.parametrize("seed", range(6))
def test_dice_iou_precision_recall_match_the_plain_formulas(seed):
    prediction, truth = random_masks(seed)
    row = score_case("c", prediction, truth, (0.7, 1.3))
    for name, expected in numpy_scores(prediction, truth).items():
        assert getattr(row, name) == pytest.approx(expected, abs=1e-6), name
    assert row.predicted_area_mm2 == pytest.approx(prediction.sum() * 0.7 * 1.3)
    assert row.true_area_mm2 == pytest.approx(truth.sum() * 0.7 * 1.3)


def test_per_case_csv_holds_the_plain_formula_values_to_1e_6(tmp_path):
    cases = {f"case{seed}": random_masks(seed) for seed in range(4)}
    rows = [asdict(score_case(case_id, p, t, (1.0, 1.0))) for case_id, (p, t) in cases.items()]
    write_per_case(rows, tmp_path / "per_case.csv", [field.name for field in fields(CaseScores)])
    with open(tmp_path / "per_case.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0]) == ["case_id", "dice", "iou", "precision", "recall", "hd95_mm", "predicted_area_mm2", "true_area_mm2", "note"]
    for row in rows:
        expected = numpy_scores(*cases[row["case_id"]])
        assert float(row["dice"]) == pytest.approx(expected["dice"], abs=1e-6)
        assert float(row["iou"]) == pytest.approx(expected["iou"], abs=1e-6)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("spacing", [(1.0, 1.0), (0.5, 1.25)])
def test_hd95_equals_a_brute_force_computation(seed, spacing):
    prediction, truth = random_masks(seed)
    assert hausdorff95(prediction, truth, spacing) == pytest.approx(brute_force_hd(prediction, truth, spacing), abs=1e-9)


@pytest.mark.parametrize(
    "prediction_pixels, truth_pixels, spacing, expected",
    [
        ([(3, 3)], [(3, 3)], (1.0, 1.0), 0.0),  # the same single pixel
        ([(3, 3)], [(3, 7)], (1.0, 1.0), 4.0),  # two single pixels, 4 columns apart
        ([(3, 3)], [(6, 7)], (0.5, 2.0), math.hypot(3 * 0.5, 4 * 2.0)),  # anisotropic spacing
    ],
)
def test_hd95_of_single_pixels_is_their_distance_in_mm(prediction_pixels, truth_pixels, spacing, expected):
    prediction, truth = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    for r, c in prediction_pixels:
        prediction[r, c] = True
    for r, c in truth_pixels:
        truth[r, c] = True
    assert hausdorff95(prediction, truth, spacing) == pytest.approx(expected)
    assert score_case("c", prediction, truth, spacing).hd95_mm == pytest.approx(expected)


@pytest.mark.parametrize("seed", range(3))
def test_full_hausdorff_agrees_with_torchmetrics_on_square_images(seed):
    # torchmetrics 1.9's hausdorff_distance is wrong or raises IndexError on non-square images
    # (Lightning-AI/torchmetrics#3300), which MIPs usually are: hence brainseg's own EDT version.
    prediction, truth = random_masks(seed, shape=(24, 24))
    expected = hausdorff_distance(
        torch.from_numpy(prediction[None].astype(np.int64)), torch.from_numpy(truth[None].astype(np.int64)), num_classes=2, input_format="index"
    )
    assert hausdorff95(prediction, truth, (1.0, 1.0), percentile=100) == pytest.approx(float(expected), abs=1e-5)


def test_both_empty_is_excluded_or_scored_one_as_configured():
    empty = np.zeros((8, 8), bool)
    excluded = score_case("c", empty, empty, (1.0, 1.0), both_empty="exclude")
    assert (excluded.dice, excluded.iou, excluded.hd95_mm) == (None, None, None)
    assert "excluded" in excluded.note
    one = score_case("c", empty, empty, (1.0, 1.0), both_empty="one")
    assert (one.dice, one.iou, one.precision, one.recall, one.hd95_mm) == (1.0, 1.0, 1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="both_empty"):
        score_case("c", empty, empty, (1.0, 1.0), both_empty="nan")


@pytest.mark.parametrize("empty_side", ["prediction", "truth"])
def test_one_empty_mask_scores_zero_and_the_image_diagonal(empty_side):
    empty, brain = np.zeros((6, 8), bool), np.zeros((6, 8), bool)
    brain[2:4, 2:5] = True
    prediction, truth = (empty, brain) if empty_side == "prediction" else (brain, empty)
    row = score_case("c", prediction, truth, (0.5, 2.0))
    assert (row.dice, row.iou, row.precision, row.recall) == (0.0, 0.0, 0.0, 0.0)
    assert row.hd95_mm == pytest.approx(math.hypot(6 * 0.5, 8 * 2.0))
    assert row.note.startswith(f"{empty_side} empty")


def test_summary_statistics_leave_excluded_cases_out():
    rows = [
        CaseScores("a", 0.5, 0.4, 0.6, 0.7, 2.0, 10.0, 12.0),
        CaseScores("b", 1.0, 1.0, 1.0, 1.0, 0.0, 10.0, 10.0),
        CaseScores("c", None, None, None, None, None, 0.0, 0.0, "both empty: excluded"),
    ]
    summary = summarize([asdict(row) for row in rows], SCORES)
    assert summary["cases"] == 3 and summary["cases_excluded"] == 1
    assert summary["dice/mean"] == pytest.approx(0.75)
    assert summary["dice/median"] == pytest.approx(0.75)
    assert summary["dice/std"] == pytest.approx(0.25)
    assert summary["dice/min"] == pytest.approx(0.5)
    assert summary["hd95_mm/max"] == pytest.approx(2.0)
    assert list(summary) == sorted(summary)


def test_the_report_shows_worst_dice_then_far_off_blobs_then_best_never_a_case_twice():
    def row(case_id, dice, hd95):
        return CaseScores(case_id, dice, dice, 1.0, dice, hd95, 1.0, 1.0)

    rows = [row("a", 0.80, 5.0), row("b", 0.90, 3.0), row("blob", 0.97, 40.0), row("c", 0.98, 1.0), row("d", 0.99, 1.0),
            CaseScores("empty", None, None, None, None, None, 0.0, 0.0, "both empty: excluded")]
    worst, farthest, best = pick_cases(rows, count=2)
    assert [r.case_id for r in worst] == ["a", "b"]
    assert [r.case_id for r in farthest] == ["blob"]  # HD95 beyond every worst case's; c and d are not
    assert [r.case_id for r in best] == ["d", "c"]


# ---- the evaluation command --------------------------------------------------------------------


def best_checkpoint(run: Path) -> Path:
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


def evaluate_config(run: Path, tmp_path: Path, *overrides: str):
    return compose_config([f"ckpt_path={best_checkpoint(run)}", *overrides], tmp_path, config_name="evaluate")


def test_evaluating_the_test_split_reproduces_the_training_test_dice(trained_run, tmp_path):
    """Without post-processing, evaluation scores what training scored; with it (the default), what predict writes."""
    cfg = evaluate_config(trained_run, tmp_path, f"data.cache_root={tmp_path / 'cache'}", "mip_postprocessing=null")
    metrics = evaluate(cfg)
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["dice/mean"] == pytest.approx(trained["test/dice"], abs=1e-4)
    assert metrics["iou/mean"] == pytest.approx(trained["test/iou"], abs=1e-4)
    cleaned = evaluate(evaluate_config(trained_run, tmp_path / "cleaned", f"data.cache_root={tmp_path / 'cache'}"))
    assert cleaned["dice/mean"] == pytest.approx(trained["test/dice"], abs=0.1)  # a 2-epoch model's footprint comes in pieces
    output = Path(cfg.paths.output_dir)
    with open(output / "per_case.csv") as stream:
        case_ids = [row["case_id"] for row in csv.DictReader(stream)]
    assert case_ids == json.loads((trained_run / "split.json").read_text())["test"]
    written = json.loads((output / "metrics.json").read_text())
    for score in ("dice", "iou", "precision", "recall", "hd95_mm"):
        assert {f"{score}/{stat}" for stat in ("mean", "median", "std", "min")} <= set(written)
    report = (output / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 2 and "Worst" in report and "Best" in report


def test_a_whole_dataset_folder_can_be_scored_at_the_original_resolution(trained_run, tmp_path):
    dataset = trained_run.parent / "dataset"
    cfg = evaluate_config(trained_run, tmp_path, f"data.root={dataset}", "resolution=original", f"data.cache_root={tmp_path / 'cache'}")
    metrics = evaluate(cfg)
    assert metrics["cases"] == 10
    assert 0.0 <= metrics["dice/min"] <= metrics["dice/mean"] <= 1.0


def test_a_checkpoint_outside_a_run_folder_needs_data_root(trained_run, tmp_path):
    lonely = tmp_path / "elsewhere" / "model.ckpt"
    lonely.parent.mkdir()
    lonely.write_bytes(best_checkpoint(trained_run).read_bytes())
    cfg = compose_config([f"ckpt_path={lonely}"], tmp_path, config_name="evaluate")
    with pytest.raises(ConfigError, match="data.root"):
        evaluate(cfg)


def test_a_shipped_model_is_evaluated_on_a_dataset_folder(tmp_path):
    cfg = compose_config(["ckpt_path=pretrained:mip"], tmp_path, config_name="evaluate")
    with pytest.raises(ConfigError, match="pretrained:mip is a shipped model.*data.root=DIR"):
        evaluate(cfg)


def test_a_relative_dataset_path_of_an_older_run_is_found_above_the_run_folder(tmp_path, monkeypatch):
    from brainseg.evaluation.evaluate import training_dataset

    (tmp_path / "project" / "data" / "cta").mkdir(parents=True)
    run = tmp_path / "project" / "outputs" / "train" / "runs" / "2025-01-01_00-00-00"
    monkeypatch.chdir(tmp_path)  # not where training ran
    assert training_dataset(run, "data/cta") == tmp_path / "project" / "data" / "cta"
    assert training_dataset(run, str(tmp_path / "project" / "data" / "cta")) == tmp_path / "project" / "data" / "cta"
    with pytest.raises(ConfigError, match="data/gone is not here"):
        training_dataset(run, "data/gone")


@pytest.mark.slow
def test_evaluate_py_works_from_any_working_directory(tmp_path, monkeypatch):
    """Training records the dataset's absolute path (and the relative one, for people): evaluate.py
    run from another folder scores the same test split as training did."""
    import subprocess
    import sys

    from brainseg.training.train import train
    from tests.conftest import make_dataset

    project = tmp_path / "project"
    make_dataset(project / "dataset", n=8, shape=(40, 36, 10))
    monkeypatch.chdir(project)
    cfg = compose_config(["data=folder", "data.root=dataset", "data.image_size=32", "model.net.channels=[4,8]", "trainer.max_epochs=2",
                          "logger=csv", "callbacks.validation_panel=null", "callbacks.progress_bar=null"], project)
    trained = train(cfg)
    run = Path(cfg.paths.output_dir)
    report = json.loads((run / "data_report.json").read_text())
    assert report["dataset"] == str(project / "dataset") and report["dataset_given"] == "dataset"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = Path(__file__).resolve().parents[2] / "scripts" / "evaluate.py"
    result = subprocess.run([sys.executable, str(script), f"ckpt_path={trained['best_checkpoint']}", "hydra.run.dir=evaluation",
                             "mip_postprocessing=null"], cwd=elsewhere, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((elsewhere / "evaluation" / "metrics.json").read_text())
    assert metrics["dice/mean"] == pytest.approx(trained["test/dice"], abs=1e-4)
