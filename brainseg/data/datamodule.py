"""What every brainseg DataModule shares: from a dataset folder to split, normalized loaders.

``prepare_data`` (one process) generates the synthetic dataset when no ``root`` is given and
fills the cache of the DataModule's representation; ``setup`` (every process) reads the cache,
splits by case, pools normalization statistics over the training split and builds the
datasets. The representations are siblings: :class:`~brainseg.data.mip_datamodule.MipDataModule`
(``mode=mip``) and :class:`~brainseg.data.slice_datamodule.SliceDataModule` (``mode=slices``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from brainseg.data.augmentation import Augmentation
from brainseg.data.cache import dataset_cache_dir
from brainseg.data.normalization import ct_statistics
from brainseg.data.preparation import PreparedDataset, Representation, prepare_dataset
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.resumable import EpochSampler, ResumableLoader, ShuffleSampler

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def split_cases(case_ids: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Shuffle case IDs with ``seed`` and cut them into train/val/test by ``fractions``.

    Every split with a positive fraction gets at least one case when there are enough cases.
    """
    total = sum(fractions[name] for name in SPLITS)
    if total <= 0 or any(fractions[name] < 0 for name in SPLITS):
        raise ValueError(f"split fractions must be >= 0 and sum > 0, got {dict(fractions)}")
    ordered = sorted(case_ids)
    order = np.random.default_rng(seed).permutation(len(ordered))
    shuffled = [ordered[i] for i in order]
    n = len(shuffled)
    n_val = max(int(round(n * fractions["val"] / total)), int(fractions["val"] > 0 and n >= 3))
    n_test = max(int(round(n * fractions["test"] / total)), int(fractions["test"] > 0 and n >= 3))
    n_train = n - n_val - n_test
    if n_train < 1:
        raise ValueError(f"{n} cases are too few to split into train/val/test with fractions {dict(fractions)}")
    return {
        "train": sorted(shuffled[:n_train]),
        "val": sorted(shuffled[n_train : n_train + n_val]),
        "test": sorted(shuffled[n_train + n_val :]),
    }


