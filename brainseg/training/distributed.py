"""DDP under Hydra: every process of a job trains that job, in its run folder, with its config.

Lightning's DDP (``strategy: ddp`` outside SLURM) starts ``devices - 1`` more copies of the entry
point with ``sys.argv`` plus ``hydra.run.dir=<HydraConfig run.dir>``. That is right for a single
run. In a multirun it is wrong: ``sys.argv`` holds ``-m`` and the sweep (``optimizer=adam,sgd``,
or ``hparams_search=optuna`` whose copies would start their own studies and sample other
parameters), and ``run.dir`` is not the job's folder. :func:`ddp_runs_this_job` makes the command
Lightning sees, for the length of one multirun job, the job itself: its concrete overrides, in run
mode, in its folder. Afterwards it takes down the process group and the variables Lightning set, so
the next job of a sweep that runs jobs in this same process starts its own group.

Under SLURM (``hydra/launcher=submitit_slurm`` with ``tasks_per_node = devices``) SLURM starts every
rank with the same pickled overrides, so nothing is re-launched and this module does nothing.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, read_write

from brainseg.training.config import in_multirun

# Set by Lightning's subprocess launcher in the parent process; left over, they would make the next
# job of an in-process sweep wait for children that no longer exist.
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE", "OMP_NUM_THREADS")


def config_digest(cfg: DictConfig) -> str:
    """Short hash of the resolved config: every DDP rank logs it, and all must log the same."""
    return hashlib.sha1(OmegaConf.to_yaml(cfg, resolve=True).encode()).hexdigest()[:12]


def job_command_line(hydra_cfg: DictConfig) -> list[str]:
    """Arguments that recompose this multirun job as a single run: config source and overrides."""
    arguments = [f"--config-name={hydra_cfg.job.config_name}"]
    for source in hydra_cfg.runtime.config_sources:
        if source.provider == "main" and source.schema == "file":
            arguments.append(f"--config-path={source.path}")
        elif source.provider == "command-line" and source.schema == "file":
            arguments.append(f"--config-dir={source.path}")
    arguments += list(hydra_cfg.overrides.task)
    arguments += [override for override in hydra_cfg.overrides.hydra if not override.startswith("hydra.mode=")]
    return [*arguments, "hydra.mode=RUN"]


@contextmanager
def ddp_runs_this_job() -> Iterator[None]:
    """Within a multirun job, point DDP's child processes at this job (a no-op otherwise)."""
    if not in_multirun():
        yield
        return
    hydra_cfg = HydraConfig.get()
    argv, threads = list(sys.argv), torch.get_num_threads()
    environment = {name: os.environ.get(name) for name in LAUNCHER_VARIABLES}
    sys.argv = [argv[0], *job_command_line(hydra_cfg)]
    with read_write(hydra_cfg.run):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir  # Lightning passes hydra.run.dir=<this> to the children
    try:
        yield
    finally:
        sys.argv = argv
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        for name, value in environment.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)
