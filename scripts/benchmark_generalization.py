"""Where do the models hold and where do they fail? Score them on cases drawn from a wide
randomization, grouped by acquisition and anatomy (the generalization matrix).

    python scripts/benchmark_generalization.py ckpt_path=MIP_CKPT [volume_ckpt_path=VOLUME_CKPT] [n_cases=100]

Writes docs/generalization.md (the matrix), docs/generalization.json and the worst cases' pictures.
Options: conf/benchmark_generalization.yaml.
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
