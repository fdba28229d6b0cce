"""Data loading: the share of each training step spent waiting for the next batch.

Waiting is the time from the end of one batch to the start of the next (the DataLoader
fetching, collating, augmenting), as :class:`~benchmarks.clock.StepClock` measures it: what a
faster loader could save at most.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.training import train_with_clock


def run(workdir: Path, overrides: list[str], epochs: int = 4, worker_counts: tuple[int, ...] = (0, 2)) -> dict:
    """Waiting share and throughput of the default training loop with each DataLoader worker count."""
    rows = []
    for workers in worker_counts:
        run_overrides = [*overrides, f"data.num_workers={workers}", f"trainer.max_epochs={epochs}"]
        summary = train_with_clock(workdir, f"loading-w{workers}", run_overrides)
        rows.append({"num_workers": workers, **summary})
    return {"epochs": epochs, "runs": rows}
