"""Benchmark 3-D brain masks: accuracy per storage orientation, and end-to-end speed.

    python scripts/benchmark_volumes.py task=accuracy ckpt_path=CKPT [accuracy.cases=3] [output=FILE.json]
    python scripts/benchmark_volumes.py task=speed ckpt_path=CKPT [speed.threads=2] [speed.repeats=3]

Prints a table; ``output`` also writes the results as JSON. Options: conf/benchmark_volumes.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_volumes")
def main(cfg: DictConfig) -> None:
    from benchmarks.volumes import benchmark_volumes

    from brainseg.cli import run_safely

    run_safely(benchmark_volumes, cfg)


if __name__ == "__main__":
    main()
