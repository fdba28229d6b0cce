"""Validate a dataset and cache its MIPs, using all cores; print what was cached and what was skipped.

    python scripts/preprocess.py data.root=DIR [data.cache_dir=DIR] [data.on_bad_case=fail]
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely


@hydra.main(version_base="1.3", config_path="../conf", config_name="preprocess")
def main(cfg: DictConfig) -> None:
    from brainseg.data.preprocess import (
        preprocess,  # here, not at the top: `--help` needs Hydra only
    )

    run_safely(preprocess, cfg)


if __name__ == "__main__":
    main()
