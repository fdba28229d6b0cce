"""Segmentation losses. Every loss takes LOGITS and binary {0, 1} targets.

The sigmoid is applied exactly once, inside the loss (the network has no final activation).
Applying it twice is what froze the old pipeline at ln 2 = 0.6931: a sigmoid output in (0, 1)
fed to ``BCEWithLogitsLoss`` is squashed again into (0.5, 0.73), the gradient nearly vanishes
and the loss sits at ln 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _flatten_per_image(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if logits.shape != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ in shape")
    return torch.sigmoid(logits.float()).flatten(1), target.float().flatten(1)


def soft_tversky(logits: torch.Tensor, target: torch.Tensor, alpha: float, beta: float, smooth: float) -> torch.Tensor:
    """1 - Tversky index per image, averaged; alpha weighs false positives, beta false negatives."""
    probability, target = _flatten_per_image(logits, target)
    true_positive = (probability * target).sum(1)
    false_positive = (probability * (1 - target)).sum(1)
    false_negative = ((1 - probability) * target).sum(1)
    index = (true_positive + smooth) / (true_positive + alpha * false_positive + beta * false_negative + smooth)
    return (1 - index).mean()


class DiceLoss(nn.Module):
    """Soft Dice loss, ``1 - (2|P.T| + s) / (|P| + |T| + s)`` per image, averaged over the batch.

    Args:
        smooth: added to numerator and denominator, so an image with an empty mask and an empty
            prediction scores 0 loss instead of 0/0. Defaults to 1.
    """

    def __init__(self, smooth: float = 1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # Tversky with alpha = beta = 1/2 and smooth/2 is exactly the Dice formula above.
        return soft_tversky(logits, target, 0.5, 0.5, self.smooth / 2)


class TverskyLoss(nn.Module):
    """Tversky loss (Salehi et al. 2017); alpha = beta = 0.5 is the Dice loss.

    Args:
        alpha: weight of false positives. Defaults to 0.3.
        beta: weight of false negatives. Defaults to 0.7.
        smooth: Defaults to 1.
    """

    def __init__(self, alpha: float = 0.3, beta: float = 0.7, smooth: float = 1.0):
        super().__init__()
        if alpha < 0 or beta < 0 or alpha + beta == 0:
            raise ValueError(f"alpha and beta must be >= 0 and not both 0, got {alpha}, {beta}")
        self.alpha, self.beta, self.smooth = alpha, beta, smooth

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return soft_tversky(logits, target, self.alpha, self.beta, self.smooth)


class BCELoss(nn.Module):
    """Binary cross-entropy on logits (``BCEWithLogitsLoss``: the sigmoid is inside).

    Args:
        pos_weight: weight of the positive (brain) class. Defaults to 1.
    """

    def __init__(self, pos_weight: float = 1.0):
        super().__init__()
        self.register_buffer("pos_weight", torch.tensor(float(pos_weight)))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=self.pos_weight)


class DiceBCELoss(nn.Module):
    """``dice_weight * Dice + bce_weight * BCE``: BCE's steady pixel gradients, Dice's overlap target.

    Args:
        dice_weight: Defaults to 1.
        bce_weight: Defaults to 1.
    """

    def __init__(self, dice_weight: float = 1.0, bce_weight: float = 1.0, smooth: float = 1.0):
        super().__init__()
        self.dice, self.bce = DiceLoss(smooth), BCELoss()
        self.dice_weight, self.bce_weight = dice_weight, bce_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.dice_weight * self.dice(logits, target) + self.bce_weight * self.bce(logits, target)


class FocalLoss(nn.Module):
    """Focal loss (Lin et al. 2017) on logits: BCE down-weighted on easy pixels.

    Args:
        alpha: weight of the positive class in [0, 1]; ``None`` for no class weighting. Defaults to 0.25.
        gamma: focusing exponent; 0 is plain BCE. Defaults to 2.
    """

    def __init__(self, alpha: float | None = 0.25, gamma: float = 2.0):
        super().__init__()
        if alpha is not None and not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1] or None, got {alpha}")
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits, target = logits.float(), target.float()
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        probability_of_truth = torch.exp(-bce)
        loss = (1 - probability_of_truth) ** self.gamma * bce
        if self.alpha is not None:
            loss = loss * (self.alpha * target + (1 - self.alpha) * (1 - target))
        return loss.mean()
