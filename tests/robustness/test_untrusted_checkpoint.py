"""Resuming training from a crafted checkpoint is refused and its payload never runs.

(Prediction and evaluation read checkpoints through ``read_checkpoint``: see tests/inference/test_mip.py.)
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

import brainseg.training.train
from brainseg.cli import EXPECTED_ERRORS
from brainseg.errors import BadCheckpointError
from brainseg.training.train import train
from tests.conftest import compose_config


class Payload:
    """Unpickling this calls os.system: what a malicious checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def crafted(trained_run, tmp_path) -> tuple[Path, Path]:
    """The trained run's last.ckpt with a payload added, and the file the payload would create."""
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    marker = tmp_path / "payload_ran"
    checkpoint["loops"]["payload"] = Payload(marker)
    path = tmp_path / "crafted.ckpt"
    torch.save(checkpoint, path)
    return path, marker


def resume_config(trained_run: Path, checkpoint: Path, tmp_path: Path):
    overrides = [
        "data=folder", f"data.root={trained_run.parent / 'dataset'}", f"data.cache_dir={trained_run.parent / 'cache'}",
        "data.image_size=32", "data.batch_size=4", "model.net.channels=[4,8]", "trainer.max_epochs=3", "logger=csv",
        "callbacks.validation_panel=null", "callbacks.progress_bar=null", f"ckpt_path={checkpoint}",
    ]
    return compose_config(overrides, tmp_path)


def test_resuming_from_a_checkpoint_carrying_a_pickle_payload_is_refused_in_one_line(trained_run, crafted, tmp_path):
    path, marker = crafted
    with pytest.raises(BadCheckpointError, match="refused: not a weights-only checkpoint") as error:
        train(resume_config(trained_run, path, tmp_path))
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    assert isinstance(error.value, EXPECTED_ERRORS)  # the command prints it as one line and exits 1
    assert not marker.exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_lightnings_own_loading_is_weights_only_even_when_the_environment_says_otherwise(trained_run, crafted, tmp_path, monkeypatch):
    """torch defaults to weights-only, but TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns a default off:
    training passes ``weights_only=True`` to Lightning explicitly (checked here past the early refusal)."""
    path, marker = crafted
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    monkeypatch.setattr(brainseg.training.train, "resolve_checkpoint", lambda ckpt_path, output_dir: ckpt_path)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        train(resume_config(trained_run, path, tmp_path))
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the same file, loaded unsafely: the payload is real
    assert marker.exists()
