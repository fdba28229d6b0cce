"""Compare the synthetic brain's proportions with the MNI ICBM152 2009 atlas's:

    python scripts/measure_atlas.py [gray_matter=GM.nii.gz white_matter=WM.nii.gz]

Prints lengths and heights (vertex to the skull base's fossae) of both brains and their ratio;
the atlas maps come from an installed nilearn unless given. Options: conf/measure_atlas.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="measure_atlas")
def main(cfg: DictConfig) -> None:
    from benchmarks.atlas import measure_atlas

    from brainseg.cli import run_safely

    run_safely(measure_atlas, cfg)


if __name__ == "__main__":
    main()
