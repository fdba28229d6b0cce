"""A checkpoint becomes a predictor that preprocesses exactly as training did, and loading never runs code."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from brainseg.checkpoint import read_checkpoint
from brainseg.data.mip_datamodule import MipDataModule
from brainseg.data.projection import MipCache, Projection
from brainseg.errors import BadCheckpointError
from brainseg.inference.inputs import read_mip_png
from brainseg.inference.predict import load_predictor


def best_checkpoint(run: Path) -> Path:
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


@pytest.fixture(scope="module")
def datamodule(trained_run, tmp_path_factory):
    """The training run's data as training saw it (same dataset, split, size, projections)."""
    extra = load_predictor(best_checkpoint(trained_run)).preprocessing.extra_projections
    data = MipDataModule(root=str(trained_run.parent / "dataset"), cache_dir=str(tmp_path_factory.mktemp("cache")), image_size=32,
                         extra_projections=extra)
    data.prepare_data()
    data.setup()
    return data


def test_the_predictor_carries_the_checkpoints_network_threshold_and_preprocessing(trained_run):
    predictor = load_predictor(best_checkpoint(trained_run))
    checkpoint = torch.load(best_checkpoint(trained_run), weights_only=True)
    assert predictor.threshold == checkpoint["brainseg"]["threshold"]
    assert predictor.preprocessing.to_dict() == checkpoint["brainseg"]["preprocessing"]
    assert predictor.image_size == 32
    for name, value in predictor.net.state_dict().items():
        torch.testing.assert_close(value, checkpoint["state_dict"][f"net.{name}"])
    assert not predictor.net.training


def test_network_input_is_what_the_datamodule_feeds_training(trained_run, datamodule):
    predictor = load_predictor(best_checkpoint(trained_run))
    case = datamodule.cases["test"][0]
    projection = datamodule.prepared.items[case.case_id]
    assert predictor.preprocessing.extra_projections == ("mean", "bone_mm", "tissue_mm", "top_tissue_mm")  # the default
    image, fit = predictor.network_input(projection)
    assert image.shape == (5, 32, 32)
    torch.testing.assert_close(image, case.image)
    assert fit == case.fit


def test_probabilities_come_back_on_the_projection_grid(trained_run, datamodule):
    predictor = load_predictor(best_checkpoint(trained_run))
    projection = next(iter(datamodule.prepared.items.values()))
    prediction = predictor.predict(projection)
    assert prediction.probability.shape == prediction.mask.shape == projection.image.shape
    assert prediction.network_probability.shape == (32, 32)
    assert 0.0 <= prediction.probability.min() and prediction.probability.max() <= 1.0
    np.testing.assert_array_equal(prediction.mask, prediction.probability > predictor.threshold)


def test_a_threshold_override_must_be_a_probability(trained_run):
    assert load_predictor(best_checkpoint(trained_run), threshold=0.3).threshold == 0.3
    with pytest.raises(ValueError, match=r"\(0, 1\)"):
        load_predictor(best_checkpoint(trained_run), threshold=1.5)


class Payload:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_carrying_a_pickle_payload_is_refused_and_the_payload_never_runs(trained_run, tmp_path):
    checkpoint = torch.load(best_checkpoint(trained_run), weights_only=True)
    marker = tmp_path / "payload_ran"
    checkpoint["brainseg"]["extra"] = Payload(marker)
    crafted = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, crafted)
    with pytest.raises(BadCheckpointError, match="refused: not a weights-only checkpoint") as error:
        load_predictor(crafted)
    assert "\n" not in str(error.value)
    assert not marker.exists()
    torch.load(crafted, weights_only=False)  # the same file, loaded unsafely: the payload is real
    assert marker.exists()


@pytest.mark.parametrize(
    "content, message",
    [
        ({"state_dict": {}}, "no 'brainseg' section"),
        ("not a dict", "no 'brainseg' section"),
    ],
)
def test_checkpoints_not_written_by_brainseg_are_refused(tmp_path, content, message):
    path = tmp_path / "other.ckpt"
    torch.save(content, path)
    with pytest.raises(BadCheckpointError, match=message):
        read_checkpoint(path)


def test_weights_that_do_not_fit_the_described_network_are_refused(trained_run, tmp_path):
    checkpoint = torch.load(best_checkpoint(trained_run), weights_only=True)
    checkpoint["brainseg"]["net"]["channels"] = [8, 16]
    torch.save(checkpoint, tmp_path / "mismatch.ckpt")
    with pytest.raises(BadCheckpointError, match="do not fit"):
        load_predictor(tmp_path / "mismatch.ckpt")


def test_garbage_and_missing_files_are_refused_in_one_line(tmp_path):
    (tmp_path / "garbage.ckpt").write_bytes(b"\x00not a checkpoint at all")
    with pytest.raises(BadCheckpointError, match="not a readable checkpoint"):
        read_checkpoint(tmp_path / "garbage.ckpt")
    with pytest.raises(BadCheckpointError, match="no such checkpoint"):
        read_checkpoint(tmp_path / "missing.ckpt")


def test_16_bit_mip_pngs_are_hu_plus_32768_as_the_cache_writes_them(tmp_path):
    hu = np.array([[-1024.0, 0.0, 40.0], [300.0, 1200.0, -500.0]], np.float32)
    MipCache(tmp_path).store("case", "key", Projection(hu, None, (0.5, 0.75)))
    projection = read_mip_png(MipCache(tmp_path).image_path("case"), hu_window=(-100, 1900))
    np.testing.assert_array_equal(projection.image, hu)
    assert projection.spacing == (0.5, 0.75)


def test_8_bit_mip_pngs_are_taken_as_windowed_with_the_models_window(tmp_path):
    Image.fromarray(np.array([[0, 255], [51, 102]], np.uint8)).save(tmp_path / "mip.png")
    projection = read_mip_png(tmp_path / "mip.png", hu_window=(-100, 1900))
    np.testing.assert_allclose(projection.image, [[-100, 1900], [300, 700]])
    assert projection.spacing == (1.0, 1.0)  # no spacing chunk: square pixels
