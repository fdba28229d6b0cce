"""Compare two models case by case (paired bootstrap CI and Wilcoxon signed-rank test):

    python scripts/compare.py a=RUN_OR_EVAL_DIR b=RUN_OR_EVAL_DIR [score=dice]

See conf/compare.yaml for the options.
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely
from brainseg.evaluation.compare import compare


@hydra.main(version_base="1.3", config_path="../conf", config_name="compare")
def main(cfg: DictConfig) -> None:
    run_safely(compare, cfg)  # comparison.md, comparison.png in the run folder


if __name__ == "__main__":
    main()
