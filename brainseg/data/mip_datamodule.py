"""MIP brain segmentation data (``mode=mip``): one maximum intensity projection per case.

Each case's MIP, extra projections and mask union (:mod:`brainseg.data.projection`) are fitted
into an ``image_size`` square (aspect kept, padded with air) and held in memory; they are small,
so training augments them on the fly in the DataLoader workers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from brainseg.data.augmentation import Augmentation
from brainseg.data.baseline import score_baseline
from brainseg.data.datamodule import BrainDataModule
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.projection import (
    MipRepresentation,
    Projection,
    check_extra_projections,
)
from brainseg.data.resumable import draw_generator
from brainseg.data.transforms import (
    SquareFit,
    fit_planes,
    fit_to_square,
    plan_square_fit,
)


@dataclass
class MipCase:
    """One case at network resolution: raw HU for baselines and pictures, normalized for the net."""

    case_id: str
    hu: torch.Tensor  # (1, S, S) float32 HU of the MIP
    image: torch.Tensor  # (C, S, S) float32, normalized: the MIP, then the extra projections
    mask: torch.Tensor  # (1, S, S) uint8 {0, 1}
    fit: SquareFit


class MipDataset(Dataset):
    """Cases of one split; training applies ``augmentation`` to image and mask together, drawn
    from the sample's own seed (a key ``(index, draw seed)`` from the training sampler).

    The DataLoader fetches a batch's samples together (:meth:`__getitems__`), so that they are
    augmented as one batch: the same samples as one by one, in two thirds of the time.
    """

    def __init__(self, cases: list[MipCase], augmentation: Augmentation | None = None):
        self.cases = cases
        self.augmentation = augmentation

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, key) -> dict:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list) -> list[dict]:
        indices, generators = zip(*(draw_generator(key) for key in keys))
        images = torch.stack([self.cases[index].image for index in indices])
        masks = torch.stack([self.cases[index].mask for index in indices]).float()
        if self.augmentation is not None:
            images, masks = self.augmentation.batch(images, masks, list(generators))
        return [{"image": image, "mask": mask, "index": index, "case": index}
                for image, mask, index in zip(images, masks, indices)]


class MipDataModule(BrainDataModule):
    """MIPs along S of CT volumes and their brain masks, at ``image_size`` pixels.

    Takes every argument of :class:`~brainseg.data.datamodule.BrainDataModule`, plus:

    Args:
        image_size: side of the square network input, pixels; must suit the U-Net depth.
            Defaults to 128.
        extra_projections: projections stacked after the MIP as input channels (names of
            :data:`~brainseg.data.projection.EXTRA_PROJECTIONS`). Defaults to none.
        in_channels: the network's input channels, 1 + len(extra_projections) (the config states
            it for the model; checked here). Defaults to that.
    """

    mode = "mip"

    def __init__(self, *args, image_size: int = 128, extra_projections=(), in_channels: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if image_size < 8:
            raise ValueError(f"data.image_size must be at least 8, got {image_size}")
        self.image_size = int(image_size)
        self.extra_projections = check_extra_projections(extra_projections)
        channels = 1 + len(self.extra_projections)
        if in_channels is not None and int(in_channels) != channels:
            raise ValueError(f"data.in_channels is {in_channels}, but the MIP and data.extra_projections "
                             f"{list(self.extra_projections)} make {channels} channels")

    def representation(self) -> MipRepresentation:
        return MipRepresentation(self.extra_projections)

    def training_hu(self, items: list[Projection]) -> list[np.ndarray]:
        return [projection.image for projection in items]

    def build_split(self, split: dict[str, list[str]]) -> None:
        self.cases = {name: [self._to_case(case_id) for case_id in ids] for name, ids in split.items()}

    def _to_case(self, case_id: str) -> MipCase:
        projection = self.prepared.items[case_id]
        fit = plan_square_fit(projection.image.shape, projection.spacing, self.image_size)
        hu, mask = fit_to_square(projection.image, projection.mask, fit)
        image = self.preprocessing().normalize_planes(fit_planes(projection, self.extra_projections, fit))
        return MipCase(case_id, hu, torch.from_numpy(image), mask, fit)

    def dataset(self, split: str, train: bool) -> MipDataset:
        return MipDataset(self.cases[split], self.augmentation if train else None)

    def preprocessing(self) -> Preprocessing:
        return Preprocessing("mip", self.hu_window, self.image_size, self.normalization, self.statistics,
                             extra_projections=self.extra_projections)

    def baseline_scores(self) -> dict[str, float]:
        """The head footprint shrunk by a margin fitted on the training split, scored on the test split."""
        if not self.cases.get("train") or not self.cases.get("test"):
            return {}
        return score_baseline(self.cases["train"], self.cases["test"])
