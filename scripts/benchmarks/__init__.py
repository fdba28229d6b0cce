"""Benchmarks: the library measured from outside it, against its limits and the usual alternatives.

``python scripts/benchmark.py`` runs the suite: one module per section, :mod:`preprocessing`
(MIP vs decompression floor, naive way, memory, cores), :mod:`training` (ours vs MONAI's UNet,
precision, threads, compile), :mod:`inference` (per-case MIP prediction, 3-D volume end to end),
:mod:`loading` (time waiting for data, read from the :mod:`clock` the training loop carries);
:mod:`suite` runs them into the :mod:`results` (sections, targets), :mod:`report` and
:mod:`notes` write docs/benchmarks.{md,json}.

The other entry points each have a module: :mod:`generalization` (benchmark_generalization.py),
:mod:`synthetic` (benchmark_synthetic.py), :mod:`volumes` (benchmark_volumes.py) and
:mod:`gallery` (render_gallery.py, the docs' picture of synthetic cases).
"""
