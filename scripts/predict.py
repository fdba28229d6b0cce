"""Predict brain masks on new scans (NIfTI, DICOM series and studies, or MIP PNGs):

    python scripts/predict.py input=FILE_OR_DIR [output=DIR] [model=mip | ckpt_path=PATH] [tta=flip]
    python scripts/predict.py ckpt_path=[A,B,C]|MULTIRUN_DIR input=FILE_OR_DIR   # an ensemble

No checkpoint: the shipped 3-D model. Exit status 1 if any case failed. See conf/predict.yaml.
"""

import sys

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely
from brainseg.pretrained import register_model_choices

register_model_choices()  # model=mip | model=volume


@hydra.main(version_base="1.3", config_path="../conf", config_name="predict")
def main(cfg: DictConfig) -> None:
    # imported here, not at the top: `--help` needs Hydra only
    from brainseg.inference.predict import predict

    if run_safely(predict, cfg):  # failures after predicting all the others
        sys.exit(1)


if __name__ == "__main__":
    main()
