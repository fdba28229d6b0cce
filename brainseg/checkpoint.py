"""The contract between training and inference: what a checkpoint holds and how it is read.

Checkpoints are read with ``torch.load(weights_only=True)``: only tensors and plain containers
are unpickled, so a file that tries to run code is refused before anything runs. Everything
prediction needs travels in ``checkpoint["brainseg"]``: the network's class name and
arguments, the threshold, and the :class:`~brainseg.data.preprocessing.Preprocessing` it was
trained with. Nothing else is read, and nothing here imports Lightning.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from brainseg.data.preprocessing import Preprocessing
from brainseg.errors import BadCheckpointError, ConfigError
from brainseg.models.lean_unet import LeanUNet
from brainseg.models.unet import UNet

NETWORKS = {"LeanUNet": LeanUNet, "UNet": UNet}  # checkpoint["brainseg"]["net"]["name"] -> class


def read_checkpoint(path: str | Path) -> dict:
    """The checkpoint's contents, loaded weights-only, with its ``brainseg`` section checked.

    Raises:
        BadCheckpointError: missing, holding anything but tensors and plain types, or not brainseg's.
    """
    path = Path(path)
    if not path.is_file():
        raise BadCheckpointError(path, "no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise BadCheckpointError(path, "not a readable checkpoint (not a torch.save archive)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        reason = f"loading it would call {found.group(1)}" if found else "it holds more than tensors and plain types"
        raise BadCheckpointError(path, f"refused: not a weights-only checkpoint ({reason})") from None
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise BadCheckpointError(path, f"not a readable checkpoint ({type(error).__name__})") from None
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("brainseg"), dict):
        raise BadCheckpointError(path, "no 'brainseg' section: not a checkpoint written by brainseg training")
    if "state_dict" not in checkpoint:
        raise BadCheckpointError(path, "no 'state_dict' in the checkpoint")
    return checkpoint


def describe(net: nn.Module, threshold: float, preprocessing: Preprocessing | None) -> dict:
    """The ``brainseg`` section of a checkpoint, as plain types: the network's class name and
    arguments, the threshold and the preprocessing (what :func:`load_model` reads)."""
    return {
        "net": {"name": type(net).__name__, **getattr(net, "config", {})},
        "threshold": threshold,
        "preprocessing": preprocessing.to_dict() if preprocessing is not None else None,
    }


def save_network(net: nn.Module, preprocessing: Preprocessing, path: str | Path, threshold: float = 0.5) -> Path:
    """A checkpoint holding only what prediction reads: the ``net.*`` weights and :func:`describe`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {f"net.{key}": value for key, value in net.state_dict().items()}
    torch.save({"state_dict": weights, "brainseg": describe(net, threshold, preprocessing)}, path)
    return path


def build_network(checkpoint: dict, path: str | Path = "checkpoint") -> nn.Module:
    """The network ``checkpoint["brainseg"]["net"]`` describes, with the ``net.*`` weights loaded, in eval mode."""
    config = dict(checkpoint["brainseg"]["net"])
    name = config.pop("name", None)
    if name not in NETWORKS:
        raise BadCheckpointError(path, f"unknown network {name!r}; known: {sorted(NETWORKS)}")
    net = NETWORKS[name](**config)
    weights = {key[len("net.") :]: value for key, value in checkpoint["state_dict"].items() if key.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as error:
        raise BadCheckpointError(path, f"weights do not fit the {name} it describes ({str(error).splitlines()[0]})") from None
    return net.eval()


@dataclass
class TrainedModel:
    """What a checkpoint describes: the network (eval mode), its threshold and its preprocessing."""

    net: nn.Module
    preprocessing: Preprocessing
    threshold: float


def read_preprocessing(checkpoint: dict, path: str | Path = "checkpoint") -> Preprocessing:
    """The checkpoint's :class:`Preprocessing` (checkpoints of earlier versions included).

    Raises:
        BadCheckpointError: none recorded, or an invalid record.
    """
    record = checkpoint["brainseg"].get("preprocessing")
    if not record:
        raise BadCheckpointError(path, "no preprocessing recorded (trained without a brainseg DataModule)")
    try:
        return Preprocessing.from_dict(record)
    except (ValueError, TypeError) as error:
        raise BadCheckpointError(path, f"invalid preprocessing record ({error})") from None


def load_model(path: str | Path, device: str = "cpu", threshold: float | None = None) -> TrainedModel:
    """Read a checkpoint weights-only: its network on ``device``, threshold and preprocessing.

    Args:
        threshold: overrides the checkpoint's threshold when given; must be in (0, 1).

    Raises:
        BadCheckpointError: see :func:`read_checkpoint` and :func:`build_network`.
        ConfigError: a threshold outside (0, 1).
    """
    checkpoint = read_checkpoint(path)
    preprocessing = read_preprocessing(checkpoint, path)
    chosen = float(checkpoint["brainseg"]["threshold"] if threshold is None else threshold)
    if not 0.0 < chosen < 1.0:
        raise ConfigError(f"threshold applies to probabilities and must be in (0, 1), got {chosen}")
    return TrainedModel(build_network(checkpoint, path).to(device), preprocessing, chosen)


def checkpoint_mode(path: str | Path) -> str:
    """'mip' or 'slices': the representation the checkpoint was trained on (read weights-only)."""
    checkpoint = read_checkpoint(path)
    return read_preprocessing(checkpoint, path).mode
