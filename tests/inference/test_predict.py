"""predict: three PNGs per good case, nothing for a bad one, the others go on, exit code 1 at the end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainseg.data.projection import MipCache, Projection
from brainseg.inference.inputs import find_inputs
from brainseg.inference.predict import predict
from tests.conftest import compose_config, phantom, write_nifti

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])
OUTPUTS = ("mask", "prob", "overlay")


def best_checkpoint(run: Path) -> Path:
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


def mixed_inputs(folder: Path) -> Path:
    """Two good NIfTI cases, a good 16-bit MIP PNG, and three bad files."""
    for i in range(2):
        write_nifti(folder / f"good{i}.nii.gz", phantom((40, 36, 10), seed=i)[0], AFFINE)
    hu = np.full((30, 40), -1000.0, np.float32)
    hu[5:25, 8:32] = 40.0
    MipCache(folder / "cache").store("mip", "key", Projection(hu, None, (0.8, 0.8)))
    (folder / "cache" / "images" / "mip.png").rename(folder / "mip.png")
    truncated = write_nifti(folder / "truncated.nii.gz", phantom((40, 36, 10))[0], AFFINE)
    truncated.write_bytes(truncated.read_bytes()[:-200])
    (folder / "text.nii.gz").write_text("this is not an image")
    write_nifti(folder / "flat.nii", np.zeros((8, 8), np.int16), AFFINE)
    (folder / "notes.txt").write_text("ignored: neither NIfTI, PNG nor DICOM")
    return folder


def test_folder_inputs_are_nifti_files_pngs_and_series_folders(tmp_path):
    folder = mixed_inputs(tmp_path / "in")
    found = {case.case_id for case in find_inputs(folder)}
    assert found == {"good0", "good1", "mip", "truncated", "text", "flat"}


def test_good_cases_get_three_pngs_bad_ones_nothing_and_the_failures_are_listed(trained_run, tmp_path):
    """The default model takes extra projections besides the MIP: a MIP picture cannot give them."""
    folder = mixed_inputs(tmp_path / "in")
    out = tmp_path / "out"
    cfg = compose_config([f"ckpt_path={best_checkpoint(trained_run)}", f"input={folder}", f"output={out}"], tmp_path, "predict")
    failures = predict(cfg)
    assert len(failures) == 4
    assert all("\n" not in line for line in failures)
    assert {Path(line.split(":")[0]).name for line in failures} == {"truncated.nii.gz", "text.nii.gz", "flat.nii", "mip.png"}
    for case_id in ("good0", "good1"):
        for name in OUTPUTS:
            assert (out / f"{case_id}_{name}.png").is_file()
    for case_id in ("truncated", "text", "flat", "mip"):
        assert not list(out.glob(f"{case_id}_*"))
    assert not list(out.glob(".*tmp"))
    with open(out / "predictions.csv") as stream:
        status = {row["case_id"]: (row["status"], row["reason"]) for row in csv.DictReader(stream)}
    assert {case_id for case_id, (state, _) in status.items() if state == "failed"} == {"truncated", "text", "flat", "mip"}
    assert {case_id for case_id, (state, _) in status.items() if state in ("ok", "warning")} == {"good0", "good1"}
    assert status["flat"][1] in failures  # the failure's one line is its reason
    assert "mean, bone_mm, tissue_mm, top_tissue_mm projection(s) besides the MIP, which only a CT volume gives" in status["mip"][1]


def test_a_mip_only_model_predicts_mip_pngs(tmp_path):
    folder = mixed_inputs(tmp_path / "in")
    cfg = compose_config([f"ckpt_path={FIXTURES / 'mip_unet_v0.ckpt'}", f"input={folder / 'mip.png'}", f"output={tmp_path / 'out'}"], tmp_path, "predict")
    assert predict(cfg) == []
    for name in OUTPUTS:
        assert (tmp_path / "out" / f"mip_{name}.png").is_file()


def test_the_pngs_are_a_binary_mask_a_16_bit_probability_and_an_rgb_overlay_on_the_mip_grid(trained_run, tmp_path):
    image, _ = phantom((40, 36, 10))
    write_nifti(tmp_path / "case.nii.gz", image, AFFINE)
    cfg = compose_config([f"ckpt_path={best_checkpoint(trained_run)}", f"input={tmp_path / 'case.nii.gz'}", f"output={tmp_path}"], tmp_path, "predict")
    assert predict(cfg) == []
    mask, prob, overlay = (np.asarray(Image.open(tmp_path / f"case_{name}.png")) for name in OUTPUTS)
    assert mask.shape == prob.shape == (36, 40)  # display: rows A-P (y), cols R-L (x)
    scale = overlay.shape[0] // 36  # small MIPs' overlays are enlarged for viewing
    assert overlay.shape[:2] == (36 * scale, 40 * scale) and max(overlay.shape) >= 512
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert prob.dtype == np.uint16 or prob.dtype == np.int32
    np.testing.assert_array_equal(mask > 0, prob / 65535 > 0.5)
    assert overlay.ndim == 3 and overlay.shape[2] == 3


def test_a_dicom_series_folder_is_predicted_like_its_nifti(trained_run, tmp_path):
    pytest.importorskip("pydicom")
    from tests.data.test_dicom import write_series

    image, _ = phantom((40, 36, 10))
    write_series(tmp_path / "in" / "series", image, spacing=(0.8, 0.8, 2.0))
    write_nifti(tmp_path / "in" / "same.nii.gz", image, AFFINE)
    cfg = compose_config([f"ckpt_path={best_checkpoint(trained_run)}", f"input={tmp_path / 'in'}", f"output={tmp_path / 'out'}"], tmp_path, "predict")
    assert predict(cfg) == []
    series = np.asarray(Image.open(tmp_path / "out" / "series_prob.png"))
    nifti = np.asarray(Image.open(tmp_path / "out" / "same_prob.png"))
    np.testing.assert_array_equal(series, nifti)


@pytest.mark.slow
def test_the_command_exits_1_after_predicting_every_good_case(trained_run, tmp_path):
    folder = mixed_inputs(tmp_path / "in")
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "predict.py"), f"ckpt_path={best_checkpoint(trained_run)}",
         f"input={folder}", f"output={tmp_path / 'out'}", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "2 of 6 case(s) predicted" in result.stdout and "4 failed:" in result.stdout  # the MIP picture lacks the extra projections
    assert len(list((tmp_path / "out").glob("*_overlay.png"))) == 2


def not_ct_inputs(folder: Path) -> Path:
    """A CT phantom, an MRI-like volume (0..1000, no air at -1000) and an 8-bit export of the CT."""
    image, _ = phantom((40, 36, 12))
    write_nifti(folder / "ct.nii.gz", image, AFFINE)
    write_nifti(folder / "mri.nii.gz", np.clip(image.astype(np.float32) + 1000, 0, 1000).astype(np.int16), AFFINE)
    exported = np.round((np.clip(image.astype(np.float32), -100, 200) + 100) / 300 * 255).astype(np.uint8)
    write_nifti(folder / "export.nii.gz", exported, AFFINE)
    return folder


@pytest.mark.parametrize("model", ["volume", "mip"])
def test_inputs_that_are_not_ct_in_hu_get_one_warning_or_are_refused(tmp_path, model):
    folder = not_ct_inputs(tmp_path / "in")
    cfg = compose_config([f"input={folder}", f"output={tmp_path / 'warn'}", f"ckpt_path=pretrained:{model}"], tmp_path, "predict")
    assert predict(cfg) == []
    with open(tmp_path / "warn" / "predictions.csv") as stream:
        warnings = {row["case_id"]: row["warnings"] for row in csv.DictReader(stream)}
    assert "does not look like CT" not in warnings["ct"]
    assert "no air near -1000 HU" in warnings["mri"] and "8-bit picture export" in warnings["export"]
    cfg = compose_config([f"input={folder}", f"output={tmp_path / 'fail'}", f"ckpt_path=pretrained:{model}", "on_non_ct=fail"], tmp_path, "predict")
    failures = predict(cfg)
    assert sorted(Path(line.split(":")[0]).name for line in failures) == ["export.nii.gz", "mri.nii.gz"]
    assert all("on_non_ct=fail" in line and "\n" not in line for line in failures)
