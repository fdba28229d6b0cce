"""Discovery, validation, representation and caching of a whole dataset, on all cores.

The one path from a dataset folder to what training loads, whatever the representation::

    discover -> open_case (validate) -> representation.make (MIP or slice stack) -> cache

The DataModules, ``scripts/preprocess.py`` and evaluation all call :func:`prepare_dataset`.
Bad cases are reported with a one-line reason each; ``on_bad_case`` decides whether they are
skipped or stop the run. Temporaries that killed writers left in the cache are removed first.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
import traceback
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol

from tqdm.auto import tqdm

from brainseg.data.cache import cache_key, remove_stale_temporaries
from brainseg.data.cases import OpenedCase, open_case
from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.nifti import DEFAULT_MAX_VOXELS
from brainseg.data.projection import MipRepresentation
from brainseg.errors import BadCaseError, BadDatasetError, WorkerError

log = logging.getLogger(__name__)

BAD_CASE_POLICIES = ("skip", "fail")
MIN_CASES_PER_WORKER = 8  # below this a worker process costs more to start than it saves


class Representation(Protocol):
    """What a validated case becomes for training, and where that is cached.

    Implemented by :class:`~brainseg.data.projection.MipRepresentation` and
    :class:`~brainseg.data.slices.SliceRepresentation`; a new representation needs these four
    members and nothing else in this module. It must pickle (it travels to worker processes).
    """

    name: str  # what the progress bar and summary call the items ("MIPs", "slices")
    cache_folder: str  # sub-folder of the dataset's cache

    def settings(self) -> dict: ...  # what changes the cached arrays: part of every cache key

    def make(self, case: OpenedCase) -> Any: ...  # the item; it has a ``warnings`` list

    def cache(self, root: str | Path) -> Any: ...  # with load(case_id, key) -> item | None and store(case_id, key, item)


@dataclass
class PreparedDataset:
    """Items of the usable cases (case ID -> MIP or slice stack), and why the others were left out."""

    items: dict[str, Any] = field(default_factory=dict)
    records: dict[str, CaseRecord] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # file -> one-line reason
    warnings: list[str] = field(default_factory=list)
    newly_cached: int = 0

    def summary(self) -> str:
        reused = len(self.items) - self.newly_cached
        return f"{len(self.items)} cases ready ({self.newly_cached} prepared, {reused} from cache), {len(self.skipped)} skipped"


def _cached(record: CaseRecord, representation: Representation, cache_root: str):
    """The cached item of a case if it is current; ``None`` on any miss."""
    try:
        return representation.cache(cache_root).load(record.case_id, cache_key(record, representation.settings()))
    except OSError:  # a source file vanished or cannot be stat'ed: let preparation report it
        return None


def _prepare_case(record: CaseRecord, representation: Representation, cache_root: str, affine_tolerance: float, max_voxels: int):
    """Worker: validate, represent and cache one case, or give the one-line reason it is unusable."""
    try:
        key = cache_key(record, representation.settings())
        item = representation.make(open_case(record, affine_tolerance, max_voxels))
        representation.cache(cache_root).store(record.case_id, key, item)
        return record, item, None
    except BadCaseError as error:
        return record, None, error
    except (OSError, ValueError, MemoryError) as error:  # anything else is still one line, naming the case
        return record, None, BadCaseError(record.image_path, f"{type(error).__name__}: {error}")


def select_shard(cases: list[CaseRecord], shard: int, num_shards: int) -> list[CaseRecord]:
    """Every ``num_shards``-th case of the sorted list, starting at ``shard``: disjoint shards."""
    if not 0 <= shard < num_shards:
        raise ValueError(f"shard must be in [0, {num_shards}), got {shard}")
    ordered = sorted(cases, key=lambda record: record.case_id)
    return ordered[shard::num_shards]


def prepare_dataset(
    root: str | Path,
    cache_dir: str | Path,
    representation: Representation | None = None,
    on_bad_case: str = "skip",
    workers: int | None = None,
    affine_tolerance: float = 1e-3,
    max_voxels: int = DEFAULT_MAX_VOXELS,
    shard: int = 0,
    num_shards: int = 1,
    progress: bool = True,
    keep_items: bool = True,
) -> PreparedDataset:
    """Discover, validate, represent and cache every case under ``root``.

    Args:
        root: dataset folder (see :mod:`brainseg.data.discovery` for the layouts).
        cache_dir: where this representation's cache goes.
        representation: what each case becomes; defaults to its MIP (:class:`MipRepresentation`).
        on_bad_case: 'skip' leaves bad cases out with a warning; 'fail' raises after listing all.
        workers: processes to use; defaults to all cores.
        shard, num_shards: prepare only this shard of the sorted cases (cluster preprocessing).
        keep_items: hold every case's item in ``items``; ``False`` leaves them in the cache only (the
            ``items`` values are ``None``), for a caller that reads them back one at a time with
            :func:`load_item`, so that its memory does not grow with the number of cases.

    Raises:
        BadDatasetError: under 'fail', if any case or file is unusable.
    """
    if on_bad_case not in BAD_CASE_POLICIES:
        raise ValueError(f"on_bad_case must be one of {BAD_CASE_POLICIES}, got {on_bad_case!r}")
    representation = representation or MipRepresentation()
    removed = remove_stale_temporaries(cache_dir) if Path(cache_dir).is_dir() else []
    if removed:
        log.info("removed %d temporary file(s) that interrupted writers left in %s", len(removed), cache_dir)
    discovery = discover_cases(root)
    prepared = PreparedDataset(skipped=dict(discovery.problems))
    cases = select_shard(discovery.cases, shard, num_shards)
    # Cache hits are read here: a worker pool costs seconds to start, worth it only for misses.
    missing = []
    for record in cases:
        item = _cached(record, representation, str(cache_dir))
        if item is None:
            missing.append(record)
        else:
            _collect(prepared, record, item, None, newly=False, keep=keep_items)
    arguments = [(record, representation, str(cache_dir), affine_tolerance, max_voxels) for record in missing]
    bar = tqdm(total=len(missing), desc=f"Preparing {representation.name}", unit="case", disable=not progress or not missing, leave=False)
    for record, item, error in run_cases(_prepare_case, arguments, workers):
        bar.update()
        _collect(prepared, record, item, error, newly=True, keep=keep_items)
    bar.close()
    prepared.items = dict(sorted(prepared.items.items()))
    report_bad_cases(prepared.skipped, prepared.warnings, on_bad_case)
    return prepared


def load_item(record: CaseRecord, representation: Representation, cache_dir: str | Path):
    """A prepared case's item read back from the cache; ``None`` if it is no longer there."""
    return _cached(record, representation, str(cache_dir))


