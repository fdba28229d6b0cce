"""Time the synthetic head CTA generator: CPU and wall time per case and peak memory, per volume size.

Each workload runs in a fresh Python process (peak RSS is per process), one core, generation
only (no NIfTI writing). CPU time (``time.process_time``) is the figure to compare on a busy
machine; wall time is printed beside it. "imports MB" is the RSS before the first case (the
interpreter with numpy, scipy and nibabel), "image MB" the int16 volume generated.

    python scripts/benchmark_synthetic.py [--cases 20] [--only default,256,512]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace

# One thread: the figures are per core, and BLAS threads would only add noise.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

HEAD_ONLY = (("head", 1.0),)


def workloads(n_default: int) -> dict[str, tuple[str, object, list[int]]]:
    """name -> (description, config, seeds): the default preset and two fixed scanner sizes."""
    from brainseg.synthetic import SyntheticConfig

    realistic = SyntheticConfig.realistic()
    fixed = dict(fov_kinds=HEAD_ONLY, slice_thickness_ratio=(1.0, 1.0))
    return {
        "default": (f"default preset ({n_default} cases)", SyntheticConfig(), list(range(n_default))),
        "256": ("256x256x160, 1.25 mm slices", replace(realistic, shape_in_plane=(256, 256), slice_count=(160, 160),
                                                       slice_spacing_mm=(1.25, 1.25), **fixed), list(range(5))),
        "512": ("512x512x300, 0.7 mm slices", replace(realistic, shape_in_plane=(512, 512), slice_count=(300, 300),
                                                      slice_spacing_mm=(0.7, 0.7), **fixed), list(range(3))),
    }


def measure(name: str, n_default: int) -> dict:
    """Generate the workload's cases in this process; CPU/wall seconds per case and peak RSS."""
    import resource
    import time

    import numpy as np

    from brainseg.synthetic import generate_case

    _, config, seeds = workloads(n_default)[name]
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    cpu, wall, image_mb = [], [], 0.0
    for seed in seeds:
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        case = generate_case(seed, config)
        cpu.append(time.process_time() - t_cpu)
        wall.append(time.perf_counter() - t_wall)
        image_mb = max(image_mb, case.image.nbytes / 2**20)
        del case
    return {
        "cpu_median": float(np.median(cpu)), "cpu_max": max(cpu), "wall_median": float(np.median(wall)),
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "import_mb": baseline_mb,
        "image_mb": image_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20, help="default-preset cases to time")
    parser.add_argument("--only", default="default,256,512", help="comma-separated workloads")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: run one workload, print JSON
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(measure(args.worker, args.cases)))
        return
    names = workloads(args.cases)
    print(f"{'workload':32} {'CPU s median / max':>19} {'wall s':>7} {'peak RSS MB':>12} {'imports MB':>11} {'image MB':>9}")
    for name in args.only.split(","):
        out = subprocess.run([sys.executable, __file__, "--worker", name, "--cases", str(args.cases)],
                             check=True, capture_output=True, text=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        cpu = f"{r['cpu_median']:.2f} / {r['cpu_max']:.2f}"
        print(f"{names[name][0]:32} {cpu:>19} {r['wall_median']:7.2f} {r['peak_mb']:12.0f} {r['import_mb']:11.0f}"
              f" {r['image_mb']:9.0f}")


if __name__ == "__main__":
    main()
