"""A 2-D U-Net that returns logits.

Encoder-decoder with a skip connection at every level, after Ronneberger et al. (2015). The
last layer is a plain 1x1 convolution: there is deliberately no sigmoid here, because the loss
functions apply it (once) to logits. Argument names follow MONAI's ``UNet``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class LayoutAwareBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that trains a channels-last CPU tensor of fewer than 16 channels in NCHW.

    PyTorch's channels-last batch normalization on the CPU vectorizes over channels: below 16 it
    runs forward and backward about 4x slower than the NCHW kernel (2.3 ms against 0.55 ms for
    8x8x64x64). With the two layout copies, :class:`~brainseg.models.LeanUNet`'s training step at 8
    top channels takes 17.0 ms instead of 19.9 ms. Values, parameters and state dict are those of
    ``nn.BatchNorm2d``; evaluation, where the difference is small, is left alone.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training and self.num_features < 16 and x.device.type == "cpu" and x.dim() == 4
                and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


NORMS = {
    "batch": lambda channels: LayoutAwareBatchNorm2d(channels),
    "instance": lambda channels: nn.InstanceNorm2d(channels, affine=True),
    "group": lambda channels: nn.GroupNorm(min(8, channels), channels),
    "none": lambda channels: nn.Identity(),
}


class ConvBlock(nn.Sequential):
    """Two (3x3 convolution, normalization, ReLU) layers, with optional dropout between them."""

    def __init__(self, in_channels: int, out_channels: int, norm: str, dropout: float):
        bias = norm == "none"
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
            NORMS[norm](out_channels),
            nn.ReLU(inplace=True),
            nn.Dropout2d(dropout) if dropout else nn.Identity(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
            NORMS[norm](out_channels),
            nn.ReLU(inplace=True),
        )


def check_arguments(in_channels: int, out_channels: int, channels: Sequence[int], norm: str, dropout: float) -> list[int]:
    """Refuse arguments no U-Net can be built from, with the argument's name; the levels as ints."""
    channels = [int(c) for c in channels]
    if len(channels) < 2:
        raise ValueError(f"channels needs at least two levels, got {channels}")
    if min(channels) < 1 or in_channels < 1 or out_channels < 1:
        raise ValueError(f"channel counts must be >= 1, got in {in_channels}, out {out_channels}, levels {channels}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {sorted(NORMS)}, got {norm!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return channels


def check_input_size(x: torch.Tensor, divisor: int) -> None:
    """Refuse an input whose height or width the network's levels cannot halve evenly."""
    if x.shape[-1] % divisor or x.shape[-2] % divisor:
        raise ValueError(f"input size {tuple(x.shape[-2:])} is not divisible by {divisor} (the network halves it per level)")


class UNet(nn.Module):
    """U-Net for binary (or multi-class) 2-D segmentation, returning logits.

    Args:
        in_channels: input channels (1 for a MIP; more for 2.5-D slice stacks). Defaults to 1.
        out_channels: output channels, one logit map each. Defaults to 1.
        channels: feature channels per level, from the top; ``len(channels) - 1`` poolings, so
            input height and width must be divisible by ``2 ** (len(channels) - 1)``.
            Defaults to (16, 32, 64, 128, 256).
        norm: 'batch', 'instance', 'group' or 'none'. Defaults to 'batch'.
        dropout: dropout probability inside each block. Defaults to 0.
    """

    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 1,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        norm: str = "batch",
        dropout: float = 0.0,
    ):
        super().__init__()
        channels = check_arguments(in_channels, out_channels, channels, norm, dropout)
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "channels": channels,
            "norm": norm,
            "dropout": float(dropout),
        }
        self.encoders = nn.ModuleList()
        previous = in_channels
        for width in channels:
            self.encoders.append(ConvBlock(previous, width, norm, dropout))
            previous = width
        self.pool = nn.MaxPool2d(2)
        self.upsamplers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for deeper, width in zip(channels[:0:-1], channels[-2::-1]):
            self.upsamplers.append(nn.ConvTranspose2d(deeper, width, kernel_size=2, stride=2))
            self.decoders.append(ConvBlock(2 * width, width, norm, dropout))
        self.head = nn.Conv2d(channels[0], out_channels, kernel_size=1)

    @staticmethod
    def input_divisor(channels: Sequence[int]) -> int:
        """Input height and width must be multiples of this: one 2x pooling per level below the top."""
        return 2 ** (len(channels) - 1)

    @property
    def size_divisor(self) -> int:
        """Input height and width must be multiples of this."""
        return self.input_divisor(self.config["channels"])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.size_divisor)
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else self.pool(x))
            skips.append(x)
        for upsample, decoder, skip in zip(self.upsamplers, self.decoders, reversed(skips[:-1])):
            x = decoder(torch.cat([upsample(x), skip], dim=1))
        return self.head(x)
