"""3-D brain mask data (``mode=slices``): axial slices (2-D or 2.5-D) instead of MIPs.

Each case is reoriented to RAS voxel order and cut into axial slices resampled in-plane to
``spacing_mm`` (:mod:`brainseg.data.slices`), the same geometry :mod:`brainseg.inference.volume`
uses at inference. A sample is one slice, with ``(in_channels - 1) / 2`` neighbours on each side
as extra channels (2.5-D). Training cuts a ``crop_size`` square around the brain and sees every
slice that holds brain and, each epoch, a fresh random draw of brain-free slices
(``empty_slice_ratio`` of them per brain slice), so the network also learns where the brain
is not: the neck, the vertex above the skull. Validation and test see every slice whole, as
inference does (padded with air to one shape per split), and each sample names its case, so
the module can score each case's volume in 3-D (``val/case_dice``).

Discovery, validation, the split, normalization, augmentation and the run files are those
of :class:`~brainseg.data.datamodule.BrainDataModule`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from brainseg.data.augmentation import Augmentation
from brainseg.data.axial import context_indices, crop_around
from brainseg.data.datamodule import BrainDataModule
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.resumable import EpochSampler, draw_generator
from brainseg.data.slices import SliceRepresentation, SliceStack
from brainseg.data.transforms import AIR_HU

log = logging.getLogger(__name__)

WHOLE_SLICE_MULTIPLE = 32  # whole slices are padded to multiples of this: any network up to 5 halvings


@dataclass
class PanelSlice:
    """One representative slice of a case, as the validation panel draws it."""

    case_id: str
    hu: torch.Tensor  # (1, S, S) float32 HU of the centre slice
    image: torch.Tensor  # (C, S, S) float32, normalized network input
    mask: torch.Tensor  # (1, S, S) uint8 {0, 1}


class SliceDataset(Dataset):
    """Slices ``items[i] = (case, z)`` of some stacks, with neighbours, cut to ``size`` squares.

    Args:
        stacks: the cases' slice stacks (HU int16, masks uint8).
        items: (N, 2) array of (index into ``stacks``, slice index).
        context: neighbours on each side stacked as channels (0 for 2-D).
        size: side of the square crop cut around each case's brain, pixels; ``None`` for whole
            slices, each padded with air to the largest slice of ``stacks`` (rounded up to
            ``WHOLE_SLICE_MULTIPLE``).
        normalize: HU -> network input.
        augmentation: applied to image and mask together (training only), drawn from the
            sample's own seed (a key ``(index, draw seed)`` from the training sampler).
    """

    def __init__(
        self,
        stacks: list[SliceStack],
        items: np.ndarray,
        context: int,
        size: int | None,
        normalize,
        augmentation: Augmentation | None = None,
    ):
        self.stacks = stacks
        self.items = items
        self.context = context
        self.normalize = normalize
        self.augmentation = augmentation
        if size is None:
            largest = np.max([stack.hu.shape[1:] for stack in stacks], axis=0) if stacks else np.array([8, 8])
            self.size = tuple(int(-(-n // WHOLE_SLICE_MULTIPLE) * WHOLE_SLICE_MULTIPLE) for n in largest)
            self.centres = [(stack.hu.shape[1] / 2, stack.hu.shape[2] / 2) for stack in stacks]
        else:
            self.size = size
            self.centres = [brain_centre(stack.mask) for stack in stacks]

    def __len__(self) -> int:
        return len(self.items)

    def crop(self, case: int, z: int) -> tuple[np.ndarray, np.ndarray]:
        """HU (C, S, S) float32 and mask (1, S, S) uint8 of one slice and its neighbours."""
        stack = self.stacks[case]
        channels = context_indices(z, len(stack.hu), self.context)
        hu = crop_around(stack.hu[channels], self.size, self.centres[case], value=int(AIR_HU)).astype(np.float32)
        mask = crop_around(stack.mask[z][None], self.size, self.centres[case], value=0)
        return hu, mask

    def __getitem__(self, key) -> dict:
        return self.__getitems__([key])[0]

    def __getitems__(self, keys: list) -> list[dict]:
        """A batch's samples, augmented together (:meth:`Augmentation.batch`: as one by one)."""
        indices, generators = zip(*(draw_generator(key) for key in keys))
        cases, images, targets = [], [], []
        for index in indices:
            case, z = (int(v) for v in self.items[index])
            hu, mask = self.crop(case, z)
            cases.append(case)
            images.append(torch.from_numpy(self.normalize(hu)))
            targets.append(torch.from_numpy(mask).float())
        images, targets = torch.stack(images), torch.stack(targets)
        if self.augmentation is not None:
            images, targets = self.augmentation.batch(images, targets, list(generators))
        return [{"image": image, "mask": target, "index": index, "case": case}
                for image, target, index, case in zip(images, targets, indices, cases)]


