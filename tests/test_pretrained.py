"""The shipped models: verified on load, small, stripped, packaged, rebuilt identically, and described truly by their card."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import tomllib
import torch

from brainseg import pretrained
from brainseg.checkpoint import read_checkpoint
from brainseg.errors import BadCheckpointError, ConfigError
from brainseg.inference.mip import MipPredictor
from brainseg.inference.predict import checkpoint_choice, load_predictor
from brainseg.inference.volume import VolumePredictor
from brainseg.training.release import strip_checkpoint, weights_sha256
from tests.conftest import CONF_DIR, compose_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_names_resolve_to_verified_files_and_paths_pass_through():
    assert pretrained.resolve_checkpoint(None) == pretrained.FOLDER / "volume.ckpt"
    assert pretrained.resolve_checkpoint("pretrained:mip") == pretrained.FOLDER / "mip.ckpt"
    assert pretrained.resolve_checkpoint("runs/x/best.ckpt") == Path("runs/x/best.ckpt")
    assert isinstance(load_predictor("pretrained:mip"), MipPredictor)
    assert isinstance(load_predictor(), VolumePredictor)  # no checkpoint: the 3-D model


def test_an_unknown_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="pretrained:brain: no such shipped model; shipped: pretrained:mip, pretrained:volume"):
        pretrained.resolve_checkpoint("pretrained:brain")


def test_a_damaged_or_replaced_file_is_refused_before_it_is_read(tmp_path):
    shutil.copytree(pretrained.FOLDER, tmp_path / "pretrained")
    victim = tmp_path / "pretrained" / "mip.ckpt"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the weights
    victim.write_bytes(bytes(data))
    with pytest.raises(BadCheckpointError, match="mip.ckpt: SHA-256 differs from the one in models.json"):
        pretrained.pretrained_path("mip", tmp_path / "pretrained")
    victim.unlink()
    with pytest.raises(BadCheckpointError, match="is missing"):
        pretrained.pretrained_path("mip", tmp_path / "pretrained")


@pytest.mark.parametrize("name", ["mip", "volume"])
def test_shipped_files_hold_only_what_inference_reads(name):
    path = pretrained.pretrained_path(name)
    checkpoint = read_checkpoint(path)
    assert set(checkpoint) == {"state_dict", "brainseg"}
    assert all(key.startswith("net.") for key in checkpoint["state_dict"])
    assert path.stat().st_size < 1_100_000  # at most about a megabyte: float32 weights and the record, no optimizer state
    record = pretrained.registry()["models"][name]
    assert record["sha256"] == pretrained.file_sha256(path) and record["bytes"] == path.stat().st_size
    assert record["weights_sha256"] == weights_sha256(checkpoint["state_dict"])
    assert record["held_out"]["cases"] == 20 and record["held_out"]["dice/mean"] > 0.95


def test_the_files_are_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(config["tool"]["setuptools"]["package-data"]["brainseg.pretrained"]) == {"*.ckpt", "models.json"}


def test_stripping_keeps_the_weights_and_is_byte_for_byte_repeatable(tmp_path):
    source = FIXTURES / "mip_unet_v0.ckpt"  # a full training checkpoint of an earlier release
    first = strip_checkpoint(source, tmp_path / "a" / "mip.ckpt")
    strip_checkpoint(source, tmp_path / "b" / "mip.ckpt")
    assert pretrained.file_sha256(tmp_path / "a" / "mip.ckpt") == pretrained.file_sha256(tmp_path / "b" / "mip.ckpt")
    assert (tmp_path / "a" / "mip.ckpt").stat().st_size < source.stat().st_size
    original = torch.load(source, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(value, original[key]) for key, value in first["state_dict"].items())
    assert isinstance(load_predictor(tmp_path / "a" / "mip.ckpt"), MipPredictor)


def test_model_choices_set_the_checkpoint_and_a_training_network_is_refused(tmp_path):
    pretrained.register_model_choices()
    assert compose_config(["input=x", "model=mip"], tmp_path, "predict").ckpt_path == "pretrained:mip"
    assert compose_config(["input=x"], tmp_path, "predict").ckpt_path is None  # the default: pretrained:volume
    with pytest.raises(ConfigError, match="model=mip or model=volume"):
        checkpoint_choice(compose_config(["input=x", "model=unet"], tmp_path, "predict"))
    assert compose_config([], tmp_path).model.net._target_.endswith("LeanUNet")  # training's model group is untouched


@pytest.mark.parametrize("name", ["mip", "volume"])
def test_the_model_card_shows_the_shipped_models_and_their_benchmark(name):
    """docs/models.md, models.json and the generalization figures must name the same files."""
    from benchmarks.model_card import markdown

    card = (ROOT / "docs" / "models.md").read_text()
    record = pretrained.registry()["models"][name]
    figures = json.loads((ROOT / "docs" / f"models_{name}.json").read_text())
    assert figures["sha256"] == record["sha256"] and figures["checkpoint"] == f"pretrained:{name}"
    assert f"`{record['sha256']}`" in card and f"{record['bytes']:,} bytes" in card
    table = [line for line in markdown(figures).splitlines() if line.startswith("|") or line.startswith("Dice drop")]
    assert all(line in card for line in table)
    assert (ROOT / "docs" / f"models_{name}.md").read_text() == markdown(figures)


@pytest.mark.slow
def test_release_models_rebuilds_identical_files(tmp_path):
    """The release is deterministic: two builds of a shrunk recipe give byte-identical checkpoints."""
    from brainseg.training.release import release_models

    tiny = '["trainer.max_epochs=1","data.synthetic.n_cases=5","callbacks.progress_bar=null","callbacks.validation_panel=null","logger=csv"]'
    records = []
    for build in ("first", "second"):
        cfg = compose_config([f"output={tmp_path / build / 'pretrained'}", f"run_overrides={tiny}", "held_out.n_cases=2",
                              f"conf_dir={CONF_DIR}"], tmp_path / build, "release_models")
        records.append(release_models(cfg)["models"])
    for name in ("mip", "volume"):
        first, second = records[0][name], records[1][name]
        assert first["sha256"] == second["sha256"] and first["held_out"] == second["held_out"]
        assert first["recipe"] == ("python train.py" if name == "mip" else "python train.py experiment=brain_volumes")
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", first["date"])
    assert pretrained.pretrained_path("volume", tmp_path / "first" / "pretrained").is_file()
