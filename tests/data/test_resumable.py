"""The training order and augmentation are functions of (seed, epoch, sample), and a loader restored
from its state goes on with the very next batch of the same epoch, as it would have."""

import pytest
import torch
from torch.utils.data import Dataset

from brainseg.data.augmentation import Augmentation
from brainseg.data.resumable import (
    ResumableLoader,
    ShuffleSampler,
    draw_generator,
    draw_seed,
)


class Noisy(Dataset):
    """Sample i is i plus an augmentation drawn from the key's generator."""

    def __len__(self) -> int:
        return 12

    def __getitem__(self, key):
        index, generator = draw_generator(key)
        return torch.tensor(float(index)) + torch.rand((), generator=generator) / 10


def loader(epoch: int = 0, num_workers: int = 0) -> ResumableLoader:
    sampler = ShuffleSampler(12, seed=5)
    sampler.set_epoch(epoch)
    return ResumableLoader(Noisy(), batch_size=3, sampler=sampler, drop_last=True, num_workers=num_workers,
                           persistent_workers=num_workers > 0, generator=torch.Generator().manual_seed(5))


def test_the_order_is_a_function_of_seed_and_epoch():
    a, b = ShuffleSampler(12, seed=5), ShuffleSampler(12, seed=5)
    assert list(a) == list(b) and sorted(index for index, _ in a) == list(range(12))
    b.set_epoch(1)
    assert [index for index, _ in a] != [index for index, _ in b]
    assert [index for index, _ in ShuffleSampler(12, seed=6)] != [index for index, _ in a]


def test_each_sample_draws_from_its_own_seed():
    assert draw_seed(5, 0, 3) == draw_seed(5, 0, 3)
    assert len({draw_seed(5, 0, 3), draw_seed(5, 1, 3), draw_seed(5, 0, 4), draw_seed(6, 0, 3)}) == 4
    assert draw_generator(7) == (7, None)  # validation and testing: a plain index, nothing random


def test_augmentation_from_a_seeded_generator_repeats_and_leaves_the_global_stream_alone():
    image, mask = torch.rand(1, 16, 16), torch.zeros(1, 16, 16)
    state = torch.get_rng_state()
    first = Augmentation()(image, mask, torch.Generator().manual_seed(1))
    second = Augmentation()(image, mask, torch.Generator().manual_seed(1))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize("num_workers", [0, 1])
def test_a_restored_loader_goes_on_with_the_next_batch_of_the_epoch(num_workers):
    whole = [batch for batch in loader(epoch=2, num_workers=num_workers)]
    assert len(whole) == 4
    interrupted = loader(epoch=2, num_workers=num_workers)
    seen = []
    for batch in interrupted:
        seen.append(batch)
        if len(seen) == 2:
            state = interrupted.state_dict()
            break
    assert state == {"epoch": 2, "batches": 2}
    resumed = loader(epoch=2, num_workers=num_workers)
    resumed.load_state_dict(state)
    assert len(resumed) == 4  # the epoch's length, which Lightning counts steps against
    rest = list(resumed)
    assert len(rest) == 2 and all(torch.equal(a, b) for a, b in zip(seen + rest, whole))  # same order, same draws
    assert resumed.state_dict() == {"epoch": 2, "batches": 4}
    again = list(resumed)  # the next pass is the whole epoch again
    assert len(again) == 4 and all(torch.equal(a, b) for a, b in zip(again, whole))


def test_a_saved_position_in_another_epoch_skips_nothing():
    resumed = loader(epoch=3)
    resumed.load_state_dict({"epoch": 2, "batches": 3})
    assert len(list(resumed)) == 4


def test_the_datamodule_seed_defaults_to_the_run_seed(tmp_path):
    from brainseg.data.mip_datamodule import MipDataModule

    torch.manual_seed(42)  # what seed_everything(42) does before the DataModule is built
    assert MipDataModule(root=str(tmp_path)).seed == 42
    assert MipDataModule(root=str(tmp_path), seed=7).seed == 7