def brain_centre(mask: np.ndarray) -> tuple[float, float]:
    """In-plane centre of a (S, R, A) mask's bounding box (the image centre if it is empty)."""
    rows, cols = np.flatnonzero(mask.any(axis=(0, 2))), np.flatnonzero(mask.any(axis=(0, 1)))
    if not len(rows):
        return (mask.shape[1] / 2, mask.shape[2] / 2)
    return ((rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2)


class EmptySliceSampler(EpochSampler):
    """Every brain slice once per epoch, plus ``ratio`` brain-free slices per brain slice, drawn anew
    each epoch; the draw and the order are a function of ``(seed, epoch)``."""

    def __init__(self, brain: np.ndarray, empty: np.ndarray, ratio: float, seed: int = 0):
        super().__init__(seed)
        self.brain, self.empty = np.asarray(brain), np.asarray(empty)
        self.n_empty = min(len(self.empty), int(round(ratio * len(self.brain))))

    def __len__(self) -> int:
        return len(self.brain) + self.n_empty

    def order(self, rng: np.random.Generator) -> np.ndarray:
        chosen = rng.choice(self.empty, self.n_empty, replace=False) if self.n_empty else np.zeros(0, int)
        order = np.concatenate([self.brain, chosen])
        rng.shuffle(order)
        return order


class SliceDataModule(BrainDataModule):
    """Axial (2.5-D) slices of CT volumes for 3-D brain masks; ``mode=slices``.

    Takes every argument of :class:`~brainseg.data.datamodule.BrainDataModule`, plus:

    Args:
        spacing_mm: in-plane pixel size slices are resampled to, mm. Defaults to 2.0.
        crop_size: side of the square training crop around the brain, pixels of ``spacing_mm``.
            Defaults to 128.
        in_channels: slices per network input, odd: 1 for 2-D, 2k+1 for k neighbours on each
            side (2.5-D). Must equal the model's ``in_channels``. Defaults to 1.
        empty_slice_ratio: brain-free training slices drawn per brain slice, each epoch.
            Defaults to 0.5.
    """

    mode = "slices"

    def __init__(
        self, *args, spacing_mm: float = 2.0, crop_size: int = 128, in_channels: int = 1, empty_slice_ratio: float = 0.5, **kwargs
    ):
        super().__init__(*args, **kwargs)
        if in_channels < 1 or in_channels % 2 == 0:
            raise ValueError(f"data.in_channels must be odd (2 * context slices + 1), got {in_channels}")
        if not spacing_mm > 0:
            raise ValueError(f"data.spacing_mm must be > 0, got {spacing_mm}")
        if crop_size < 8:
            raise ValueError(f"data.crop_size must be at least 8, got {crop_size}")
        if empty_slice_ratio < 0:
            raise ValueError(f"data.empty_slice_ratio must be >= 0, got {empty_slice_ratio}")
        self.spacing_mm = float(spacing_mm)
        self.crop_size = int(crop_size)
        self.in_channels = int(in_channels)
        self.context = (self.in_channels - 1) // 2
        self.empty_slice_ratio = float(empty_slice_ratio)
        self.stacks: dict[str, list[SliceStack]] = {}

    def representation(self) -> SliceRepresentation:
        return SliceRepresentation(self.spacing_mm)

    def training_hu(self, items: list[SliceStack]) -> list[np.ndarray]:
        return [stack.hu[stack.brain_slices].astype(np.float32) for stack in items]

    def build_split(self, split: dict[str, list[str]]) -> None:
        stacks = self.prepared.items
        self.stacks = {name: [stacks[case_id] for case_id in ids] for name, ids in split.items()}
        self.cases = {name: [self._panel_slice(i, stacks[i]) for i in ids] for name, ids in split.items()}

    def dataset(self, split: str, train: bool) -> SliceDataset:
        stacks = self.stacks[split]
        items = np.array([(c, z) for c, stack in enumerate(stacks) for z in range(len(stack.hu))], dtype=np.int64).reshape(-1, 2)
        if train:
            return SliceDataset(stacks, items, self.context, self.crop_size, self.normalize, self.augmentation)
        return SliceDataset(stacks, items, self.context, None, self.normalize)

    def sampler(self, dataset: SliceDataset) -> EmptySliceSampler:
        holds_brain = np.array([dataset.stacks[c].mask[z].any() for c, z in dataset.items], dtype=bool)
        return EmptySliceSampler(np.flatnonzero(holds_brain), np.flatnonzero(~holds_brain), self.empty_slice_ratio, self.seed)

    def _panel_slice(self, case_id: str, stack: SliceStack) -> PanelSlice:
        """The case's slice at 40% of its brain's height: cerebrum, ventricles and skull in view."""
        brain = stack.brain_slices
        z = int(brain[int(0.4 * (len(brain) - 1))]) if len(brain) else len(stack.hu) // 2
        dataset = SliceDataset([stack], np.array([[0, z]]), self.context, self.crop_size, self.normalize)
        hu, mask = dataset.crop(0, z)
        centre = torch.from_numpy(hu[self.context][None])
        return PanelSlice(case_id, centre, torch.from_numpy(self.normalize(hu)), torch.from_numpy(mask))

    def preprocessing(self) -> Preprocessing:
        return Preprocessing(
            "slices", self.hu_window, self.crop_size, self.normalization, self.statistics, self.spacing_mm, self.context
        )
