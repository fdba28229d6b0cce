"""The models that ship with brainseg, so that prediction needs no training.

This folder holds the shipped checkpoints (``mip.ckpt``: 2-D footprint from a MIP;
``volume.ckpt``: 3-D mask from axial slices), stripped to what inference reads (the network's
weights and the ``brainseg`` section), and ``models.json``: per model its file, SHA-256, the
training recipe, the date and its scores. ``scripts/release_models.py`` rebuilds them
(:mod:`brainseg.training.release`); docs/models.md is their model card.

A checkpoint is named ``pretrained:<name>`` wherever a path is accepted (``ckpt_path=`` of
predict and evaluate, :func:`brainseg.segment`); :func:`resolve_checkpoint` turns the name into
the file after checking its SHA-256, so a damaged or swapped file is refused before it is read.
Nothing here imports torch.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from brainseg.errors import BadCheckpointError, ConfigError

PREFIX = "pretrained:"
FOLDER = Path(__file__).resolve().parent
REGISTRY = "models.json"
DEFAULT_MODEL = "volume"  # what prediction uses when given no checkpoint: the 3-D mask


def registry(folder: str | Path = FOLDER) -> dict:
    """``models.json`` of ``folder`` as a dict (``{"models": {}}`` when there is none yet)."""
    path = Path(folder) / REGISTRY
    if not path.is_file():
        return {"models": {}}
    return json.loads(path.read_text())


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_path(name: str, folder: str | Path = FOLDER) -> Path:
    """The shipped checkpoint called ``name`` ('mip' or 'volume'), its SHA-256 checked against ``models.json``.

    Raises:
        ConfigError: no model of that name is shipped.
        BadCheckpointError: the file is missing or its SHA-256 is not the recorded one.
    """
    models = registry(folder)["models"]
    if name not in models:
        known = ", ".join(f"{PREFIX}{known}" for known in sorted(models)) or "none (run scripts/release_models.py)"
        raise ConfigError(f"{PREFIX}{name}: no such shipped model; shipped: {known}")
    path = Path(folder) / models[name]["file"]
    if not path.is_file():
        raise BadCheckpointError(path, f"the shipped model {name!r} is missing; reinstall brainseg or run scripts/release_models.py")
    if file_sha256(path) != models[name]["sha256"]:
        raise BadCheckpointError(path, f"SHA-256 differs from the one in {REGISTRY}: the file is damaged or was replaced")
    return path


def resolve_checkpoint(ckpt_path: str | Path | None) -> Path:
    """A checkpoint path from ``ckpt_path``: ``pretrained:<name>`` (verified), a file path as given,
    or ``None`` for the default shipped model (``pretrained:volume``)."""
    if ckpt_path is None:
        return pretrained_path(DEFAULT_MODEL)
    text = str(ckpt_path)
    if text.startswith(PREFIX):
        return pretrained_path(text[len(PREFIX) :])
    return Path(ckpt_path)


def register_model_choices() -> None:
    """Let ``model=mip`` / ``model=volume`` pick a shipped model on a command line (predict, evaluate).

    Each choice only sets ``ckpt_path: pretrained:<name>``. They are registered by the entry points
    that predict, not in ``conf/model/``, whose options are training networks.
    """
    from hydra.core.config_store import (
        ConfigStore,  # imported here: a plain import of brainseg stays light
    )

    store = ConfigStore.instance()
    for name in ("mip", "volume"):
        store.store(group="model", name=name, node={"ckpt_path": f"{PREFIX}{name}"}, package="_global_")
