"""Networks and the LightningModule that trains them."""

from brainseg.models.module import SegmentationModule
from brainseg.models.unet import UNet

__all__ = ["SegmentationModule", "UNet"]
