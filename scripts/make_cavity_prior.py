"""Make the atlas cranial cavity that synthetic heads can draw (brainseg/synthetic/cavity_prior.npz):

    python scripts/make_cavity_prior.py [gray_matter=GM.nii.gz white_matter=WM.nii.gz]

From the MNI ICBM152 2009 gray and white matter maps (an installed nilearn's package data,
unless given). Run once; the result ships with brainseg. Options: conf/make_cavity_prior.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="make_cavity_prior")
def main(cfg: DictConfig) -> None:
    from benchmarks.atlas import make_cavity_prior

    from brainseg.cli import run_safely

    run_safely(make_cavity_prior, cfg)


if __name__ == "__main__":
    main()
