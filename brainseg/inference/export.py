"""A checkpoint's network as a portable model: ONNX (optional extra) or TorchScript.

The exported model is the network alone: a normalized ``(N, C, S, S)`` float32 input in
(``C`` = 1 for a MIP, the slice and its neighbours for a 2.5-D slice model; ``S`` = the
checkpoint's ``input_size``; any batch size), logits out. What a deployment needs
around it (the square fit, the normalization, the threshold: ``checkpoint["brainseg"]``) is
embedded as JSON, in the ONNX model's metadata under ``brainseg`` or in the TorchScript
archive's extra file ``brainseg.json``. After writing, the model is run next to the checkpoint's
network on the same input and the largest logit difference is checked against ``atol``.
"""

from __future__ import annotations

import json
import logging
import warnings
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from brainseg.checkpoint import build_network, read_checkpoint, read_preprocessing
from brainseg.errors import ConfigError

log = logging.getLogger(__name__)

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
METADATA_KEY = "brainseg"


def export_onnx(net: torch.nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    """ONNX through torch's exporter (needs onnx and onnxscript), with a dynamic batch size."""
    try:
        import onnx
    except ImportError:
        raise ConfigError("format=onnx needs the optional extra: pip install 'brainseg[onnx]' (onnx, onnxscript, onnxruntime)") from None
    batch = torch.export.Dim("batch", min=1, max=4096)
    with _quiet("torch.onnx", "onnxscript", "onnx_ir"), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch internals, nothing a user can act on
        program = torch.onnx.export(
            net, (example,), dynamo=True, input_names=["image"], output_names=["logits"], dynamic_shapes={"x": {0: batch}}, verbose=False
        )
    model = program.model_proto
    onnx.helper.set_model_props(model, {METADATA_KEY: metadata})
    onnx.save(model, str(path))


@contextmanager
def _quiet(*loggers: str):
    """Hold the exporter's progress chatter (a dozen INFO lines per export) back to errors."""
    saved = {name: logging.getLogger(name).level for name in loggers}
    for name in loggers:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def export_torchscript(net: torch.nn.Module, example: torch.Tensor, path: Path, metadata: str) -> None:
    """TorchScript by tracing (the network has no data-dependent control flow at a fixed size)."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the input-size check is constant at a fixed size
        traced = torch.jit.trace(net, example)
    torch.jit.save(traced, str(path), _extra_files={f"{METADATA_KEY}.json": metadata})


def run_exported(path: Path, images: torch.Tensor) -> np.ndarray:
    """Logits of an exported model for ``images``, with the runtime of its format."""
    if path.suffix == FORMATS["onnx"]:
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {"image": images.numpy()})[0]
    model = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return model(images).numpy()


def verify_export(net: torch.nn.Module, path: Path, shape: tuple[int, int, int], atol: float, seed: int = 0) -> float:
    """Largest absolute logit difference between the exported model and ``net`` on a random batch
    of 3 inputs of ``shape`` (channels, height, width).

    Raises:
        RuntimeError: the difference is above ``atol``.
    """
    images = torch.rand((3, *shape), generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = net(images).numpy()
    difference = float(np.abs(run_exported(path, images) - expected).max())
    if difference > atol:
        raise RuntimeError(f"{path}: exported model differs from the checkpoint by {difference:.3g} (> atol {atol:g})")
    return difference


def export(cfg: DictConfig) -> Path:
    """Write ``cfg.ckpt_path``'s network in ``cfg.format``; verify it; return the file written."""
    if cfg.format not in FORMATS:
        raise ConfigError(f"format must be one of {sorted(FORMATS)}, got {cfg.format!r}")
    checkpoint = read_checkpoint(cfg.ckpt_path)
    net = build_network(checkpoint, cfg.ckpt_path)
    meta = checkpoint["brainseg"]
    preprocessing = read_preprocessing(checkpoint, cfg.ckpt_path)
    shape = (preprocessing.in_channels, preprocessing.input_size, preprocessing.input_size)
    path = Path(cfg.output) if cfg.get("output") else Path(cfg.paths.output_dir) / f"model{FORMATS[cfg.format]}"
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = json.dumps({**meta, "input": "image (N, C, S, S) float32, normalized", "output": "logits (N, 1, S, S)"})
    example = torch.zeros((1, *shape))
    (export_onnx if cfg.format == "onnx" else export_torchscript)(net, example, path, metadata)
    message = f"wrote {path}"
    if cfg.get("verify", True):
        if cfg.format == "onnx" and not _has("onnxruntime"):
            log.warning("onnxruntime is not installed: the ONNX model was not verified")
        else:
            try:
                difference = verify_export(net, path, shape, float(cfg.atol))
            except RuntimeError:
                path.unlink(missing_ok=True)  # a model that does not match is not left to be deployed
                raise
            message += f" (max |logit difference| vs checkpoint: {difference:.2g})"
    log.info(message)
    print(message)
    return path


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None
