"""Preprocessing as its own job: fill the cache of the configured representation (MIPs or slices)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hydra.utils import instantiate
from omegaconf import DictConfig

log = logging.getLogger(__name__)


def preprocess(cfg: DictConfig) -> dict:
    """Run the DataModule's preparation step alone; write ``preprocess_summary.json`` in the run folder."""
    datamodule = instantiate(cfg.data)
    datamodule.prepare_data()
    prepared = datamodule.prepared
    summary = {
        "dataset": str(datamodule.dataset_root),
        "cache_dir": str(datamodule.resolved_cache_dir),
        "shard": f"{datamodule.shard}/{datamodule.num_shards}",  # this job's part of the sorted cases
        "representation": datamodule.representation().name,
        "cases_ready": len(prepared.items),
        "newly_prepared": prepared.newly_cached,
        "skipped": prepared.skipped,
        "warnings": prepared.warnings,
    }
    output = Path(cfg.paths.output_dir) / "preprocess_summary.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{datamodule.dataset_root}: {prepared.summary()}; cache: {datamodule.resolved_cache_dir}")
    for path, reason in prepared.skipped.items():
        print(f"  skipped {path}: {reason}")
    return summary
