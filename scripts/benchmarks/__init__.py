"""Benchmarks against the limits and the usual alternatives (``python scripts/benchmark.py``).

One module per benchmark: :mod:`preprocessing` (MIP vs decompression floor, naive way, memory,
cores), :mod:`training` (ours vs MONAI's UNet, precision, threads, compile), :mod:`inference`
(per-case MIP prediction, 3-D volume end to end), :mod:`loading` (time waiting for data, read
from the :mod:`clock` the training loop carries); :mod:`suite` runs them into the
:mod:`results` (sections, targets), :mod:`report` and :mod:`notes` write docs/benchmarks.{md,json}.
"""
