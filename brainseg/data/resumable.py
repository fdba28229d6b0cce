"""A training order and augmentation that a restarted run repeats exactly.

Nothing here draws from a global random stream, so no restart can shift it:

* an :class:`EpochSampler` orders an epoch as a function of ``(seed, epoch)`` alone, and hands
  each sample out with its own draw seed, a function of ``(seed, epoch, index)``, from which the
  dataset makes the sample's augmentation (:func:`draw_generator`);
* the :class:`ResumableLoader` counts the batches it has handed out in the current epoch and
  saves that count in the checkpoint (Lightning's stateful-loader protocol: ``state_dict`` /
  ``load_state_dict``); a run resumed mid-epoch skips those batches' indices, without loading
  them, and goes on with the very next batch of the same order.

Under DDP Lightning wraps the sampler so that each process takes its share of the same order;
the count is per process, and every process has handed out the same number of batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler


def draw_seed(seed: int, epoch: int, index: int) -> int:
    """The seed of one sample's random draws (its augmentation) in one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1, dtype=np.uint64)[0] >> 1)


def draw_generator(key) -> tuple[int, torch.Generator | None]:
    """A dataset key as a sampler hands it out, ``(index, draw seed)``, as the index and a torch
    generator seeded for that draw; a plain index (validation, testing) has no generator."""
    if isinstance(key, (tuple, list)):
        index, seed = key
        return int(index), torch.Generator().manual_seed(int(seed))
    return int(key), None


class EpochSampler(Sampler):
    """Hands out ``(index, draw seed)`` in an order that depends on ``(seed, epoch)`` only.

    Lightning calls :meth:`set_epoch` before every epoch (also when resuming), so epoch ``e``
    has the same order in a run that was interrupted as in one that was not.

    Args:
        seed: the run's seed.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self, rng: np.random.Generator) -> np.ndarray:
        """The epoch's dataset indices, drawn from ``rng`` (seeded with ``(seed, epoch)``)."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        order = self.order(np.random.default_rng([self.seed, epoch]))
        return iter([(int(index), draw_seed(self.seed, epoch, int(index))) for index in order])


class ShuffleSampler(EpochSampler):
    """Every sample once per epoch, in a new order each epoch."""

    def __init__(self, size: int, seed: int):
        super().__init__(seed)
        self.size = int(size)

    def __len__(self) -> int:
        return self.size

    def order(self, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(self.size)


class ResumableLoader(DataLoader):
    """A training DataLoader whose position in an epoch is saved in checkpoints.

    Takes DataLoader's arguments. Its ``state_dict`` is ``{"epoch", "batches"}``: the sampler's
    epoch and the batches handed out so far in it. After ``load_state_dict`` the next pass over
    the same epoch starts after those batches; a pass over another epoch starts at its beginning.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._epoch = 0
        self._handed_out = 0
        self._resume_at: tuple[int, int] | None = None  # (epoch, batches) read from a checkpoint
        self._skip = 0
        self._batches = None

    def _sampler_epoch(self) -> int:
        return int(getattr(self.sampler, "epoch", 0))

    def state_dict(self) -> dict:
        return {"epoch": self._epoch, "batches": self._handed_out}

    def load_state_dict(self, state: dict) -> None:
        self._resume_at = (int(state["epoch"]), int(state["batches"]))

    @property
    def _index_sampler(self):
        # The batches of indices every DataLoader iterator draws from (torch reads this property
        # when it creates an iterator); wrapped once, so that a pass can skip its first batches.
        # Its length stays the epoch's, which Lightning counts steps against.
        if self._batches is None:
            self._batches = _SkippableBatches(super()._index_sampler, self)
        return self._batches

    def __iter__(self):
        # A generator: the pass starts at the first batch asked for, after Lightning has set the
        # sampler's epoch, not when Lightning first calls iter() (before it does).
        self._epoch = self._sampler_epoch()
        self._skip = 0
        if self._resume_at is not None:
            epoch, batches = self._resume_at
            self._resume_at = None
            if epoch == self._epoch:
                self._skip = batches
        self._handed_out = self._skip
        for batch in super().__iter__():
            self._handed_out += 1
            yield batch


class _SkippableBatches:
    """The loader's batches of indices, minus the first ``loader._skip`` (set for each pass; torch
    may start over on them more than once while it sets up a pass)."""

    def __init__(self, batches, loader: ResumableLoader):
        self.batches = batches
        self.loader = loader

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        iterator = iter(self.batches)
        for _ in range(self.loader._skip):
            next(iterator, None)
        return iterator
