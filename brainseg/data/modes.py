"""What ``data.mode`` selects: the DataModule that cuts volumes into network samples.

* ``mip``: one maximum intensity projection per case -> the brain's 2-D footprint
  (:class:`MipDataModule`, the default).
* ``slices``: axial (2.5-D) slices -> a 3-D brain mask by volume inference
  (:class:`SliceDataModule`).

Both modes read the same datasets, so ``data=folder data.root=DIR data.mode=slices`` trains
slices on your own data; ``data=slices`` is the same mode with defaults tuned for it.
"""

from __future__ import annotations

import pytorch_lightning as pl

from brainseg.data.datamodule import MipDataModule
from brainseg.data.slices import SliceDataModule
from brainseg.errors import ConfigError

DATAMODULES = {"mip": MipDataModule, "slices": SliceDataModule}
SLICE_ONLY_OPTIONS = ("spacing_mm", "in_channels", "empty_slice_ratio")


def make_datamodule(mode: str = "mip", **options) -> pl.LightningDataModule:
    """The DataModule of ``mode`` ('mip' or 'slices'), built from the rest of the data options.

    Raises:
        ConfigError: an unknown mode, or slice-only options given to the MIP mode.
    """
    if mode not in DATAMODULES:
        raise ConfigError(f"data.mode must be one of {sorted(DATAMODULES)}, got {mode!r}")
    if mode == "mip":
        extra = sorted(set(options) & set(SLICE_ONLY_OPTIONS))
        if extra:
            raise ConfigError(f"data.{extra[0]} applies to data.mode=slices only (got data.mode=mip)")
    return DATAMODULES[mode](**options)