def split_folds(case_ids: list[str], num_folds: int, fold: int, fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Fold ``fold`` of a ``num_folds``-fold cross-validation: the test split is one of ``num_folds``
    disjoint folds that together hold every case; validation and training come from the others.

    The cases are shuffled with ``seed`` (the same order for every fold, so the folds partition
    the dataset) and cut into ``num_folds`` folds whose sizes differ by at most one. Of the other
    cases, a ``val / (train + val)`` share is validation (at least one when ``val > 0``), taken
    from the folds after the test fold, so validation sets differ between folds. ``fractions["test"]``
    is not used: the test split is the fold.
    """
    if not 2 <= num_folds <= len(case_ids):
        raise ValueError(f"data.num_folds must be in 2..{len(case_ids)} (the number of cases), got {num_folds}")
    if not 0 <= fold < num_folds:
        raise ValueError(f"data.fold must be in 0..{num_folds - 1} for data.num_folds={num_folds}, got {fold}")
    if fractions["train"] <= 0 or fractions["val"] < 0:
        raise ValueError(f"split fractions must have train > 0 and val >= 0, got {dict(fractions)}")
    ordered = sorted(case_ids)
    shuffled = [ordered[i] for i in np.random.default_rng(seed).permutation(len(ordered))]
    folds = [list(part) for part in np.array_split(np.array(shuffled, dtype=object), num_folds)]
    rest = [case_id for part in folds[fold + 1 :] + folds[:fold] for case_id in part]
    share = fractions["val"] / (fractions["train"] + fractions["val"])
    n_val = max(int(round(len(rest) * share)), int(share > 0 and len(rest) >= 2))
    if len(rest) - n_val < 1:
        raise ValueError(f"{len(case_ids)} cases are too few for {num_folds} folds with a validation split")
    return {"train": sorted(rest[n_val:]), "val": sorted(rest[:n_val]), "test": sorted(folds[fold])}


class BrainDataModule(pl.LightningDataModule):
    """Discovery, validation, caching, splitting, normalization and loading, for one representation.

    Subclasses say what a case becomes (:meth:`representation`), how prepared items become
    datasets (:meth:`build_split`, :meth:`dataset`) and what inference must repeat
    (:meth:`preprocessing`); everything else is here.

    Args:
        root: dataset folder; ``None`` uses (and first generates) the synthetic dataset.
        synthetic: options of the synthetic dataset (``root``, ``n_cases``, ``seed``, ``preset``).
        cache_dir: cache folder of this dataset; ``None`` puts it under ``cache_root``, keyed by
            the dataset path. Each representation caches into its own sub-folder.
        cache_root: parent folder of automatically named caches.
        normalization: 'window' (clip to ``hu_window`` and scale to [0, 1]) or 'zscore'.
        hu_window: HU window ``[low, high]``.
        split: fractions ``{train, val, test}``; ``split_seed`` shuffles the cases.
        num_folds, fold: ``num_folds`` (>= 2) makes the test split fold ``fold`` (0-based) of a
            k-fold cross-validation (:func:`split_folds`); ``None`` (the default) is one split by
            ``split`` fractions.
        batch_size, num_workers: DataLoader settings.
        augmentation: keyword arguments of :class:`Augmentation`; ``None`` switches it off.
        on_bad_case: 'skip' or 'fail' (see :func:`prepare_dataset`).
        affine_tolerance: mm; a mask whose affine differs more from its image's is refused.
        preprocess_workers: processes for preparation; ``None`` = all cores.
        run_dir: where ``split.json`` and ``data_report.json`` are written (the run folder).
        shard, num_shards: ``prepare_data`` prepares only this shard of the sorted cases, so
            several preprocessing jobs fill one cache together; ``setup`` always uses every case.
        seed: the training order and augmentation of epoch ``e`` are a function of ``(seed, e)``
            (:mod:`brainseg.data.resumable`), so a resumed run repeats them; ``None`` takes torch's
            initial seed, which ``seed_everything`` (the run's ``seed``) has set.
    """

    mode: str = ""  # the Preprocessing mode this DataModule trains for

    def __init__(
        self,
        root: str | None = None,
        synthetic: dict | None = None,
        cache_dir: str | None = None,
        cache_root: str = "data/cache",
        normalization: str = "window",
        hu_window: tuple[float, float] = (-100.0, 1900.0),
        split: dict | None = None,
        split_seed: int = 0,
        num_folds: int | None = None,
        fold: int = 0,
        batch_size: int = 8,
        num_workers: int = 0,
        augmentation: dict | None = None,
        on_bad_case: str = "skip",
        affine_tolerance: float = 1e-3,
        preprocess_workers: int | None = None,
        run_dir: str | None = None,
        shard: int = 0,
        num_shards: int = 1,
        seed: int | None = None,
    ):
        super().__init__()
        if root is None and synthetic is None:
            raise ValueError("give data.root (a dataset folder) or data.synthetic (options of the synthetic dataset)")
        if float(hu_window[0]) >= float(hu_window[1]):
            raise ValueError(f"data.hu_window must have low < high, got {list(hu_window)}")
        if num_folds is not None and not (int(num_folds) >= 2 and 0 <= int(fold) < int(num_folds)):
            raise ValueError(f"data.fold must be in 0..{int(num_folds) - 1} with data.num_folds={num_folds} (>= 2), got {fold}")
        if not 0 <= shard < num_shards:
            raise ValueError(f"data.shard must be in [0, data.num_shards={num_shards}), got {shard}")
        self.root = root
        self.synthetic = dict(synthetic) if synthetic else None
        self.cache_dir = cache_dir
        self.cache_root = cache_root
        self.normalization = normalization
        self.hu_window = (float(hu_window[0]), float(hu_window[1]))
        self.split = dict(split or {"train": 0.7, "val": 0.15, "test": 0.15})
        self.split_seed = split_seed
        self.num_folds, self.fold = (int(num_folds), int(fold)) if num_folds is not None else (None, None)
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = Augmentation(**augmentation) if augmentation is not None else None
        self.on_bad_case = on_bad_case
        self.affine_tolerance = affine_tolerance
        self.preprocess_workers = preprocess_workers
        self.run_dir = Path(run_dir) if run_dir else None
        self.shard, self.num_shards = int(shard), int(num_shards)
        self.seed = int(torch.initial_seed() if seed is None else seed)
        self.statistics: dict | None = None
        self.cases: dict[str, list] = {}  # split -> one picture-ready item per case (panels, baseline)
        self.prepared: PreparedDataset | None = None

    # ---- what a subclass says ----------------------------------------------------------------
    def representation(self) -> Representation:
        """What each case becomes, and its cache."""
        raise NotImplementedError

    def training_hu(self, items: list) -> list[np.ndarray]:
        """HU arrays of the training items that normalization statistics are pooled over."""
        raise NotImplementedError

    def build_split(self, split: dict[str, list[str]]) -> None:
        """Turn the prepared items of each split into what :meth:`dataset` serves; fill ``cases``."""
        raise NotImplementedError

    def dataset(self, split: str, train: bool) -> Dataset:
        raise NotImplementedError

    def sampler(self, dataset: Dataset) -> EpochSampler:
        """The training order: every sample once per epoch, shuffled anew with ``(seed, epoch)``."""
        return ShuffleSampler(len(dataset), self.seed)

    def preprocessing(self) -> Preprocessing:
        """Everything inference needs to turn a new scan into network input."""
        raise NotImplementedError

    def baseline_scores(self) -> dict[str, float]:
        """Test scores of a classical baseline, where the representation has one."""
        return {}

    # ---- locations -------------------------------------------------------------------------
    @property
    def dataset_root(self) -> Path:
        return Path(self.root) if self.root is not None else Path(self.synthetic["root"])

    @property
    def resolved_cache_dir(self) -> Path:
        """``<cache_dir or cache_root/<dataset>-<hash>>/<representation folder>``."""
        base = Path(self.cache_dir) if self.cache_dir is not None else dataset_cache_dir(self.dataset_root, self.cache_root)
        return base / self.representation().cache_folder

    # ---- Lightning hooks ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.cases:
            return  # Lightning calls this again before testing; everything is already in memory
        if self.root is None:
            self._synthesize()
        sharding = {"shard": self.shard, "num_shards": self.num_shards} if self.num_shards > 1 else {}
        self.prepare(progress=True, **sharding)

    def setup(self, stage: str | None = None) -> None:
        if self.cases:
            return
        # a sharded prepare_data saw only its shard; training uses every case
        prepared = self.prepared if self.prepared and self.num_shards == 1 else self.prepare(progress=False)
        split = self.split_case_ids(list(prepared.items))
        if self.normalization == "zscore":
            self.statistics = ct_statistics(self.training_hu([prepared.items[case_id] for case_id in split["train"]]))
        self.build_split(split)
        self._write_run_files(split)
        log.info("split: %s", {name: len(ids) for name, ids in split.items()})

    def split_case_ids(self, case_ids: list[str]) -> dict[str, list[str]]:
        """Train/val/test case IDs: one split by fractions, or this fold of a k-fold cross-validation."""
        if self.num_folds is None:
            return split_cases(case_ids, self.split, self.split_seed)
        return split_folds(case_ids, self.num_folds, self.fold, self.split, self.split_seed)

    def prepare(self, progress: bool, shard: int = 0, num_shards: int = 1) -> PreparedDataset:
        """Validate, represent and cache every case (or one shard of them)."""
        self.prepared = prepare_dataset(
            self.dataset_root,
            self.resolved_cache_dir,
            self.representation(),
            on_bad_case=self.on_bad_case,
            workers=self.preprocess_workers,
            affine_tolerance=self.affine_tolerance,
            shard=shard,
            num_shards=num_shards,
            progress=progress,
        )
        log.info("%s: %s", self.dataset_root, self.prepared.summary())
        return self.prepared

    def _synthesize(self) -> None:
        from brainseg.synthetic import SyntheticConfig, synthesize_dataset

        options = self.synthetic
        config = SyntheticConfig.preset(options.get("preset", "default"))
        synthesize_dataset(Path(options["root"]), int(options["n_cases"]), int(options["seed"]), config)

    def normalize(self, hu: np.ndarray) -> np.ndarray:
        """HU -> network input, with this datamodule's scheme and statistics."""
        return self.preprocessing().normalize(hu)

    def _write_run_files(self, split: dict[str, list[str]]) -> None:
        if self.run_dir is None or (self.trainer is not None and not self.trainer.is_global_zero):
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        folds = {"fold": self.fold, "num_folds": self.num_folds} if self.num_folds is not None else {}
        (self.run_dir / "split.json").write_text(json.dumps({**folds, **split}, indent=2) + "\n")
        # The dataset's absolute path, so that evaluation finds it from any working directory; the path as given, for people.
        report = {
            "dataset": str(self.dataset_root.resolve()),
            "dataset_given": str(self.dataset_root),
            "skipped": self.prepared.skipped,
            "warnings": self.prepared.warnings,
        }
        (self.run_dir / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")

    # ---- loaders -----------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = self.dataset(split, train)
        if not train:
            return DataLoader(dataset, batch_size=self.batch_size, num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        sampler = self.sampler(dataset)
        return ResumableLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            drop_last=len(sampler) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed),  # worker seeds: never from the global stream
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    # ---- what travels with the model ---------------------------------------------------------
    def state_dict(self) -> dict:
        return {"preprocessing": self.preprocessing().to_dict()}
