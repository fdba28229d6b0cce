"""Generate a synthetic head CTA dataset in the researchers' layout.

    python scripts/synthesize.py out=data/synthetic n=40 seed=0 preset=default

Writes ``<out>/CTA images/synth_XXXX.nii.gz`` and ``<out>/brain masks/synth_XXXX_ROI.nii.gz``;
existing cases are kept, so an interrupted run resumes. Options: conf/synthesize.yaml.
"""

from __future__ import annotations

import time

import hydra
from omegaconf import DictConfig

from brainseg.synthetic import SyntheticConfig, synthesize_dataset


@hydra.main(version_base="1.3", config_path="../conf", config_name="synthesize")
def main(cfg: DictConfig) -> None:
    start = time.perf_counter()
    ids = synthesize_dataset(cfg.out, cfg.n, cfg.seed, SyntheticConfig.preset(cfg.preset), cfg.workers, cfg.progress)
    print(f"{len(ids)} {cfg.preset} cases (seed {cfg.seed}) in {cfg.out} after {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
