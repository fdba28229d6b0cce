"""scripts/compare.py: paired statistics on the cases both folders scored, a plot, and refusals in one line."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image
from scipy import stats

from brainseg.errors import ConfigError
from brainseg.evaluation.compare import compare

ROOT = Path(__file__).resolve().parents[2]
DICE_A = {"c1": 0.91, "c2": 0.88, "c3": 0.95, "c4": 0.79, "c5": 0.93, "c6": 0.90, "c7": 0.85}
DICE_B = {"c1": 0.93, "c2": 0.90, "c3": 0.94, "c4": 0.86, "c5": 0.96, "c6": 0.915, "c7": 0.89}


def write_table(folder: Path, dice: dict, extra_rows: list[dict] = ()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "per_case.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=["case_id", "dice", "iou", "hd95_mm", "note"])
        writer.writeheader()
        for case_id, value in dice.items():
            writer.writerow({"case_id": case_id, "dice": value, "iou": value / (2 - value), "hd95_mm": 10 * (1 - value)})
        writer.writerows(extra_rows)
    return folder


def config(tmp_path: Path, a: Path, b: Path, score: str = "dice"):
    return OmegaConf.create({"a": str(a), "b": str(b), "score": score, "seed": 0, "paths": {"output_dir": str(tmp_path / "out")}})


def test_the_numbers_match_scipy_on_a_hand_made_table_and_unpaired_cases_are_left_out(tmp_path):
    a = write_table(tmp_path / "a", {**DICE_A, "only_a": 0.5}, [{"case_id": "blank", "note": "both empty: excluded"}])
    b = write_table(tmp_path / "b" / "test", {**DICE_B, "only_b": 0.7, "blank": 0.9}).parent  # a training run's test/ table
    results = compare(config(tmp_path, a, b))
    cases = sorted(DICE_A)
    x, y = np.array([DICE_A[c] for c in cases]), np.array([DICE_B[c] for c in cases])
    dice = results["scores"]["dice"]
    assert dice["n"] == 7 and dice["mean_difference"] == pytest.approx((y - x).mean())
    expected = stats.wilcoxon(y, x)
    assert (dice["wilcoxon_statistic"], dice["wilcoxon_p"]) == pytest.approx((expected.statistic, expected.pvalue))
    assert results["scores"]["hd95_mm"]["mean_difference"] == pytest.approx(-10 * (y - x).mean())
    assert (results["scored_only_in_a"], results["scored_only_in_b"]) == (1, 2)  # 'blank' has no Dice in a
    out = tmp_path / "out"
    rows = list(csv.DictReader(open(out / "comparison.csv")))
    assert [row["case_id"] for row in rows] == cases
    assert float(rows[3]["difference_b_minus_a"]) == pytest.approx(0.07)
    markdown = (out / "comparison.md").read_text()
    assert "| dice | higher | 0.8871 | 0.9136 | +0.0264 | +0.0107 to +0.0436 | 6 / 1 |" in markdown
    assert "| hd95_mm | lower | 1.1286 | 0.8643 | -0.2643 | -0.4357 to -0.1071 | 6 / 1 |" in markdown  # lower HD95 is better and "![per-case scores](comparison.png)" in markdown
    picture = Image.open(out / "comparison.png")
    assert picture.size == (480, 480) and len(set(picture.getdata())) > 3


def test_mismatched_case_sets_are_refused_in_one_line(tmp_path):
    a = write_table(tmp_path / "a", DICE_A)
    b = write_table(tmp_path / "b", {f"other{i}": 0.9 for i in range(7)} | {"c1": 0.9, "c2": 0.8})
    with pytest.raises(ConfigError, match="a and b have 2 case\\(s\\) with a dice in both \\(7 in a, 9 in b\\); a paired comparison needs at least 5"):
        compare(config(tmp_path, a, b))


def test_a_folder_without_a_table_and_an_unknown_score_are_refused(tmp_path):
    a = write_table(tmp_path / "a", DICE_A)
    with pytest.raises(ConfigError, match="no per_case.csv or test/per_case.csv"):
        compare(config(tmp_path, a, tmp_path))
    with pytest.raises(ConfigError, match="score must be one of"):
        compare(config(tmp_path, a, a, score="accuracy"))


def test_the_script_refuses_with_one_line_and_status_1(tmp_path):
    a = write_table(tmp_path / "a", dict(list(DICE_A.items())[:4]))
    command = [sys.executable, str(ROOT / "scripts" / "compare.py"), f"a={a}", f"b={a}", f"hydra.run.dir={tmp_path / 'run'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "error: a and b have 4 case(s) with a dice in both (4 in a, 4 in b); a paired comparison needs at least 5"
