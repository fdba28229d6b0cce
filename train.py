"""Train a brain segmentation U-Net: `python train.py [group=option ...] [key=value ...]`.

See conf/train.yaml for the options and README.md for examples.
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float | None:
    # imported here, not at the top: `--help` needs Hydra only
    from brainseg.training.train import train

    metrics = run_safely(train, cfg)
    # Sweepers (Optuna) maximise the value returned here.
    return metrics.get(cfg.get("optimized_metric", "val/dice"))


if __name__ == "__main__":
    main()
