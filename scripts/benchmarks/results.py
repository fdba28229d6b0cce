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
    "volume_s": 10.0,  # a 512x512x300 volume end to end
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
