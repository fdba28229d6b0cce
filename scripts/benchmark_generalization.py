"""How far does a model trained on the default synthetic data carry? Score it on its own test
split and on cases drawn with another seed from the wider randomization, report the Dice drop.

    python scripts/benchmark_generalization.py ckpt_path=PATH [n_cases=20] [seed=1000] [preset=wide]

Writes docs/generalization.md (a table) and docs/generalization.json. Options: conf/benchmark_generalization.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_generalization")
def main(cfg: DictConfig) -> None:
    from benchmarks.generalization import generalization

    from brainseg.cli import run_safely

    run_safely(generalization, cfg)


if __name__ == "__main__":
    main()
