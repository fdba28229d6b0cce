"""What a benchmark run is made of: its sections, the targets its figures are held to, and its results.

The runner (:mod:`benchmarks.suite`) fills :class:`Results`; :mod:`benchmarks.report` and
:mod:`benchmarks.notes` turn them into docs/benchmarks.{md,json}. Both sides import this
module, not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SECTIONS = ("preprocessing", "training", "inference", "loading")  # in the order they run
TARGETS = {
    "floor": 1.3,  # MIP wall time / decompression floor
    "memory": 0.5,  # peak memory rise / raw int16 volume
    "naive": 2.0,  # naive wall time / ours: "a clear multiple"
    "reference": 1.5,  # our images/s / MONAI's
    "time_to_target": 1.0,  # our seconds to the target val/dice / MONAI's (goal: 0.5)
    "default_run": 1 / 3,  # the default run's training time / the same run with model=unet_classic
    "same_dice": 0.001,  # test Dice this far below unet_classic's counts as the same: one seed's run differs by
                         # about that from one CPU to another (unet_classic, seed 42: 0.9869 and 0.9856)
    "volume_s": 1.5,  # a 512x512x300 volume end to end, 3-D mask (the 3-D recipe's network)
    "mip_case_s": 1.0,  # the same volume end to end, MIP prediction
    "help_s": 2.0,  # `python scripts/predict.py --help`, from a fresh interpreter
    "wait_share": 0.1,  # share of a training step spent waiting for data
}


@dataclass
class Results:
    """Everything one run measured, and the conditions it was measured in."""

    date: str
    machine: dict
    versions: dict
    sizes: dict
    load_before: list[float]
    load_after: list[float] = field(default_factory=list)
    sections: dict = field(default_factory=dict)
