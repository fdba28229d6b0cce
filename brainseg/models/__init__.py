"""Networks and the LightningModule that trains them.

The networks import only torch; ``SegmentationModule`` (Lightning) is loaded on first use, so
inference, which needs a network and never the training loop, does not pay for Lightning.
"""

from brainseg.models.lean_unet import LeanUNet
from brainseg.models.unet import UNet

__all__ = ["LeanUNet", "SegmentationModule", "UNet"]


def __getattr__(name: str):
    if name == "SegmentationModule":
        from brainseg.models.module import SegmentationModule

        return SegmentationModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
