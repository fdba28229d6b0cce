"""Measure brainseg against its limits and the usual alternatives; write docs/benchmarks.{md,json}.

    python scripts/benchmark.py                                  # everything (6 to 10 minutes on 2 idle cores)
    python scripts/benchmark.py only=[preprocessing,inference] volume_checkpoint=CKPT
    python scripts/benchmark.py tiny=true output=/tmp/b         # every code path in seconds (figures meaningless)
    python scripts/benchmark.py render=docs/benchmarks.json     # tables and notes again, no measuring

Run it on an otherwise idle machine: the load, and the cores other processes used, are written
beside the figures. Options: conf/benchmark.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark")
def main(cfg: DictConfig) -> None:
    # Imports stay inside: preprocessing worker processes re-import this file and need none of them.
    from benchmarks.suite import benchmark

    from brainseg.cli import run_safely

    run_safely(benchmark, cfg)


if __name__ == "__main__":
    main()
