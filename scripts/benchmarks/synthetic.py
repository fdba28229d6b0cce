"""Time the synthetic head CTA generator (``python scripts/benchmark_synthetic.py``): CPU and wall
time per case and peak memory, per volume size.

Each workload runs in a fresh Python process (peak memory is per process), on one core,
generation only (no NIfTI writing). CPU time (``time.process_time``) is the figure to compare on
a busy machine; wall time is printed beside it. "imports MB" is the resident memory before the
first case (the interpreter with numpy, scipy and nibabel), "image MB" the int16 volume generated.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import replace

from benchmarks.common import as_names, in_fresh_process
from brainseg.errors import ConfigError
from brainseg.synthetic import (  # imported here: part of "imports MB"
    SyntheticConfig,
    generate_case,
)

# One thread: the figures are per core, and BLAS threads would only add noise.
ONE_THREAD = {var: os.environ.get(var, "1") for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
HEAD_ONLY = (("head", 1.0),)


def workloads(n_default: int) -> dict[str, tuple[str, SyntheticConfig, list[int]]]:
    """name -> (description, config, seeds): the default preset, two fixed scanner sizes and the varied preset."""
    realistic = SyntheticConfig.realistic()
    fixed = {"fov_kinds": HEAD_ONLY, "slice_thickness_ratio": (1.0, 1.0)}
    return {
        "default": (f"default preset ({n_default} cases)", SyntheticConfig(), list(range(n_default))),
        "256": ("256x256x160, 1.25 mm slices", replace(realistic, shape_in_plane=(256, 256), slice_count=(160, 160),
                                                       slice_spacing_mm=(1.25, 1.25), **fixed), list(range(5))),
        "512": ("512x512x300, 0.7 mm slices", replace(realistic, shape_in_plane=(512, 512), slice_count=(300, 300),
                                                      slice_spacing_mm=(0.7, 0.7), **fixed), list(range(3))),
        "varied": (f"varied preset ({n_default} cases)", SyntheticConfig.varied(), list(range(n_default))),
    }


def measure(name: str, n_default: int) -> dict:
    """Generate the workload's cases in this process; CPU and wall seconds per case, largest image MB."""
    _, config, seeds = workloads(n_default)[name]
    cpu, wall, image_mb = [], [], 0.0
    for seed in seeds:
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        case = generate_case(seed, config)
        cpu.append(time.process_time() - t_cpu)
        wall.append(time.perf_counter() - t_wall)
        image_mb = max(image_mb, case.image.nbytes / 2**20)
        del case
    return {"cpu_median": statistics.median(cpu), "cpu_max": max(cpu), "cpu_mean": statistics.mean(cpu),
            "wall_median": statistics.median(wall), "image_mb": image_mb}


def benchmark_synthetic(cfg) -> dict:
    """Measure the ``cfg.only`` workloads, each in a fresh process, and print a table; returns its rows.
    The keys are those of conf/benchmark_synthetic.yaml."""
    names = workloads(cfg.cases)
    only = as_names(cfg.only)
    if set(only) - set(names):
        raise ConfigError(f"only: unknown workload(s) {sorted(set(only) - set(names))}; the workloads are {list(names)}")
    print(f"{'workload':32} {'CPU s median / max':>19} {'wall s':>7} {'peak RSS MB':>12} {'imports MB':>11} {'image MB':>9}")
    rows = {}
    for name in only:
        run = in_fresh_process(__name__, "measure", env=ONE_THREAD, name=name, n_default=cfg.cases)
        r = rows[name] = {**run["result"], "peak_mb": run["peak_mib"], "import_mb": run["baseline_mib"]}
        cpu = f"{r['cpu_median']:.2f} / {r['cpu_max']:.2f}"
        print(f"{names[name][0]:32} {cpu:>19} {r['wall_median']:7.2f} {r['peak_mb']:12.0f} {r['import_mb']:11.0f}"
              f" {r['image_mb']:9.0f}", flush=True)
    return rows
