"""The lean U-Net: logits of the input's size, clear errors for bad arguments, every weight trained."""

import pytest
import torch
from torch import nn

from brainseg.models.lean_unet import LeanUNet


@pytest.mark.parametrize("channels, size", [((4, 8), (8, 12)), ((4, 8, 16), (16, 24)), ((4, 8, 16, 32), (32, 48))])
def test_output_has_the_input_size_and_is_unbounded_logits(channels, size):
    net = LeanUNet(channels=channels)
    assert net.size_divisor == 2 ** len(channels)
    assert not any(isinstance(module, (nn.Sigmoid, nn.Softmax)) for module in net.modules())
    with torch.no_grad():  # features are >= 0 after ReLU: head weights of both signs give both signs out
        signs = torch.tensor([1.0, -1.0]).repeat(net.head.weight.shape[1] // 2)
        net.head.weight.copy_(1000 * signs.view(1, -1, 1, 1))
        out = net(torch.randn(2, 1, *size))
    assert out.shape == (2, 1, *size)
    assert out.min() < 0 < 1 < out.max()  # logits, not probabilities


@pytest.mark.parametrize("channels, size", [((4, 8), (16, 24)), ((4, 8, 16, 32), (64, 96))])
def test_a_top_stride_of_4_works_at_a_quarter_of_the_side_and_gives_logits_of_the_input_size(channels, size):
    net = LeanUNet(in_channels=4, channels=channels, top_stride=4)
    assert net.size_divisor == 4 * 2 ** (len(channels) - 1) == LeanUNet.input_divisor(channels, 4)
    features = []
    net.encoders[0].register_forward_hook(lambda module, inputs, output: features.append(output.shape))
    assert net(torch.randn(2, 4, *size)).shape == (2, 1, *size)
    assert tuple(features[0][-2:]) == (size[0] // 4, size[1] // 4)
    assert LeanUNet(**net.config).config["top_stride"] == 4  # the checkpoint's record rebuilds it
    with pytest.raises(ValueError, match="top_stride must be 2 or 4"):
        LeanUNet(top_stride=8)


def test_each_output_pixel_of_a_4x4_block_has_its_own_logit():
    """The sub-pixel head: a boundary inside a block can be drawn, not only block by block."""
    net = LeanUNet(channels=(4, 8), top_stride=4, norm="none").eval()
    image = torch.zeros(1, 1, 16, 16)
    image[..., :, 6:] = 1.0  # an edge inside the second column of blocks
    out = net(image)
    assert not torch.allclose(out[..., 5], out[..., 6])


def test_slice_stacks_with_three_channels_and_several_outputs():
    net = LeanUNet(in_channels=3, out_channels=2, channels=(8, 16, 32, 64))
    assert net(torch.randn(2, 3, 64, 32)).shape == (2, 2, 64, 32)


def test_size_not_divisible_is_a_clear_error():
    with pytest.raises(ValueError, match="not divisible by 16"):
        LeanUNet(channels=(4, 8, 16, 32))(torch.zeros(1, 1, 40, 48))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=(8,)), "at least two levels"),
        (dict(channels=(8, 0)), "channel counts"),
        (dict(in_channels=0), "channel counts"),
        (dict(num_res_units=-1), "num_res_units"),
        (dict(norm="layer"), "norm must be one of"),
        (dict(dropout=1.0), "dropout"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LeanUNet(**kwargs)


@pytest.mark.parametrize("norm, dropout, res_units", [("batch", 0.0, 0), ("batch", 0.0, 2), ("group", 0.1, 1), ("none", 0.0, 1)])
def test_gradient_reaches_every_parameter(norm, dropout, res_units):
    """Every weight learns; residual branches start at zero (their norm's weight), so the check
    follows one optimizer step, after which the gradient also reaches inside them."""
    torch.manual_seed(0)
    net = LeanUNet(in_channels=3, channels=(4, 8, 16, 16), num_res_units=res_units, norm=norm, dropout=dropout)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    image = torch.randn(2, 3, 32, 32)
    for _ in range(2):
        optimizer.zero_grad()
        net(image).square().mean().backward()
        optimizer.step()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_fine_detail_reaches_the_output_at_full_resolution():
    """A one-pixel change moves the output at that pixel, and the four pixels of its 2x2 block
    move differently: the output is not a blocky upsampling of half-resolution features."""
    torch.manual_seed(0)
    net = LeanUNet(channels=(4, 8, 16), norm="none").eval()
    image = torch.zeros(1, 1, 16, 16)
    poked = image.clone()
    poked[0, 0, 5, 9] = 10.0
    with torch.no_grad():
        change = (net(poked) - net(image)).abs()[0, 0]
    block = change[4:6, 8:10]
    assert change[5, 9] > 0 and len(set(block.flatten().tolist())) == 4


@pytest.mark.parametrize("top_stride, in_channels", [(2, 1), (2, 5), (4, 3)])
def test_the_head_is_a_3x3_convolution_of_the_features_beside_the_images_blocks(top_stride, in_channels):
    """The head's definition (and what checkpoints hold): one 3x3 convolution over the top
    level's features concatenated with PixelUnshuffle(top_stride) of the image. The network
    computes the image's part as a strided convolution on the pixels; the logits must agree."""
    torch.manual_seed(0)
    net = LeanUNet(in_channels=in_channels, channels=(4, 8, 16), top_stride=top_stride).eval()
    image = torch.randn(2, in_channels, 64, 48)
    captured = {}
    net.decoders[-1].register_forward_hook(lambda module, args, output: captured.update(features=output))
    with torch.no_grad():
        logits = net(image)
        blocks = nn.functional.pixel_unshuffle(image, top_stride)
        expected = nn.functional.pixel_shuffle(net.head(torch.cat([captured["features"], blocks], dim=1)), top_stride)
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)


def test_config_rebuilds_the_same_network():
    net = LeanUNet(in_channels=3, channels=(4, 8, 16), num_res_units=0, norm="instance", dropout=0.1)
    twin = LeanUNet(**net.config)
    assert twin.config == net.config
    assert [p.shape for p in twin.parameters()] == [p.shape for p in net.parameters()]


def test_norm_momentum_sets_every_batch_norm_and_a_record_without_it_rebuilds_torchs_default():
    net = LeanUNet(channels=(4, 8), norm_momentum=0.3)
    momenta = {m.momentum for m in net.modules() if isinstance(m, nn.BatchNorm2d)}
    assert momenta == {0.3}
    assert LeanUNet(**net.config).config["norm_momentum"] == 0.3  # the checkpoint's record rebuilds it
    earlier = {key: value for key, value in net.config.items() if key != "norm_momentum"}  # checkpoints before 2026-12-02
    assert {m.momentum for m in LeanUNet(**earlier).modules() if isinstance(m, nn.BatchNorm2d)} == {0.1}
    with pytest.raises(ValueError, match="norm_momentum must be in"):
        LeanUNet(norm_momentum=0.0)
