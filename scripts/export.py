"""Export a checkpoint's network to ONNX or TorchScript, checked against the checkpoint:

    python scripts/export.py ckpt_path=PATH format=onnx|torchscript [output=FILE]

See conf/export.yaml for the options.
"""

import hydra
from omegaconf import DictConfig

from brainseg.cli import run_safely


@hydra.main(version_base="1.3", config_path="../conf", config_name="export")
def main(cfg: DictConfig) -> None:
    from brainseg.inference.export import (
        export,  # here, not at the top: `--help` needs Hydra only
    )

    run_safely(export, cfg)


if __name__ == "__main__":
    main()
