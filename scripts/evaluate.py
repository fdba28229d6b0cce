"""Score a checkpoint case by case, with a visual report:

    python scripts/evaluate.py ckpt_path=PATH [split=test] [data.root=DIR] [resolution=network|original] [tta=flip]
    python scripts/evaluate.py ckpt_path=[A,B,C]|MULTIRUN_DIR data.root=DIR   # an ensemble

See conf/evaluate.yaml for the options.
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg: DictConfig) -> None:
    from brainseg.evaluation.evaluate import (
        evaluate,  # here, not at the top: `--help` needs Hydra only
    )

    run_safely(evaluate, cfg)  # 2-D or 3-D scores, as the checkpoint was trained


if __name__ == "__main__":
    main()
