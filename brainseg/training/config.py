"""Checks and helpers for composed configs: refuse bad values before any work starts."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig

from brainseg.errors import ConfigError


def check_config(cfg: DictConfig) -> None:
    """Refuse values that would only fail (or silently misbehave) after minutes of work.

    Raises:
        ConfigError: naming the key, the value and the constraint.
    """
    lr = cfg.optimizer.get("lr")
    if lr is not None and not lr > 0:
        raise ConfigError(f"optimizer.lr must be > 0, got {lr}")
    data = cfg.data
    hu_window = data.get("hu_window")
    if hu_window is not None and not float(hu_window[0]) < float(hu_window[1]):
        raise ConfigError(f"data.hu_window must be [low, high] with low < high, got {list(hu_window)}")
    divisor = input_divisor(cfg.model.net)
    for key in ("image_size", "crop_size"):  # the MIP network input; the slice training crop
        size = data.get(key)
        if divisor and size is not None and size % divisor:
            raise ConfigError(
                f"data.{key}={size} is not divisible by {divisor}, which {cfg.model.net._target_.rsplit('.', 1)[-1]} "
                f"needs with model.net.channels={list(cfg.model.net.channels)}"
                + (f" and top_stride={cfg.model.net.top_stride}" if "top_stride" in cfg.model.net else "")
            )
    if data.get("batch_size") is not None and data.batch_size < 1:
        raise ConfigError(f"data.batch_size must be >= 1, got {data.batch_size}")
    if data.get("on_bad_case") not in (None, "skip", "fail"):
        raise ConfigError(f"data.on_bad_case must be 'skip' or 'fail', got {data.on_bad_case!r}")
    if data.get("normalization") not in (None, "window", "zscore"):
        raise ConfigError(f"data.normalization must be 'window' or 'zscore', got {data.normalization!r}")
    split = data.get("split")
    if split is not None and (any(float(v) < 0 for v in split.values()) or not float(split.get("train", 0)) > 0):
        raise ConfigError(f"data.split fractions must be >= 0 with train > 0, got {dict(split)}")
    num_folds, fold = data.get("num_folds"), data.get("fold")
    if num_folds is not None and not int(num_folds) >= 2:
        raise ConfigError(f"data.num_folds must be >= 2 (or null for one split), got {num_folds}")
    if num_folds is not None and not (fold is not None and 0 <= int(fold) < int(num_folds)):
        raise ConfigError(f"data.fold must be in 0..{int(num_folds) - 1} for data.num_folds={num_folds}, got {fold}")


def input_divisor(net: DictConfig) -> int | None:
    """What the configured network needs the input side to be a multiple of, if it says
    (brainseg's networks do, through ``input_divisor(channels[, top_stride])``; others are not checked)."""
    if "channels" not in net or "_target_" not in net:
        return None
    try:
        rule = getattr(get_class(net._target_), "input_divisor", None)
    except Exception:  # noqa: BLE001 - an unknown class fails at instantiation, with Hydra's message
        return None
    if not rule:
        return None
    return int(rule(list(net.channels), int(net.top_stride))) if "top_stride" in net else int(rule(list(net.channels)))


def instantiate_keyed(group: DictConfig | None) -> list:
    """Instantiate every ``_target_`` entry of a keyed group (callbacks, loggers); ``null`` entries are off."""
    if not group:
        return []
    return [instantiate(entry) for entry in group.values() if entry is not None and "_target_" in entry]


def resolve_checkpoint(ckpt_path: str | None, output_dir: str) -> str | None:
    """``'last'`` means this run folder's ``checkpoints/last.ckpt``; a path must exist.

    The file is read weights-only once here, so that a checkpoint that would run code when
    unpickled (or is not brainseg's) is refused in one line before any work starts.

    Raises:
        ConfigError: no such file. BadCheckpointError: not a weights-only brainseg checkpoint.
    """
    if ckpt_path is None:
        return None
    path = Path(output_dir) / "checkpoints" / "last.ckpt" if ckpt_path == "last" else Path(ckpt_path)
    if not path.is_file() and ckpt_path == "last":
        raise ConfigError(
            f"ckpt_path=last but {path} does not exist; resume in the old run folder with "
            "hydra.run.dir=<that run folder> ckpt_path=last, or give a checkpoint path"
        )
    if not path.is_file():
        raise ConfigError(f"ckpt_path={ckpt_path}: no such checkpoint file")
    from brainseg.checkpoint import (
        read_checkpoint,  # imported here: it pulls in torch and the network
    )

    read_checkpoint(path)
    return str(path)


def in_multirun() -> bool:
    """Whether this process runs a job of a Hydra multirun (``-m``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
