"""Exported models give the checkpoint's logits, and carry the preprocessing they need."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from brainseg.errors import ConfigError
from brainseg.inference.export import export, run_exported
from brainseg.inference.predict import load_predictor
from tests.conftest import compose_config


def best_checkpoint(run: Path) -> Path:
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


def export_config(run: Path, tmp_path: Path, fmt: str):
    return compose_config([f"ckpt_path={best_checkpoint(run)}", f"format={fmt}"], tmp_path, config_name="export")


def checkpoint_logits(run: Path, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return load_predictor(best_checkpoint(run)).net(images).numpy()


def test_torchscript_matches_the_checkpoint_and_embeds_its_preprocessing(trained_run, tmp_path):
    path = export(export_config(trained_run, tmp_path, "torchscript"))
    assert path.name == "model.pt"
    images = torch.rand(5, 5, 32, 32)  # the MIP and four extra projections
    np.testing.assert_allclose(run_exported(path, images), checkpoint_logits(trained_run, images), atol=1e-5)
    extra = {"brainseg.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    preprocessing = json.loads(extra["brainseg.json"])["preprocessing"]
    assert preprocessing["input_size"] == 32 and preprocessing["extra_projections"] == ["mean", "bone_mm", "tissue_mm", "top_tissue_mm"]


def test_onnx_matches_the_checkpoint_for_any_batch_size(trained_run, tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    path = export(export_config(trained_run, tmp_path, "onnx"))
    for batch in (1, 4):
        images = torch.rand(batch, 5, 32, 32)
        np.testing.assert_allclose(run_exported(path, images), checkpoint_logits(trained_run, images), atol=1e-4)
    properties = {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
    assert json.loads(properties["brainseg"])["threshold"] == 0.5


def test_an_unknown_format_is_refused(trained_run, tmp_path):
    with pytest.raises(ConfigError, match="format"):
        export(export_config(trained_run, tmp_path, "tflite"))
