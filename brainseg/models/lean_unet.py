"""A lean 2-D U-Net that returns logits: about 1/27 of :class:`~brainseg.models.UNet`'s work.

Where the default U-Net spends its time (two 3x3 convolutions per level, the top level at full
resolution with 16 channels), this one works at half resolution and below:

* a stride-2 3x3 convolution enters the top level, and every further level starts with one;
* one 3x3 convolution per decoder level after a 2x2 transposed convolution and the concatenated
  skip; optional residual units (two 3x3 convolutions and an identity, the residual branch
  starting at zero) deepen the levels at 1/8 of the input side and below;
* a sub-pixel head puts the full resolution back: a 3x3 convolution sees the top level's
  features beside the input's own pixels (space-to-depth, ``PixelUnshuffle(2)``), predicts the
  4 logits of each 2x2 block, and ``PixelShuffle(2)`` lays them out. Convolutions with a
  channel or two at full resolution are slow on CPUs; this keeps every convolution at half
  resolution or below while the boundary still follows the image;
* ``top_stride=4`` goes one step further: the input's 2x2 blocks are stacked as channels
  (``PixelUnshuffle(2)``) before the first strided convolution, so the top level works at a
  quarter of the side, and the head predicts the 16 logits of each 4x4 block from the features
  and the block's own pixels. About twice the images per second of a bare training step for
  the same channels (1.2-1.9x in the whole training loop, benchmark runs of 2026-12), for
  slightly lower Dice on the default data and the wide cases (docs/benchmarks.md), so it is an
  option, not the default.

No sigmoid: the losses apply it to the logits. Argument names follow MONAI's ``UNet``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from brainseg.models.unet import NORMS, check_arguments, check_input_size


def conv_norm_act(in_channels: int, out_channels: int, norm: str, stride: int = 1) -> nn.Sequential:
    """3x3 convolution (no bias when a normalization follows), normalization, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm == "none"),
        NORMS[norm](out_channels),
        nn.ReLU(inplace=True),
    )


