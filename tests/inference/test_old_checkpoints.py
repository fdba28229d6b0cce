"""Checkpoints written before LeanUNet and the Preprocessing record still load and predict as they did.

The two fixtures were trained by brainseg at commit fc6ce7a (the U-Net now called
``model=unet_classic``, preprocessing recorded as a plain dict with ``window`` and ``image_size``),
with the optimizer state dropped to keep them small. The expected figures are what that commit's
``scripts/predict.py`` wrote for the same phantom.
"""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from brainseg.inference.mip import MipPredictor
from brainseg.inference.predict import load_predictor, predict
from brainseg.inference.volume import VolumePredictor
from brainseg.models import UNet
from tests.conftest import compose_config, phantom, write_nifti

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@pytest.fixture
def phantom_folder(tmp_path) -> Path:
    image, _ = phantom((80, 72, 40), seed=0)
    write_nifti(tmp_path / "in" / "phantom.nii.gz", image, np.diag([2.6, 2.6, 4.0, 1.0]))
    return tmp_path / "in"


@pytest.mark.parametrize(
    "name, predictor, mode, in_channels",
    [("mip_unet_v0.ckpt", MipPredictor, "mip", 1), ("slices_unet_v0.ckpt", VolumePredictor, "slices", 3)],
)
def test_an_old_checkpoint_loads_with_its_network_and_preprocessing(name, predictor, mode, in_channels):
    loaded = load_predictor(FIXTURES / name)
    assert isinstance(loaded, predictor) and isinstance(loaded.net, UNet)
    assert loaded.preprocessing.mode == mode and loaded.preprocessing.in_channels == in_channels
    assert loaded.preprocessing.input_size == 64  # the old record's image_size


def predict_with(checkpoint: str, inputs: Path, tmp_path: Path) -> Path:
    out = tmp_path / "out"
    cfg = compose_config([f"ckpt_path={FIXTURES / checkpoint}", f"input={inputs}", f"output={out}"], tmp_path, "predict")
    assert predict(cfg) == []
    return out


def test_an_old_mip_checkpoint_predicts_what_it_predicted_before(phantom_folder, tmp_path):
    out = predict_with("mip_unet_v0.ckpt", phantom_folder, tmp_path)
    probability = np.asarray(Image.open(out / "phantom_prob.png"), np.float64) / 65535
    assert probability.sum() == pytest.approx(2620.85, rel=1e-3)
    assert np.count_nonzero(np.asarray(Image.open(out / "phantom_mask.png"))) == pytest.approx(2830, rel=5e-3)
    assert _csv_value(out, "brain_area_mm2") == pytest.approx(19130.8, rel=5e-3)


def test_an_old_slice_checkpoint_segments_what_it_segmented_before(phantom_folder, tmp_path):
    out = predict_with("slices_unet_v0.ckpt", phantom_folder, tmp_path)
    mask = nib.load(out / "phantom_brainmask.nii.gz")
    assert mask.shape == (80, 72, 40)
    assert int(np.asarray(mask.dataobj).sum()) == pytest.approx(35388, rel=5e-3)
    assert _csv_value(out, "brain_volume_ml") == pytest.approx(956.9, rel=5e-3)


def _csv_value(folder: Path, column: str) -> float:
    header, row = (folder / "predictions.csv").read_text().splitlines()[:2]
    return float(row.split(",")[header.split(",").index(column)])
