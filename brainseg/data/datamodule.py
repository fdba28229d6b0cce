"""LightningDataModule for MIP brain segmentation: from a dataset folder to batches.

``prepare_data`` (one process) generates the synthetic dataset when no ``root`` is given and
fills the MIP cache; ``setup`` (every process) reads the cache, splits by case, normalizes the
images and resizes everything to ``image_size``. All MIPs are small, so they are held in memory
and augmented on the fly in the DataLoader workers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from brainseg.data.normalization import ct_statistics, normalize_hu
from brainseg.data.preparation import PreparedDataset, prepare_dataset
from brainseg.data.transforms import (
    Augmentation,
    SquareFit,
    fit_to_square,
    plan_square_fit,
)

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class MipCase:
    """One case at network resolution: raw HU for baselines and pictures, normalized for the net."""

    case_id: str
    hu: torch.Tensor  # (1, S, S) float32 HU
    image: torch.Tensor  # (1, S, S) float32, normalized
    mask: torch.Tensor  # (1, S, S) uint8 {0, 1}
    fit: SquareFit


class MipDataset(Dataset):
    """Cases of one split; training applies ``augmentation`` to image and mask together."""

    def __init__(self, cases: list[MipCase], augmentation: Augmentation | None = None):
        self.cases = cases
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, index: int) -> dict:
        case = self.cases[index]
        image, mask = case.image, case.mask.float()
        if self.augmentation is not None:
            image, mask = self.augmentation(image, mask)
        return {"image": image, "mask": mask, "index": index}


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


class MipDataModule(pl.LightningDataModule):
    """Discovery, validation, MIP caching, normalization, splitting and loading in one place.

    Args:
        root: dataset folder; ``None`` uses (and first generates) the synthetic dataset.
        synthetic: options of the synthetic dataset (``root``, ``n_cases``, ``seed``, ``preset``).
        cache_dir: MIP cache folder; ``None`` puts it under ``cache_root``, keyed by the dataset path.
        cache_root: parent folder of automatically named caches.
        image_size: side of the square network input, pixels; must suit the U-Net depth.
        normalization: 'window' (clip to ``window`` HU and scale to [0, 1]) or 'zscore'.
        window: HU window ``[low, high]``.
        split: fractions ``{train, val, test}``; split_seed shuffles the cases.
        batch_size, num_workers: DataLoader settings.
        augmentation: keyword arguments of :class:`Augmentation`; ``None`` switches it off.
        on_bad_case: 'skip' or 'fail' (see :func:`prepare_dataset`).
        shard, num_shards: ``prepare_data`` projects only this shard of the sorted cases, so
            several preprocessing jobs fill one cache together; ``setup`` always uses every case.
        run_dir: where ``split.json`` and ``skipped_cases.json`` are written (the run folder).
    """

    def __init__(
        self,
        root: str | None = None,
        synthetic: dict | None = None,
        cache_dir: str | None = None,
        cache_root: str = "data/mip_cache",
        image_size: int = 128,
        normalization: str = "window",
        window: tuple[float, float] = (-100.0, 1900.0),
        split: dict | None = None,
        split_seed: int = 0,
        batch_size: int = 8,
        num_workers: int = 0,
        augmentation: dict | None = None,
        on_bad_case: str = "skip",
        affine_tolerance: float = 1e-3,
        preprocess_workers: int | None = None,
        run_dir: str | None = None,
        shard: int = 0,
        num_shards: int = 1,
    ):
        super().__init__()
        if root is None and synthetic is None:
            raise ValueError("give data.root (a dataset folder) or data.synthetic (options of the synthetic dataset)")
        if float(window[0]) >= float(window[1]):
            raise ValueError(f"data.window must have low < high, got {list(window)}")
        if image_size < 8:
            raise ValueError(f"data.image_size must be at least 8, got {image_size}")
        if not 0 <= shard < num_shards:
            raise ValueError(f"data.shard must be in [0, data.num_shards={num_shards}), got {shard}")
        self.root = root
        self.synthetic = dict(synthetic) if synthetic else None
        self.cache_dir = cache_dir
        self.cache_root = cache_root
        self.image_size = int(image_size)
        self.normalization = normalization
        self.window = [float(window[0]), float(window[1])]
        self.split = dict(split or {"train": 0.7, "val": 0.15, "test": 0.15})
        self.split_seed = split_seed
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.augmentation = Augmentation(**augmentation) if augmentation is not None else None
        self.on_bad_case = on_bad_case
        self.affine_tolerance = affine_tolerance
        self.preprocess_workers = preprocess_workers
        self.run_dir = Path(run_dir) if run_dir else None
        self.shard, self.num_shards = int(shard), int(num_shards)
        self.statistics: dict | None = None
        self.cases: dict[str, list[MipCase]] = {}
        self.prepared: PreparedDataset | None = None

    # ---- locations -------------------------------------------------------------------------
    @property
    def dataset_root(self) -> Path:
        return Path(self.root) if self.root is not None else Path(self.synthetic["root"])

    @property
    def resolved_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return Path(self.cache_dir)
        digest = hashlib.sha1(str(self.dataset_root.resolve()).encode()).hexdigest()[:8]
        return Path(self.cache_root) / f"{self.dataset_root.name}-{digest}"

    # ---- Lightning hooks ---------------------------------------------------------------------
    def prepare_data(self) -> None:
        if self.cases:
            return  # Lightning calls this again before testing; everything is already in memory
        if self.root is None:
            self._synthesize()
        sharding = {"shard": self.shard, "num_shards": self.num_shards} if self.num_shards > 1 else {}
        self._prepare(progress=True, **sharding)

    def setup(self, stage: str | None = None) -> None:
        if self.cases:
            return
        # a sharded prepare_data saw only its shard; training uses every case
        prepared = self.prepared if self.prepared and self.num_shards == 1 else self._prepare(progress=False)
        split = split_cases(list(prepared.projections), self.split, self.split_seed)
        train_hu = [prepared.projections[case_id].image for case_id in split["train"]]
        if self.normalization == "zscore":
            self.statistics = ct_statistics(train_hu)
        self.cases = {name: [self._to_case(case_id) for case_id in ids] for name, ids in split.items()}
        self._write_run_files(split)
        log.info("split: %s", {name: len(ids) for name, ids in split.items()})

    def _synthesize(self) -> None:
        from brainseg.synthetic import SyntheticConfig, synthesize_dataset

        options = self.synthetic
        presets = {"default": SyntheticConfig, "realistic": SyntheticConfig.realistic, "wide": SyntheticConfig.wide}
        config = presets[options.get("preset", "default")]()
        synthesize_dataset(Path(options["root"]), int(options["n_cases"]), int(options["seed"]), config)

    def _prepare(self, progress: bool, shard: int = 0, num_shards: int = 1) -> PreparedDataset:
        self.prepared = prepare_dataset(
            self.dataset_root,
            self.resolved_cache_dir,
            on_bad_case=self.on_bad_case,
            workers=self.preprocess_workers,
            affine_tolerance=self.affine_tolerance,
            shard=shard,
            num_shards=num_shards,
            progress=progress,
        )
        log.info("%s: %s", self.dataset_root, self.prepared.summary())
        return self.prepared

    def _to_case(self, case_id: str) -> MipCase:
        projection = self.prepared.projections[case_id]
        fit = plan_square_fit(projection.image.shape, projection.spacing, self.image_size)
        hu, mask = fit_to_square(projection.image, projection.mask, fit)
        image = torch.from_numpy(self.normalize(hu.numpy()))
        return MipCase(case_id, hu, image, mask, fit)

    def normalize(self, hu: np.ndarray) -> np.ndarray:
        """HU -> network input, with this datamodule's scheme and statistics."""
        return normalize_hu(hu, self.normalization, self.window, self.statistics)

    def _write_run_files(self, split: dict[str, list[str]]) -> None:
        if self.run_dir is None or (self.trainer is not None and not self.trainer.is_global_zero):
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "split.json").write_text(json.dumps(split, indent=2) + "\n")
        report = {"dataset": str(self.dataset_root), "skipped": self.prepared.skipped, "warnings": self.prepared.warnings}
        (self.run_dir / "data_report.json").write_text(json.dumps(report, indent=2) + "\n")

    # ---- loaders -----------------------------------------------------------------------------
    def _loader(self, split: str, train: bool) -> DataLoader:
        dataset = MipDataset(self.cases[split], self.augmentation if train else None)
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=train,
            drop_last=train and len(dataset) > self.batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)

    # ---- what travels with the model ---------------------------------------------------------
    def preprocessing(self) -> dict:
        """Everything prediction needs to turn a new scan into network input, as plain types."""
        return {
            "mode": "mip",
            "axis": "S",
            "orientation": "radiological",
            "image_size": self.image_size,
            "normalization": self.normalization,
            "window": list(self.window),
            "statistics": self.statistics,
        }

    def state_dict(self) -> dict:
        return {"preprocessing": self.preprocessing()}
