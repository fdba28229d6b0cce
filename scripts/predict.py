"""Predict brain masks on new scans (NIfTI, DICOM series or MIP PNGs):

    python scripts/predict.py ckpt_path=PATH input=FILE_OR_DIR [output=DIR]

Exits with status 1 if any case failed (after predicting all the others). See conf/predict.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    from brainseg.inference.predict import (
        predict,  # here, not at the top: `--help` needs Hydra only
    )

    if run_safely(predict, cfg):  # failures after predicting all the others
        sys.exit(1)


if __name__ == "__main__":
    main()