class ResidualUnit(nn.Module):
    """ReLU(x + norm(conv(conv_norm_act(x)))), same channels in and out."""

    def __init__(self, channels: int, norm: str, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_act(channels, channels, norm),
            nn.Dropout2d(dropout) if dropout else nn.Identity(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=norm == "none"),
            NORMS[norm](channels),
        )
        self.act = nn.ReLU(inplace=True)
        if getattr(self.body[-1], "weight", None) is not None:
            nn.init.zeros_(self.body[-1].weight)  # starts as the identity: converges in fewer epochs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class LeanUNet(nn.Module):
    """Lean U-Net for binary (or multi-class) 2-D segmentation, returning logits.

    Args:
        in_channels: input channels (1 for a MIP; 3 for 2.5-D slice stacks). Defaults to 1.
        out_channels: output channels, one logit map each. Defaults to 1.
        channels: feature channels per level, from the top. The top level runs at half the input
            side and each further level halves it again, so input height and width must be
            divisible by ``2 ** len(channels)`` (:attr:`size_divisor`; 16 for the default).
            Defaults to (8, 16, 32, 64).
        num_res_units: residual units at each level from the third on (1/8 of the input side
            and below): 1 gains ~0.003 Dice for ~15% fewer images/s. Defaults to 0.
        norm: 'batch', 'instance', 'group' or 'none'. Defaults to 'batch'.
        dropout: dropout probability inside the encoder levels and residual units. Defaults to 0.
        top_stride: how much the top level shrinks the input side: 2, or 4 (a space-to-depth step
            before it). The input side must then be divisible by ``top_stride * 2 ** (levels - 1)``.
            Defaults to 2.
        norm_momentum: weight of each training batch in batch normalization's running statistics,
            which validation and inference use. Above torch's 0.1 they follow the weights sooner: with
            a dozen batches an epoch, 0.1 left the first epochs' validation Dice as low as 0.05, and
            0.3 reaches val/dice 0.95 about an epoch sooner (docs/benchmarks.md). Training only.
            Defaults to 0.1.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (8, 16, 32, 64),
        num_res_units: int = 0,
        norm: str = "batch",
        dropout: float = 0.0,
        top_stride: int = 2,
        norm_momentum: float = 0.1,
    ):
        super().__init__()
        channels = check_arguments(in_channels, out_channels, channels, norm, dropout)
        if num_res_units < 0:
            raise ValueError(f"num_res_units must be >= 0, got {num_res_units}")
        if top_stride not in (2, 4):
            raise ValueError(f"top_stride must be 2 or 4, got {top_stride}")
        if not 0.0 < norm_momentum <= 1.0:
            raise ValueError(f"norm_momentum must be in (0, 1], got {norm_momentum}")
        self.config = {
            "in_channels": int(in_channels),
            "out_channels": int(out_channels),
            "channels": channels,
            "num_res_units": int(num_res_units),
            "norm": norm,
            "dropout": float(dropout),
            "top_stride": int(top_stride),
            "norm_momentum": float(norm_momentum),
        }
        block = top_stride // 2  # the input's blocks stacked as channels before the first strided convolution
        self.stem = nn.PixelUnshuffle(block) if block > 1 else nn.Identity()
        self.encoders = nn.ModuleList()
        previous = in_channels * block * block
        for level, width in enumerate(channels):
            layers = [conv_norm_act(previous, width, norm, stride=2)]
            if dropout:
                layers.append(nn.Dropout2d(dropout))
            if level >= 2:
                layers += [ResidualUnit(width, norm, dropout) for _ in range(num_res_units)]
            self.encoders.append(nn.Sequential(*layers))
            previous = width
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for deeper, width in zip(channels[:0:-1], channels[-2::-1]):
            self.upsamplers.append(nn.ConvTranspose2d(deeper, width, kernel_size=2, stride=2))
            self.decoders.append(conv_norm_act(2 * width, width, norm))
        pixels = top_stride * top_stride
        self.head = nn.Conv2d(channels[0] + pixels * in_channels, pixels * out_channels, 3, padding=1)
        self.depth_to_space = nn.PixelShuffle(top_stride)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.momentum = norm_momentum

    @staticmethod
    def input_divisor(channels: Sequence[int], top_stride: int = 2) -> int:
        """Input height and width must be multiples of this: the top level shrinks the side by
        ``top_stride``, every further level halves it."""
        return top_stride * 2 ** (len(channels) - 1)

    @property
    def size_divisor(self) -> int:
        """Input height and width must be multiples of this."""
        return self.input_divisor(self.config["channels"], self.config["top_stride"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.size_divisor)
        image, skips = x, []
        x = self.stem(x)
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.depth_to_space(self._head(x, image))

    def _head(self, features: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        """The head's 3x3 convolution of ``[features, space_to_depth(image)]``, computed as two.

        The image part runs on the image itself: a 3x3 convolution of its ``r x r`` blocks (``r``
        the top stride) is a ``3r x 3r`` convolution with stride ``r`` whose kernel holds the same
        weights in the pixels' places. The same logits (to float rounding) from the same
        parameters, without copying the image into blocks and concatenating it to the features,
        and without a gradient for the image: a tenth less time for the default training step
        (docs/benchmarks.md).
        """
        width, stride = self.config["channels"][0], self.config["top_stride"]
        weight = self.head.weight
        logits = F.conv2d(features, weight[:, :width], self.head.bias, padding=1)
        return logits + F.conv2d(image, block_kernel(weight[:, width:], stride), stride=stride, padding=stride)


def block_kernel(weight: torch.Tensor, block: int) -> torch.Tensor:
    """A 3x3 kernel over ``PixelUnshuffle(block)`` channels as the ``3·block``-wide kernel over the
    pixels themselves: channel ``c·block² + dy·block + dx`` at ``(ky, kx)`` goes to channel ``c`` at
    ``(block·ky + dy, block·kx + dx)``."""
    out_channels, blocks = weight.shape[:2]
    in_channels = blocks // (block * block)
    kernel = weight.reshape(out_channels, in_channels, block, block, 3, 3).permute(0, 1, 4, 2, 5, 3)
    return kernel.reshape(out_channels, in_channels, 3 * block, 3 * block)
