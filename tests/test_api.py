"""Brain masks with no training: the shipped models from Python and from the command line, one code path."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

import brainseg
from brainseg.api import PREDICT_DEFAULTS
from brainseg.data.baseline import dice
from brainseg.data.nifti import open_nifti
from brainseg.data.projection import project_image, project_mask
from brainseg.errors import ConfigError
from brainseg.inference.predict import predict
from brainseg.synthetic import SyntheticConfig, case_seed, generate_case, write_case
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> tuple[Path, Path]:
    """One synthetic head CTA no shipped model trained on (default preset, another seed): image and mask paths."""
    root = tmp_path_factory.mktemp("head")
    return write_case(generate_case(case_seed(4242, 0), SyntheticConfig()), root, "head")


def test_import_brainseg_stays_light():
    code = "import sys, brainseg; print('torch' in sys.modules, callable(brainseg.segment), 'pytorch_lightning' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.split() == ["False", "True", "False"]  # torch comes with the first call, Lightning never


def test_segment_gives_a_mask_on_the_inputs_exact_grid_that_finds_the_brain(head):
    image_path, truth_path = head
    mask = brainseg.segment(image_path)
    image, truth = nib.load(image_path), nib.load(truth_path)
    assert mask.shape == image.shape and mask.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(mask.affine, image.affine)
    np.testing.assert_array_equal(mask.header.get_sform(), image.header.get_sform())
    np.testing.assert_array_equal(mask.header.get_qform(), image.header.get_qform())
    assert (int(mask.header["sform_code"]), int(mask.header["qform_code"])) == (int(image.header["sform_code"]), int(image.header["qform_code"]))
    assert dice(np.asarray(mask.dataobj) > 0, np.asarray(truth.dataobj) > 0) > 0.9


def test_segment_takes_a_nibabel_image_and_predicts_what_the_command_line_writes(head, tmp_path):
    image_path, _ = head
    from_image = brainseg.segment(nib.load(image_path))
    cfg = compose_config([f"input={image_path}", f"output={tmp_path}"], tmp_path, "predict")  # no ckpt_path: the shipped 3-D model
    assert predict(cfg) == []
    written = np.asarray(nib.load(tmp_path / "head_brainmask.nii.gz").dataobj)
    # The image goes through an uncompressed temporary .nii, the file through its .nii.gz: the slabs
    # are read in other chunks, so float rounding may flip a voxel whose probability is at the threshold.
    assert np.count_nonzero(np.asarray(from_image.dataobj) != written) <= 1e-5 * written.size
    assert (tmp_path / "head_brain_mip.png").is_file()


def test_the_3d_model_also_writes_its_masks_footprint_a_mip_mask_on_the_mips_grid(head, tmp_path):
    image_path, truth_path = head
    cfg = compose_config([f"input={image_path}", f"output={tmp_path}", "volumes.brain_mip=false"], tmp_path, "predict")
    assert predict(cfg) == []
    footprint = np.asarray(Image.open(tmp_path / "head_footprint.png"))
    written = np.asarray(nib.load(tmp_path / "head_brainmask.nii.gz").dataobj) != 0
    image = open_nifti(image_path)
    np.testing.assert_array_equal(footprint, project_mask(written, image) * 255)
    assert footprint.shape == project_image(image)[0].shape  # the MIP's grid, display orientation
    assert dice(footprint > 0, project_mask(np.asarray(nib.load(truth_path).dataobj) != 0, image) > 0) > 0.95


def test_footprint_is_the_3d_masks_union_along_s_on_the_mips_grid(head):
    image_path, truth_path = head
    footprint = brainseg.footprint(image_path)
    image = open_nifti(image_path)
    np.testing.assert_array_equal(footprint, project_mask(np.asarray(brainseg.segment(image_path).dataobj) != 0, image))
    assert footprint.shape == brainseg.mip(image_path).mask.shape and footprint.dtype == np.uint8
    assert dice(footprint > 0, project_mask(np.asarray(nib.load(truth_path).dataobj) != 0, image) > 0) > 0.95
    with pytest.raises(ConfigError, match="not a 3-D"):
        brainseg.footprint(image_path, model="mip")


def test_mip_gives_the_footprint_and_the_projection(head):
    image_path, _ = head
    result = brainseg.mip(image_path)
    assert result.mask.shape == result.mip.shape == result.probability.shape
    assert set(np.unique(result.mask)) <= {0, 1} and result.mip.min() < -900  # HU: air around the head
    assert 8000 < result.area_mm2 < 32000 and result.warnings == []


def test_a_dicom_study_through_the_api_one_mask_per_axial_ct_series(tmp_path):
    pytest.importorskip("pydicom")
    from tests.data.test_dicom_study import write_study

    study = write_study(tmp_path / "study")
    with pytest.raises(ConfigError, match="expected one image, found 2"):
        brainseg.segment(study)  # two axial CT series: which one?
    report = brainseg.predict(study, tmp_path / "out")
    assert report["predicted"] == ["PAT-001_2_CTA_Head_1.0_Hv40", "PAT-001_3_CTA_Head_tilt"]
    assert {entry["series_number"]: entry["reason"].split(" ")[0] for entry in report["skipped_series"]} == {
        "1": "localizer", "4": "not", "5": "modality", "6": "secondary", "7": "not"}
    for name in report["predicted"]:
        assert nib.load(tmp_path / "out" / f"{name}_brainmask.nii.gz").shape == (40, 36, 12)
    single = brainseg.segment(study / "PAT-001" / "STUDY1" / "SE2")  # a series folder: one image
    assert single.shape == (40, 36, 12)


def test_the_api_refuses_a_model_of_the_other_kind(head):
    with pytest.raises(ConfigError, match="not a 3-D"):
        brainseg.segment(head[0], model="mip")


def test_the_api_defaults_are_conf_predict_yaml(tmp_path):
    composed = OmegaConf.to_container(compose_config(["input=x"], tmp_path, "predict"))
    assert {key: composed[key] for key in PREDICT_DEFAULTS} == PREDICT_DEFAULTS


@pytest.mark.slow
def test_the_command_line_predicts_a_study_with_no_checkpoint(tmp_path):
    """Done when: `python scripts/predict.py input=<study>` writes a mask per series and names each one left out."""
    pytest.importorskip("pydicom")
    from tests.conftest import phantom
    from tests.data.test_dicom_study import write_study, write_volume

    study = write_study(tmp_path / "study")
    broken = study / "PAT-001" / "STUDY1" / "SE8"
    write_volume(broken, phantom((40, 36, 12))[0], 8, "CTA broken")
    victim = sorted(broken.iterdir())[3]
    victim.write_bytes(victim.read_bytes()[:-100])  # a transfer cut short
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "predict.py"), f"input={study}", f"output={out}",
                             f"hydra.run.dir={tmp_path / 'run'}"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 1, result.stderr[-2000:]  # the broken series failed, after the others
    assert "2 of 3 case(s) predicted" in result.stdout and "5 DICOM series left out:" in result.stdout
    assert "PAT-001_1_Topogram_0.6_T20f: localizer" in result.stdout
    assert sorted(path.name for path in out.glob("*_brainmask.nii.gz")) == [
        "PAT-001_2_CTA_Head_1.0_Hv40_brainmask.nii.gz", "PAT-001_3_CTA_Head_tilt_brainmask.nii.gz"]
    with open(out / "predictions.csv") as stream:
        status = {row["case_id"]: row["status"] for row in csv.DictReader(stream)}
    assert sorted(status.values()).count("skipped") == 5 and status["PAT-001_8_CTA_broken"] == "failed"
    report = json.loads((out / "predict_report.json").read_text())
    assert report["checkpoint"] == "pretrained:volume" and len(report["skipped_series"]) == 5
    assert "cannot decode pixel data" in report["failed"][0]["error"]
    assert "gantry tilt" in report["warnings"]["PAT-001_3_CTA_Head_tilt"]
