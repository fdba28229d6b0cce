"""The U-Net: logits out, skip connections at every level, clear errors for bad arguments."""

import pytest
import torch
from torch import nn

from brainseg.models import UNet


def test_output_has_the_input_size_and_is_unbounded_logits():
    torch.manual_seed(0)
    net = UNet(channels=(4, 8, 16))
    assert not any(isinstance(module, (nn.Sigmoid, nn.Softmax)) for module in net.modules())
    with torch.no_grad():  # features are >= 0 after ReLU: head weights of both signs give both signs out
        signs = torch.tensor([1.0, -1.0]).repeat(net.head.weight.shape[1] // 2)
        net.head.weight.copy_(1000 * signs.view(1, -1, 1, 1))
        out = net(torch.randn(2, 1, 32, 48))
    assert out.shape == (2, 1, 32, 48)
    assert out.min() < 0 < 1 < out.max()  # logits, not probabilities


def test_every_decoder_level_concatenates_its_skip_connection():
    net = UNet(channels=(4, 8, 16, 32))
    for decoder, width in zip(net.decoders, (16, 8, 4)):
        assert decoder[0].in_channels == 2 * width


def test_fine_detail_reaches_the_output_through_the_skips():
    """A one-pixel change moves the output at that pixel: the top skip carries full resolution."""
    torch.manual_seed(0)
    net = UNet(channels=(4, 8, 16), norm="none").eval()
    image = torch.zeros(1, 1, 16, 16)
    poked = image.clone()
    poked[0, 0, 5, 9] = 10.0
    with torch.no_grad():
        change = (net(poked) - net(image)).abs()[0, 0]
    assert change[5, 9] > 0 and change[5, 9] >= change.mean()


def test_size_not_divisible_by_two_to_the_depth_is_a_clear_error():
    with pytest.raises(ValueError, match="not divisible by 8"):
        UNet(channels=(4, 8, 16, 32))(torch.zeros(1, 1, 36, 36))


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(channels=(8,)), "at least two levels"), (dict(norm="layer"), "norm must be one of"), (dict(dropout=1.0), "dropout")],
)
def test_bad_arguments_raise_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        UNet(**kwargs)


def test_config_rebuilds_the_same_network():
    net = UNet(in_channels=3, channels=(4, 8, 16), norm="group", dropout=0.1)
    twin = UNet(**net.config)
    assert twin.config == net.config
    assert sum(p.numel() for p in twin.parameters()) == sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("channels", [8, 32])
def test_batch_norm_trains_channels_last_inputs_exactly_as_torchs_and_keeps_their_layout(channels):
    """Few channels go through the NCHW kernel (4x faster on CPUs); values, gradients, running
    statistics, state dict and the output's memory layout are those of ``nn.BatchNorm2d``."""
    from brainseg.models.unet import LayoutAwareBatchNorm2d

    torch.manual_seed(0)
    ours, theirs = LayoutAwareBatchNorm2d(channels), nn.BatchNorm2d(channels)
    with torch.no_grad():
        theirs.weight.normal_()
        theirs.bias.normal_()
    ours.load_state_dict(theirs.state_dict())
    image = (3 * torch.randn(4, channels, 16, 16) + 1).contiguous(memory_format=torch.channels_last)
    outputs, gradients = [], []
    for norm in (ours, theirs):
        x = image.clone().requires_grad_()
        out = norm(x)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        outputs.append(out)
        gradients.append(x.grad)
        assert out.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(outputs[0], outputs[1])
    torch.testing.assert_close(gradients[0], gradients[1])
    for name, value in theirs.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[name], value)
    ours.eval()
    theirs.eval()
    torch.testing.assert_close(ours(image), theirs(image))
