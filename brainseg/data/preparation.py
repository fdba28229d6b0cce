"""Discovery, validation and MIP caching of a whole dataset, on all cores.

This is the one path from a dataset folder to cached projections: the DataModule and
``scripts/preprocess.py`` both call :func:`prepare_dataset`. Bad cases are reported with a
one-line reason each; ``on_bad_case`` decides whether they are skipped or stop the run.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from brainseg.data.cache import MipCache, cache_key
from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.nifti import DEFAULT_MAX_VOXELS
from brainseg.data.projection import Projection, project_case
from brainseg.errors import BadCaseError, BadDatasetError

log = logging.getLogger(__name__)

BAD_CASE_POLICIES = ("skip", "fail")
MIN_CASES_PER_WORKER = 8  # below this a worker process costs more to start than it saves
# What changes the cached pixels; anything here invalidates old PNGs when it changes.
PROJECTION_SETTINGS = {"projection": "mip", "axis": "S", "orientation": "radiological"}



@dataclass
class PreparedDataset:
    """Projections of the usable cases, and why the others were left out."""

    projections: dict[str, Projection] = field(default_factory=dict)
    records: dict[str, CaseRecord] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> one-line reason
    warnings: list[str] = field(default_factory=list)
    newly_cached: int = 0

    def summary(self) -> str:
        reused = len(self.projections) - self.newly_cached
        return (
            f"{len(self.projections)} cases ready ({self.newly_cached} projected, {reused} from cache), "
            f"{len(self.skipped)} skipped"
        )


def _cached_projection(record: CaseRecord, cache_root: str) -> Projection | None:
    """The cached projection of a case if its PNGs are current; ``None`` on any miss."""
    try:
        return MipCache(cache_root).load(record.case_id, cache_key(record, PROJECTION_SETTINGS))
    except OSError:  # a source file vanished or cannot be stat'ed: let projection report it
        return None


def _prepare_case(record: CaseRecord, cache_root: str, affine_tolerance: float, max_voxels: int):
    """Worker: project and cache one case, or give the one-line reason it is unusable."""
    try:
        key = cache_key(record, PROJECTION_SETTINGS)
        projection = project_case(record, affine_tolerance, max_voxels)
        MipCache(cache_root).store(record.case_id, key, projection)
        return record, projection, None, True
    except BadCaseError as error:
        return record, None, error, False
    except (OSError, ValueError, MemoryError) as error:  # anything else is still one line, naming the case
        return record, None, BadCaseError(record.image_path, f"{type(error).__name__}: {error}"), False


def select_shard(cases: list[CaseRecord], shard: int, num_shards: int) -> list[CaseRecord]:
    """Every ``num_shards``-th case of the sorted list, starting at ``shard``: disjoint shards."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}")
    ordered = sorted(cases, key=lambda record: record.case_id)
    return ordered[shard::num_shards]


def prepare_dataset(
    root: str | Path,
    cache_dir: str | Path,
    on_bad_case: str = "skip",
    workers: int | None = None,
    affine_tolerance: float = 1e-3,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    shard: int = 0,
    num_shards: int = 1,
    progress: bool = True,
) -> PreparedDataset:
    """Discover, validate, project and cache every case under ``root``.

    Args:
        root: dataset folder (see :mod:`brainseg.data.discovery` for the layouts).
        cache_dir: where the MIP PNGs go.
        on_bad_case: 'skip' leaves bad cases out with a warning; 'fail' raises after listing all.
        workers: processes to use; defaults to all cores.
        shard, num_shards: prepare only this shard of the sorted cases (cluster preprocessing).

    Raises:
        BadDatasetError: under 'fail', if any case or file is unusable.
    """
    if on_bad_case not in BAD_CASE_POLICIES:
        raise ValueError(f"on_bad_case must be one of {BAD_CASE_POLICIES}, got {on_bad_case!r}")
    discovery = discover_cases(root)
    prepared = PreparedDataset(skipped=dict(discovery.problems))
    cases = select_shard(discovery.cases, shard, num_shards)
    # Cache hits are read here: a worker pool costs seconds to start, worth it only for misses.
    cached = [(record, _cached_projection(record, str(cache_dir))) for record in cases]
    _collect(((record, projection, None, False) for record, projection in cached if projection), prepared, None)
    missing = [record for record, projection in cached if projection is None]
    arguments = [(record, str(cache_dir), affine_tolerance, max_voxels) for record in missing]
    bar = tqdm(total=len(missing), desc="Preparing MIPs", unit="case", disable=not progress or not missing, leave=False)
    _collect(run_cases(_prepare_case, arguments, workers, chunksize=4), prepared, bar)
    bar.close()
    report_bad_cases(prepared.skipped, prepared.warnings, on_bad_case)
    return prepared


def run_cases(worker, arguments: list[tuple], workers: int | None, chunksize: int = 4):
    """Yield ``worker(*args)`` for each argument tuple: in this process for a few cases, else in a
    pool of ``workers`` processes (default: all cores) started with spawn, not fork, since the
    caller may hold torch threads."""
    count = max(1, min(workers or os.cpu_count() or 1, len(arguments) // MIN_CASES_PER_WORKER))
    if count == 1:
        yield from (worker(*args) for args in arguments)
        return
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(worker, *zip(*arguments), chunksize=chunksize)


def report_bad_cases(skipped: dict[str, str], warnings: list[str], on_bad_case: str) -> None:
    """Log every warning and skipped file; under 'fail' raise with one line per bad file.

    Raises:
        BadDatasetError: under ``on_bad_case='fail'`` when anything was skipped.
    """
    for message in warnings:
        log.warning(message)
    for path, reason in skipped.items():
        log.warning("skipped %s: %s", path, reason)
    if skipped and on_bad_case == "fail":
        lines = "\n".join(f"  {path}: {reason}" for path, reason in skipped.items())
        raise BadDatasetError(f"{len(skipped)} bad file(s) under data.on_bad_case=fail:\n{lines}")


def _collect(results, prepared: PreparedDataset, bar) -> None:
    for record, projection, error, newly in results:
        if bar is not None:
            bar.update()
        if error is not None:
            prepared.skipped[error.path] = error.problem
            continue
        prepared.projections[record.case_id] = projection
        prepared.records[record.case_id] = record
        prepared.warnings.extend(projection.warnings)
        prepared.newly_cached += int(newly)
