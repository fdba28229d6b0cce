"""The LightningModule: binary targets only, metrics on integer masks, one sigmoid then threshold."""

import functools

import pytest
import torch
from torchmetrics.segmentation import DiceScore, MeanIoU

from brainseg.models import SegmentationModule, UNet
from brainseg.models.losses import DiceLoss
from brainseg.models.module import check_binary_target, make_metrics


def _module(**kwargs):
    return SegmentationModule(UNet(channels=(4, 8)), DiceLoss(), functools.partial(torch.optim.Adam, lr=1e-3), **kwargs)


def test_masks_normalized_like_images_are_refused():
    """The old pipeline pushed masks through Normalize(0.5, 0.5) and trained on {-1, 1}."""
    with pytest.raises(ValueError, match="only 0 and 1"):
        check_binary_target(torch.tensor([-1.0, 1.0]))
    check_binary_target(torch.tensor([0.0, 1.0]))


def test_threshold_applies_to_probabilities_after_one_sigmoid():
    module = _module(threshold=0.5)
    logits = torch.tensor([[[[-0.1, 0.1, 3.0]]]])  # probabilities 0.475, 0.525, 0.95
    assert module.predict_mask(logits).tolist() == [[[0, 1, 1]]]
    with pytest.raises(ValueError, match="in \\(0, 1\\)"):
        _module(threshold=1.5)


def test_dice_metric_scores_integer_masks():
    truth = torch.zeros(2, 8, 8, dtype=torch.long)
    truth[:, 2:6, 2:6] = 1
    prediction = truth.clone()
    prediction[1, 2:6, 2:4] = 0  # second image: 8 of 16 pixels found -> Dice 2*8/(8+16) = 2/3
    dice = make_metrics()["dice"]
    assert dice(prediction[:, None], truth[:, None]).item() == pytest.approx((1 + 2 / 3) / 2)


def test_the_metrics_score_as_torchmetrics_does_on_index_masks_empty_images_included():
    """The brain class as one one-hot channel gives the two-class, background-excluded scores."""
    reference = {"dice": DiceScore(num_classes=2, include_background=False, input_format="index", average="micro"),
                 "iou": MeanIoU(num_classes=2, include_background=False, input_format="index")}
    metrics = make_metrics()
    generator = torch.Generator().manual_seed(0)
    for batch in range(4):
        prediction = (torch.rand(6, 16, 16, generator=generator) > 0.5).long()
        truth = (torch.rand(6, 16, 16, generator=generator) > 0.3).long()
        prediction[0], truth[0] = 0, 0  # both empty: left out
        prediction[1] = 0  # prediction empty
        truth[2] = 0  # truth empty
        for name, metric in metrics.items():
            assert torch.allclose(metric(prediction[:, None], truth[:, None]), reference[name](prediction, truth), equal_nan=True)
    for name, metric in metrics.items():
        assert metric.compute().item() == pytest.approx(reference[name].compute().item(), abs=1e-7)


def test_the_float_probability_trap_that_read_zero_forever():
    """Documented trap: DiceScore given a float (N, 1, H, W) map argmaxes one channel -> all zeros."""
    truth = torch.zeros(1, 1, 8, 8, dtype=torch.long)
    truth[..., 2:6, 2:6] = 1
    probabilities = truth.float() * 0.9
    metric = DiceScore(num_classes=2, include_background=False, input_format="mixed")
    assert metric(probabilities, truth[:, 0]).item() == 0.0  # what the old pipeline saw
    module = _module()
    assert make_metrics()["dice"](module.predict_mask(torch.logit(probabilities))[:, None], truth).item() == 1.0


def test_channels_last_changes_the_layout_not_the_logits_or_the_checkpoint():
    """The NHWC layout is a speed knob: same logits, and a state dict any contiguous network loads."""
    from brainseg.models import LeanUNet

    torch.manual_seed(0)
    plain = SegmentationModule(LeanUNet(in_channels=4), DiceLoss(), functools.partial(torch.optim.Adam)).eval()
    fast = SegmentationModule(LeanUNet(in_channels=4), DiceLoss(), functools.partial(torch.optim.Adam), channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    convolution = fast.net.encoders[0][0][0].weight
    assert convolution.is_contiguous(memory_format=torch.channels_last) and not convolution.is_contiguous()
    image = torch.randn(2, 4, 32, 32)
    torch.testing.assert_close(fast(image), plain(image), rtol=1e-4, atol=1e-5)
    reloaded = LeanUNet(in_channels=4)
    reloaded.load_state_dict(fast.net.state_dict())
    torch.testing.assert_close(reloaded.eval()(image), plain(image), rtol=1e-4, atol=1e-5)


def test_optimizer_and_scheduler_are_built_from_partials():
    scheduler = {"scheduler": functools.partial(torch.optim.lr_scheduler.StepLR, step_size=1), "interval": "epoch"}
    configured = _module(scheduler=scheduler).configure_optimizers()
    assert isinstance(configured["optimizer"], torch.optim.Adam)
    assert isinstance(configured["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.StepLR)
    assert isinstance(_module(scheduler={"scheduler": None}).configure_optimizers(), torch.optim.Adam)


def test_case_dice_scores_each_case_over_all_its_samples_then_averages_the_cases():
    from brainseg.models.module import CaseDice

    metric = CaseDice()
    prediction = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]).view(4, 2, 2)
    truth = torch.tensor([[1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]).view(4, 2, 2)
    metric.update(prediction[:2], truth[:2], torch.tensor([0, 0]))  # case 0 spans two samples
    metric.update(prediction[2:], truth[2:], torch.tensor([1, 2]))  # case 1 is empty in both: left out
    # case 0: overlap 2, predicted 3, true 2 -> 0.8; case 2: overlap 2, predicted 4, true 2 -> 2/3
    assert metric.compute().item() == pytest.approx((0.8 + 2 / 3) / 2)
