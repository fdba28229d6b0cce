"""Memory over many cases: does predict or evaluate grow over a long folder? (MIP and slice checkpoints)

    python scripts/benchmark_memory.py                      # 20 vs 200 cases; adds the section to docs/benchmarks.{json,md}
    python scripts/benchmark_memory.py small=6 large=60 output=null   # quicker, printed only

Options: conf/benchmark_memory.yaml.
"""

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="../conf", config_name="benchmark_memory")
def main(cfg: DictConfig) -> None:
    from benchmarks.memory import benchmark_memory

    from brainseg.cli import run_safely

    run_safely(benchmark_memory, cfg)


if __name__ == "__main__":
    main()
