"""Predict brain masks on new scans (NIfTI, DICOM series or MIP PNGs):

    python scripts/predict.py ckpt_path=PATH input=FILE_OR_DIR [output=DIR] [tta=flip]
    python scripts/predict.py ckpt_path=[A,B,C]|MULTIRUN_DIR input=FILE_OR_DIR   # an ensemble

Exits with status 1 if any case failed (after predicting all the others). See conf/predict.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely
from brainseg.inference.predict import predict


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    if run_safely(predict, cfg):  # failures after predicting all the others
        sys.exit(1)


if __name__ == "__main__":
    main()
