"""Build the models that ship with brainseg (brainseg/pretrained/: checkpoints and models.json):

    python scripts/release_models.py [only=[mip]] [output=DIR]

Trains the recipes of conf/release_models.yaml on the embedded synthetic data, deterministically,
and records each model's SHA-256, recipe, date and scores. See docs/models.md.
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely
from brainseg.training.release import release_models


@hydra.main(version_base="1.3", config_path="../conf", config_name="release_models")
def main(cfg: DictConfig) -> None:
    run_safely(release_models, cfg)


if __name__ == "__main__":
    main()
