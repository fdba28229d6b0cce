"""tta=flip: the probability becomes the mean of p(x) and flip(p(flip(x))), flipping the patient's
left-right axis of the network input (a MIP's columns, an axial slice's R axis), in both modes."""

import numpy as np
import pytest
import torch
from torch import nn

from brainseg.data.axial import context_indices
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.projection import Projection
from brainseg.errors import ConfigError
from brainseg.inference.mip import MipPredictor
from brainseg.inference.volume import VolumePredictor, predict_slices

MIP = Preprocessing("mip", (-100.0, 1900.0), 16)
SLICES = Preprocessing("slices", (-100.0, 1000.0), 16, spacing_mm=2.0, context_slices=1)


def lopsided_net(in_channels: int, seed: int = 0) -> nn.Module:
    """A fixed network that is not mirror-symmetric (random 5x5 kernels), so a flip changes its answer."""
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Conv2d(in_channels, 4, 5, padding=2), nn.Tanh(), nn.Conv2d(4, 1, 5, padding=2))
    net.size_divisor = 4
    return net.eval()


def sigmoid(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(net(x))


def test_a_mip_probability_is_the_mean_of_p_x_and_the_mirrored_p_of_the_mirrored_x():
    hu = np.random.default_rng(0).uniform(-1000, 1500, (12, 16)).astype(np.float32)  # wider than tall: the fit pads rows
    projection = Projection(hu, None, (1.0, 1.0))
    net = lopsided_net(1)
    plain, flipped = MipPredictor(net, MIP, postprocessing=None), MipPredictor(net, MIP, tta="flip", postprocessing=None)
    x = plain.network_input(projection)[0][None]  # (1, 1, 16, 16)
    expected = (sigmoid(net, x) + sigmoid(net, x.flip(-1)).flip(-1)) / 2
    got = flipped.predict(projection)
    np.testing.assert_allclose(got.network_probability, expected[0, 0].numpy(), atol=1e-6)
    without = plain.predict(projection).network_probability
    assert np.abs(got.network_probability - without).max() > 1e-3  # it did change the probabilities
    np.testing.assert_allclose(without, sigmoid(net, x)[0, 0].numpy(), atol=1e-6)  # and tta=none is the plain network


def test_slice_probabilities_are_the_mean_of_p_x_and_the_mirrored_p_of_the_mirrored_x_along_r():
    hu = torch.from_numpy(np.random.default_rng(1).uniform(0, 800, (5, 16, 12)).astype(np.float32))  # (S, R, A), all head
    net = lopsided_net(3)
    got = predict_slices(VolumePredictor(net, SLICES, tta="flip"), hu)
    x = torch.from_numpy(SLICES.normalize(hu.numpy()[context_indices(np.arange(5), 5, 1)]))  # (S, 3, R, A)
    expected = (sigmoid(net, x) + sigmoid(net, x.flip(-2)).flip(-2)) / 2
    torch.testing.assert_close(got, expected[:, 0], atol=1e-6, rtol=0)
    plain = predict_slices(VolumePredictor(net, SLICES), hu)
    torch.testing.assert_close(plain, sigmoid(net, x)[:, 0], atol=1e-6, rtol=0)
    assert (got - plain).abs().max() > 1e-3


def test_a_mirror_symmetric_network_is_left_unchanged_by_the_flip():
    net = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[[[1.0, 2.0, 1.0], [0.5, -3.0, 0.5], [1.0, 2.0, 1.0]]]]))  # symmetric left-right
    projection = Projection(np.random.default_rng(2).uniform(-1000, 1500, (16, 16)).astype(np.float32), None, (1.0, 1.0))
    np.testing.assert_allclose(MipPredictor(net, MIP, tta="flip").predict(projection).probability,
                               MipPredictor(net, MIP).predict(projection).probability, atol=1e-6)


def test_an_unknown_tta_is_refused_in_one_line():
    with pytest.raises(ConfigError, match="tta must be one of \\('none', 'flip'\\), got 'rotate'"):
        MipPredictor(lopsided_net(1), MIP, tta="rotate")


class Blobs(nn.Module):
    """Logits of a fixed picture whatever the input: a ring-shaped brain with a hole, and a stray piece."""

    def __init__(self, size: int):
        super().__init__()
        rows, cols = np.mgrid[:size, :size]
        radius = np.hypot(rows - size * 0.6, cols - size / 2)
        brain = (radius < size * 0.3) & (radius > 2)
        stray = (rows < 3) & (cols < 3)
        self.register_buffer("logits", torch.from_numpy(np.where(brain | stray, 4.0, -4.0).astype(np.float32)))

    def forward(self, x):
        return self.logits.expand(len(x), 1, *self.logits.shape)


def test_a_mip_footprint_is_post_processed_to_one_piece_without_holes():
    projection = Projection(np.zeros((32, 32), np.float32), None, (1.0, 1.0))
    cleaned = MipPredictor(Blobs(32), Preprocessing("mip", (-100.0, 1900.0), 32)).predict(projection)
    raw = MipPredictor(Blobs(32), Preprocessing("mip", (-100.0, 1900.0), 32), postprocessing=None).predict(projection)
    assert raw.network_mask[:3, :3].all() and not raw.network_mask[19, 16]  # the stray piece and the hole
    assert not cleaned.network_mask[:3, :3].any() and cleaned.network_mask[19, 16]  # gone, and filled
    assert cleaned.mask[19, 16] and not cleaned.mask[:3, :3].any()  # on the projection's grid too
    removed = raw.network_mask.astype(bool) & ~cleaned.network_mask.astype(bool)
    added = cleaned.network_mask.astype(bool) & ~raw.network_mask.astype(bool)
    assert removed.sum() == 9  # the 3 x 3 stray piece, nothing else
    assert added.any() and (np.hypot(*(np.argwhere(added) - (19.2, 16)).T) <= 2).all()  # the hole, nothing else