def run_cases(worker, arguments: list[tuple], workers: int | None, chunksize: int = 2):
    """Yield ``worker(*args)`` for each argument tuple: in this process for a few cases, else in a
    pool of ``workers`` processes (default: all cores) started with spawn, not fork, since the
    caller may hold torch threads. Workers return errors as values; they never raise."""
    count = max(1, min(workers or os.cpu_count() or 1, len(arguments) // MIN_CASES_PER_WORKER))
    if count == 1:
        yield from (worker(*args) for args in arguments)
        return
    with ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield from pool.map(partial(call_intact, worker), *zip(*arguments), chunksize=chunksize)


def call_intact(worker, *args):
    """``worker(*args)`` in a pool process, so that whatever it raises reaches the caller whole.

    An exception that does not survive pickling (a class whose constructor takes other arguments
    than its ``args``) would break the pool with "a process ... terminated abruptly" and lose the
    error; it is sent back as a :class:`WorkerError` with its type, message and traceback instead.
    """
    try:
        return worker(*args)
    except Exception as error:
        if crosses_intact(error):
            raise
        task = repr(args[0]) if args else ""
        raise WorkerError(type(error).__qualname__, str(error), traceback.format_exc(), task) from None


def crosses_intact(value) -> bool:
    """Whether ``value`` survives ``pickle`` as the same type with the same message (for errors)."""
    try:
        copy = pickle.loads(pickle.dumps(value))
    except Exception:
        return False
    return type(copy) is type(value) and (not isinstance(value, BaseException) or str(copy) == str(value))


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
        raise BadDatasetError(skipped)


def _collect(prepared: PreparedDataset, record: CaseRecord, item, error: BadCaseError | None, newly: bool, keep: bool = True) -> None:
    if error is not None:
        prepared.skipped[error.path] = error.problem
        return
    prepared.items[record.case_id] = item if keep else None
    prepared.records[record.case_id] = record
    prepared.warnings.extend(item.warnings)
    prepared.newly_cached += int(newly)
