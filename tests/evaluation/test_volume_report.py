"""What happened travels into the reports: DICOM fixes in data_report.json and report.html, 3-D cases as axial slices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pydicom")

from hydra.utils import instantiate  # noqa: E402

from brainseg.evaluation.evaluate import score_volume_cases  # noqa: E402
from tests.conftest import compose_config, phantom, write_nifti  # noqa: E402
from tests.data.test_dicom import write_series  # noqa: E402
from tests.inference.test_volume import ORACLE  # noqa: E402

SPACING = (0.8, 0.6, 2.0)  # the DICOM helper's default grid
LPS_AFFINE = np.diag([-0.8, -0.6, 2.0, 1.0])  # a DICOM series' grid in RAS terms, as read back


def dataset_with_a_tilted_series(root: Path, n_nifti: int = 2) -> Path:
    """``n_nifti`` NIfTI cases and one case whose image is a DICOM series acquired with gantry tilt."""
    for i in range(n_nifti):
        image, mask = phantom((40, 36, 12), seed=i)
        write_nifti(root / "CTA images" / f"case{i:02d}.nii.gz", image, np.diag([*SPACING, 1.0]))
        write_nifti(root / "brain masks" / f"case{i:02d}_ROI.nii.gz", mask, np.diag([*SPACING, 1.0]))
    image, mask = phantom((40, 36, 12), seed=9)
    write_series(root / "CTA images" / "tilted", image, shear_mm=0.1)
    write_nifti(root / "brain masks" / "tilted_ROI.nii.gz", mask[::-1, ::-1], LPS_AFFINE)
    return root


def test_training_records_dicom_fixes_in_data_report_json(tmp_path):
    root = dataset_with_a_tilted_series(tmp_path / "data")
    cfg = compose_config(["data=folder", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.image_size=32"], tmp_path)
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    report = json.loads((Path(cfg.paths.output_dir) / "data_report.json").read_text())
    (warning,) = report["warnings"]
    assert "tilted" in warning and "gantry tilt" in warning
    assert Path(report["dataset"]).is_absolute()


def test_a_3d_evaluation_writes_report_html_with_axial_slices_and_the_dicom_fixes(tmp_path):
    root = dataset_with_a_tilted_series(tmp_path / "data", n_nifti=5)  # six phantoms (seeds differ in noise only)
    cfg = compose_config(["ckpt_path=oracle.ckpt", f"data.root={root}", "report.n_cases=2"], tmp_path, "evaluate")
    output = tmp_path / "evaluation"
    output.mkdir()
    rows = score_volume_cases(ORACLE, cfg, root, None, output)
    assert [row["case_id"] for row in rows] == ["case00", "case01", "case02", "case03", "case04", "tilted"]
    dice = {row["case_id"]: row["dice"] for row in rows}
    assert min(dice.values()) > 0.7  # the oracle finds the phantom's soft tissue (on a 2 mm grid: 0.75)
    assert dice["tilted"] == pytest.approx(dice["case00"], abs=1e-6)  # the tilt was undone: the same phantom scores the same
    assert "gantry tilt" in next(row for row in rows if row["case_id"] == "tilted")["warnings"]
    report = json.loads((output / "data_report.json").read_text())
    assert any("gantry tilt" in warning for warning in report["warnings"])
    page = (output / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # the 2 worst and the 2 best, no case twice
    assert "Worst 2 by Dice" in page and "Best 2 by Dice" in page and "axial slices" in page
    assert all(case in page for case in ("case00", "case04", "tilted"))  # every case in the table
    assert "Reading the data" in page and "gantry tilt of" in page  # what reading the series had to fix


def test_a_mip_evaluation_reports_the_dicom_fixes_too(trained_run, tmp_path):
    from brainseg.evaluation.evaluate import evaluate

    root = dataset_with_a_tilted_series(tmp_path / "data")
    checkpoint = json.loads((trained_run / "metrics.json").read_text())["best_checkpoint"]
    cfg = compose_config([f"ckpt_path={checkpoint}", f"data.root={root}", f"data.cache_root={tmp_path / 'cache'}"], tmp_path, "evaluate")
    assert evaluate(cfg)["cases"] == 3
    output = Path(cfg.paths.output_dir)
    assert any("gantry tilt" in warning for warning in json.loads((output / "data_report.json").read_text())["warnings"])
    assert "gantry tilt of" in (output / "report.html").read_text()
