"""Test-time augmentation: the left-right flip, averaged in probability space.

A head is roughly mirror-symmetric, so a network should say the same of a scan and of its
mirror image; where it does not, averaging both answers cancels part of its error. With
``tta=flip`` a predictor's probability of input ``x`` becomes

    (p(x) + flip(p(flip(x)))) / 2

where ``flip`` mirrors the patient's left-right axis of the network input: the columns of a MIP
in display orientation, the R axis of an (S, R, A) slice. It costs one more forward pass per
input (both go through the network as one batch of twice the size).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from brainseg.errors import ConfigError

TTA_MODES = ("none", "flip")


def check_tta(mode: str) -> str:
    """The mode, if known.

    Raises:
        ConfigError: not one of ``TTA_MODES``.
    """
    if mode not in TTA_MODES:
        raise ConfigError(f"tta must be one of {TTA_MODES}, got {mode!r}")
    return mode


def augmented(probabilities: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, mode: str, lr_dim: int) -> torch.Tensor:
    """``probabilities(images)``, or with ``mode='flip'`` its mean with the mirrored prediction of the
    mirrored input (mirrored along ``lr_dim``), computed as one batch of twice the size."""
    if mode == "none":
        return probabilities(images)
    both = probabilities(torch.cat([images, images.flip(lr_dim)]))
    plain, mirrored = both[: len(images)], both[len(images) :]
    return (plain + mirrored.flip(lr_dim)) / 2
