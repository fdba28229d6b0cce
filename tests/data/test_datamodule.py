"""The DataModule: splits by case, binary masks after every transform, images normalized only."""

import json

import numpy as np
import pytest
import torch

from brainseg.data.augmentation import Augmentation
from brainseg.data.datamodule import split_cases, split_folds
from brainseg.data.mip_datamodule import MipDataModule
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.transforms import fit_to_square, plan_square_fit, restore_from_square
from tests.conftest import make_dataset


@pytest.fixture(scope="module")
def datamodule(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("dm")
    root = make_dataset(tmp / "ds", n=10, shape=(40, 36, 12))
    module = MipDataModule(root=str(root), cache_dir=str(tmp / "cache"), image_size=32, batch_size=2, run_dir=str(tmp / "run"))
    module.prepare_data()
    module.setup("fit")
    return module


def test_split_is_by_case_disjoint_deterministic_and_written_to_the_run(datamodule):
    split = json.loads((datamodule.run_dir / "split.json").read_text())
    ids = [case_id for name in ("train", "val", "test") for case_id in split[name]]
    assert len(ids) == len(set(ids)) == 10 and all(split[name] for name in split)
    assert split == split_cases(ids, datamodule.split, datamodule.split_seed)
    assert split != split_cases(ids, datamodule.split, datamodule.split_seed + 1)


CASES = [f"case{i:02d}" for i in range(23)]
FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@pytest.mark.parametrize("num_folds", [2, 5, 23])
def test_the_test_folds_partition_the_cases_and_each_fold_is_disjoint(num_folds):
    folds = [split_folds(CASES, num_folds, fold, FRACTIONS, seed=3) for fold in range(num_folds)]
    tests = [case_id for split in folds for case_id in split["test"]]
    assert sorted(tests) == CASES  # every case is tested exactly once
    sizes = [len(split["test"]) for split in folds]
    assert max(sizes) - min(sizes) <= 1
    for split in folds:
        assert sorted(split["train"] + split["val"] + split["test"]) == CASES
        assert split["val"] and split["train"]
    # validation is about val / (train + val) of the cases not tested
    assert len(folds[0]["val"]) == round((23 - len(folds[0]["test"])) * 0.15 / 0.85) or num_folds == 23


def test_folds_are_deterministic_for_a_seed_and_move_with_it():
    assert split_folds(CASES, 5, 2, FRACTIONS, seed=0) == split_folds(list(reversed(CASES)), 5, 2, FRACTIONS, seed=0)
    assert split_folds(CASES, 5, 2, FRACTIONS, seed=0)["test"] != split_folds(CASES, 5, 2, FRACTIONS, seed=1)["test"]


def test_validation_sets_differ_between_folds():
    vals = {tuple(split_folds(CASES, 5, fold, FRACTIONS, seed=0)["val"]) for fold in range(5)}
    assert len(vals) == 5


@pytest.mark.parametrize("num_folds, fold, message", [(5, 5, "data.fold must be in 0..4"), (5, -1, "data.fold must be in 0..4"), (1, 0, "num_folds must be in 2..23"), (24, 0, "num_folds must be in 2..23")])
def test_a_fold_outside_the_folds_is_refused(num_folds, fold, message):
    with pytest.raises(ValueError, match=message):
        split_folds(CASES, num_folds, fold, FRACTIONS, seed=0)


def test_a_fold_run_names_its_fold_in_split_json(tmp_path, datamodule):
    module = MipDataModule(root=str(datamodule.root), cache_dir=datamodule.cache_dir, image_size=32, batch_size=2,
                           run_dir=str(tmp_path), num_folds=5, fold=3)
    module.setup("fit")
    split = json.loads((tmp_path / "split.json").read_text())
    assert split["fold"] == 3 and split["num_folds"] == 5 and len(split["test"]) == 2
    assert {key: split[key] for key in ("train", "val", "test")} == split_folds(sorted(split["train"] + split["val"] + split["test"]), 5, 3, module.split, 0)


def test_batches_hold_binary_masks_even_after_augmentation(datamodule):
    torch.manual_seed(0)
    for batch in datamodule.train_dataloader():
        assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}
        assert batch["image"].shape == batch["mask"].shape == (2, 1, 32, 32)


