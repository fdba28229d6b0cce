"""Scores of one model, preset by preset: the tables of the model card (docs/models.md).

    python scripts/benchmark_models.py ckpt_path=pretrained:volume "preset=[default,wide]" name=models_volume

Writes docs/<name>.md and docs/<name>.json. Options: conf/benchmark_models.yaml. The matrix over
acquisition and anatomy is scripts/benchmark_generalization.py.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_models")
def main(cfg: DictConfig) -> None:
    from benchmarks.model_card import generalization

    from brainseg.cli import run_safely

    run_safely(generalization, cfg)


if __name__ == "__main__":
    main()
