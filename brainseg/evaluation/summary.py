"""Per-case tables and their summary, the same for 2-D and 3-D scores: diffable, sorted keys."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

STATISTICS = {"mean": np.mean, "median": np.median, "std": np.std, "min": np.min, "max": np.max}


def summarize(rows: Sequence[dict], scores: Sequence[str]) -> dict[str, float]:
    """``<score>/{mean,median,std,min,max}`` over the cases that have the score, plus counts.

    ``cases`` counts every row; ``cases_excluded`` the rows scored blank by convention (both
    masks empty); ``cases_failed`` the rows with an ``error`` (they are in no mean).
    """
    failed = [row for row in rows if row.get("error")]
    summary: dict[str, float] = {
        "cases": len(rows),
        "cases_excluded": sum(row.get("dice") is None and not row.get("error") for row in rows),
        "cases_failed": len(failed),
    }
    for name in scores:
        values = np.array([row[name] for row in rows if _is_number(row.get(name))], float)
        if values.size:
            summary.update({f"{name}/{statistic}": float(function(values)) for statistic, function in STATISTICS.items()})
    return dict(sorted(summary.items()))


def write_per_case(rows: Sequence[dict], path: str | Path, columns: Sequence[str]) -> None:
    """``per_case.csv``: one row per case in the given order; missing scores are blank cells."""
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({name: _cell(row.get(name)) for name in columns})


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cell(value) -> str:
    if value is None:
        return ""
    return f"{value:.6f}" if isinstance(value, float) else str(value)