def test_images_are_windowed_and_masks_are_not_normalized(datamodule):
    case = datamodule.cases["val"][0]
    assert 0.0 <= case.image.min() and case.image.max() <= 1.0
    assert case.mask.dtype == torch.uint8 and set(case.mask.unique().tolist()) == {0, 1}


def test_all_data_is_not_one_batch(datamodule):
    """The old pipeline fit everything into one batch of 32: one optimizer step per epoch."""
    assert len(datamodule.train_dataloader()) > 1


def test_masks_are_resized_with_nearest_neighbour_and_images_keep_their_range():
    mask = np.zeros((30, 50), np.uint8)
    mask[10:20, 10:40] = 1
    image = np.where(mask, 40.0, -1000.0).astype(np.float32)
    fit = plan_square_fit(mask.shape, (1.0, 1.0), 64)
    hu, resized = fit_to_square(image, mask, fit)
    assert set(resized.unique().tolist()) == {0, 1}
    assert hu.min() >= -1024 and hu.max() <= 40.0
    assert fit.spacing_mm == pytest.approx(50 / 64)
    restored = restore_from_square(resized[0].float(), fit)
    assert restored.shape == mask.shape
    assert ((restored > 0.5).numpy() == mask).mean() > 0.97


def test_padding_to_a_square_field_of_view_is_in_millimetres():
    fit = plan_square_fit((100, 50), (0.5, 2.0), 32)  # 50 mm x 100 mm
    assert fit.padded_shape == (200, 50) and fit.spacing_mm == pytest.approx(100 / 32)


def test_augmentation_moves_image_and_mask_together():
    torch.manual_seed(1)
    mask = torch.zeros(1, 32, 32)
    mask[:, 8:20, 4:12] = 1
    image = mask * 0.8
    augmented_image, augmented_mask = Augmentation(intensity_scale=0, intensity_shift=0, noise_std=0)(image, mask)
    agreement = ((augmented_image > 0.4) == (augmented_mask > 0.5)).float().mean()
    assert agreement > 0.98 and not torch.equal(augmented_mask, mask)


def test_extra_projections_are_input_channels_after_the_mip_and_travel_in_the_preprocessing(datamodule, tmp_path):
    extra = ("mean", "bone_mm", "tissue_mm", "top_tissue_mm")
    module = MipDataModule(root=datamodule.root, cache_dir=str(tmp_path / "cache"), image_size=32, extra_projections=extra, in_channels=5)
    module.prepare_data()
    module.setup("fit")
    case, mip_only = module.cases["val"][0], datamodule.cases["val"][0]
    assert case.image.shape == (5, 32, 32)
    torch.testing.assert_close(case.image[:1], mip_only.image)  # the MIP channel is what a MIP-only model sees
    assert case.image[1:].amin() >= 0.0 and case.image[2:].amax() > 0.05  # air is 0; the head has bone and tissue
    assert module.preprocessing().extra_projections == extra and module.preprocessing().in_channels == 5
    batch = next(iter(module.train_dataloader()))
    assert batch["image"].shape[1:] == (5, 32, 32) and batch["mask"].shape[1:] == (1, 32, 32)


def test_in_channels_must_count_the_mip_and_the_extra_projections(datamodule):
    with pytest.raises(ValueError, match=r"data.in_channels is 1, but the MIP and data.extra_projections \['mean'\] make 2 channels"):
        MipDataModule(root=datamodule.root, image_size=32, extra_projections=["mean"], in_channels=1)


def test_a_preprocessing_record_keeps_its_extra_projections_and_old_records_have_none():
    record = Preprocessing("mip", (-100.0, 1900.0), 32, extra_projections=("bone_mm", "mean"))
    assert Preprocessing.from_dict(record.to_dict()) == record and record.in_channels == 3
    assert Preprocessing.from_dict({"window": [-100, 1900], "image_size": 64}).extra_projections == ()  # before they existed
    with pytest.raises(ValueError, match="extra_projections are MIP inputs"):
        Preprocessing("slices", (-100.0, 1000.0), 32, spacing_mm=2.0, extra_projections=("mean",))
