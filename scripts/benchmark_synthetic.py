"""Time the synthetic head CTA generator: CPU and wall time per case and peak memory, per volume size.

    python scripts/benchmark_synthetic.py [cases=20] [only=[default,256,512]]

Each workload runs in a fresh process on one core; prints a table. Options: conf/benchmark_synthetic.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_synthetic")
def main(cfg: DictConfig) -> None:
    from benchmarks.synthetic import benchmark_synthetic

    from brainseg.cli import run_safely

    run_safely(benchmark_synthetic, cfg)


if __name__ == "__main__":
    main()
