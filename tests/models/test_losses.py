"""Losses take logits and apply the sigmoid once; expected values are computed by hand."""

import math

import pytest
import torch

from brainseg.models.losses import (
    BCELoss,
    DiceBCELoss,
    DiceLoss,
    FocalLoss,
    TverskyLoss,
)

BIG = 30.0  # a logit whose sigmoid is 1 (or 0) to float precision


def _logits(*signs):
    return torch.tensor([[[[BIG * s for s in signs]]]])


def _target(*values):
    return torch.tensor([[[list(map(float, values))]]])


@pytest.mark.parametrize(
    "loss, logits, target, expected",
    [
        # perfect prediction: (2*2 + 1) / (2 + 2 + 1) = 1 -> loss 0
        (DiceLoss(), _logits(1, 1, -1, -1), _target(1, 1, 0, 0), 0.0),
        # TP=1, FP=1, FN=1: (2*1 + 1) / (2 + 2 + 1) = 3/5 -> loss 2/5
        (DiceLoss(), _logits(1, -1, 1, -1), _target(1, 1, 0, 0), 0.4),
        # empty mask, empty prediction: (0 + 1) / (0 + 1) -> loss 0, not 0/0
        (DiceLoss(), _logits(-1, -1), _target(0, 0), 0.0),
        # Tversky alpha=0.3 beta=0.7, TP=1 FP=1 FN=1: (1+1)/(1+0.3+0.7+1) = 2/3 -> 1/3
        (TverskyLoss(0.3, 0.7), _logits(1, -1, 1, -1), _target(1, 1, 0, 0), 1 / 3),
        # logits of exactly 0 give BCE = ln 2: the value the old pipeline was stuck at
        (BCELoss(), torch.zeros(1, 1, 2, 2), _target(1, 0, 1, 0).reshape(1, 1, 2, 2), math.log(2)),
        # Dice + BCE on a confident perfect prediction: both terms ~0
        (DiceBCELoss(), _logits(1, -1), _target(1, 0), 0.0),
    ],
)
def test_loss_values_by_hand(loss, logits, target, expected):
    assert loss(logits, target).item() == pytest.approx(expected, abs=1e-5)


def test_focal_loss_with_gamma_zero_and_no_alpha_is_bce():
    logits, target = torch.randn(2, 1, 5, 5), (torch.rand(2, 1, 5, 5) > 0.5).float()
    assert FocalLoss(alpha=None, gamma=0)(logits, target).item() == pytest.approx(BCELoss()(logits, target).item())


def test_tversky_with_equal_weights_is_dice():
    logits, target = torch.randn(2, 1, 5, 5), (torch.rand(2, 1, 5, 5) > 0.5).float()
    assert TverskyLoss(0.5, 0.5, smooth=0.5)(logits, target).item() == pytest.approx(DiceLoss(smooth=1)(logits, target).item())


@pytest.mark.parametrize("loss", [DiceLoss(), BCELoss(), DiceBCELoss(), FocalLoss(), TverskyLoss()])
def test_losses_expect_logits_not_probabilities(loss):
    """Guard against the double sigmoid: confident correct logits must give a loss near 0.

    Had a loss applied its sigmoid to probabilities (sigmoid(1) = 0.73 at most), a perfect
    prediction could never score below ~ln 2 for BCE, or well above 0 for Dice.
    """
    target = (torch.rand(2, 1, 8, 8) > 0.5).float()
    assert loss(target * 2 * BIG - BIG, target).item() < 1e-3
    probabilities_fed_as_logits = loss(target, target).item()
    assert probabilities_fed_as_logits > 0.05


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        DiceLoss()(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4))
