"""Slice mode: exact reorientation, coarse in-plane grid, 2.5-D stacks, brain-free slices at a ratio."""

import nibabel as nib
import numpy as np
import pytest
import torch

from brainseg.data.axial import (
    context_indices,
    crop_around,
    from_ras,
    plan_axial_grid,
    read_axial_hu,
    resample_slices,
    to_ras,
    write_axial,
)
from brainseg.data.nifti import open_nifti
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.slice_datamodule import EmptySliceSampler, SliceDataModule
from tests.conftest import make_dataset, write_nifti

ORIENTATIONS = ["RAS", "LPS", "LPI", "PLS", "ASR", "SAL", "ILP"]


def stored(volume_ras: np.ndarray, affine_ras: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """The same voxels stored in another orientation, with the affine that keeps them in place."""
    transform = nib.orientations.ornt_transform(nib.orientations.axcodes2ornt("RAS"), nib.orientations.axcodes2ornt(axcodes))
    array = nib.orientations.apply_orientation(volume_ras, transform)
    return array, affine_ras @ nib.orientations.inv_ornt_aff(transform, volume_ras.shape)


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
def test_every_storage_orientation_gives_the_same_ras_slices_and_comes_back_exactly(axcodes):
    ras = np.random.default_rng(0).integers(-1000, 1000, (6, 5, 4)).astype(np.int16)
    affine = np.diag([0.5, 0.6, 3.0, 1.0])
    array, stored_affine = stored(ras, affine, axcodes)
    grid = plan_axial_grid(stored_affine, array.shape, 1.0)
    assert np.array_equal(to_ras(array, grid), ras)
    assert np.array_equal(from_ras(to_ras(array, grid), grid), array)
    assert grid.shape == (6, 5, 4) and grid.spacing == pytest.approx((0.5, 0.6, 3.0))
    assert grid.coarse_shape == (3, 3)  # 6 x 0.5 mm and 5 x 0.6 mm at 1 mm pixels


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
def test_coarse_hu_slices_are_the_scaled_ras_volume_resampled_whatever_the_storage_order(tmp_path, axcodes):
    """read_axial_hu streams the stored slices and reorients and scales them on the coarse grid:
    the same as reorienting, scaling and resampling the full volume, up to float rounding."""
    ras = np.random.default_rng(1).integers(-1000, 1000, (40, 36, 70)).astype(np.int16)
    array, stored_affine = stored(ras, np.diag([0.5, 0.6, 3.0, 1.0]), axcodes)
    volume = open_nifti(write_nifti(tmp_path / "ct.nii.gz", array, stored_affine, slope=1.5, inter=-1024.0))
    grid = plan_axial_grid(volume.affine, volume.shape, 1.3)
    expected = resample_slices(torch.from_numpy(np.moveaxis(ras, 2, 0) * np.float32(1.5) - 1024), grid.coarse_shape)
    assert torch.allclose(read_axial_hu(volume, grid), expected, atol=0.01)


@pytest.mark.parametrize("axcodes", ORIENTATIONS)
def test_coarse_slices_are_written_back_as_the_ras_upsampling_in_the_stored_order(axcodes):
    ras_shape = (40, 36, 7)
    stored_shape = stored(np.zeros(ras_shape, np.uint8), np.eye(4), axcodes)[0].shape
    grid = plan_axial_grid(stored(np.zeros(ras_shape), np.diag([0.5, 0.6, 3.0, 1.0]), axcodes)[1], stored_shape, 1.3)
    coarse = torch.rand(7, *grid.coarse_shape, generator=torch.Generator().manual_seed(0))
    expected = resample_slices(coarse, ras_shape[:2]).numpy().transpose(1, 2, 0)  # (R, A, S)
    out = np.zeros(stored_shape, np.float32, order="F")
    write_axial(coarse, grid, out, threshold=None)
    np.testing.assert_allclose(to_ras(out, grid), expected, atol=1e-5)
    mask = np.zeros(stored_shape, np.uint8, order="F")
    write_axial(coarse, grid, mask, threshold=0.5)
    assert np.array_equal(to_ras(mask, grid), expected > 0.5)


def test_writing_into_the_ras_view_fills_the_stored_array():
    array = np.zeros((4, 3, 2), np.uint8, order="F")
    grid = plan_axial_grid(np.diag([-1.0, -1.0, 1.0, 1.0]), array.shape, None)  # LPS
    to_ras(array, grid)[0, 0, 1] = 1  # most right, most posterior, top
    assert array[3, 2, 1] == 1


def test_resampling_keeps_constants_and_shapes():
    slices = torch.full((2, 10, 8), 7.0)
    assert torch.allclose(resample_slices(slices, (5, 4)), torch.tensor(7.0))
    assert resample_slices(slices, (20, 16)).shape == (2, 20, 16)


def test_context_indices_clamp_at_the_ends_of_the_stack():
    assert context_indices(0, 5, 1).tolist() == [0, 0, 1]
    assert context_indices(np.array([2, 4]), 5, 2).tolist() == [[0, 1, 2, 3, 4], [2, 3, 4, 4, 4]]


def test_fit_window_pads_small_images_and_crops_large_ones_around_the_centre():
    small = np.ones((1, 4, 6))
    out = crop_around(small, 8, (2, 3), value=-1)
    assert out.shape == (1, 8, 8) and out.sum() == 24 - (64 - 24)
    large = np.arange(100).reshape(1, 10, 10)
    assert crop_around(large, 4, (8, 8), value=0)[0, 0, 0] == large[0, 6, 6]


def test_the_sampler_draws_every_brain_slice_and_brain_free_ones_at_the_ratio():
    sampler = EmptySliceSampler(np.arange(10), np.arange(10, 40), ratio=0.5, seed=3)
    first = [index for index, _ in sampler]
    assert len(first) == len(sampler) == 15
    assert set(range(10)) <= set(first) and sum(i >= 10 for i in first) == 5
    sampler.set_epoch(1)
    assert [index for index, _ in sampler] != first  # a fresh draw each epoch
    sampler.set_epoch(0)
    assert [index for index, _ in sampler] == first  # ... that is a function of (seed, epoch) alone


@pytest.fixture(scope="module")
def datamodule(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("slices")
    root = make_dataset(tmp / "ds", n=6, shape=(40, 36, 12))
    module = SliceDataModule(
        root=str(root), cache_dir=str(tmp / "cache"), spacing_mm=1.0, crop_size=32, in_channels=3,
        empty_slice_ratio=0.5, batch_size=4, run_dir=str(tmp / "run"),
    )
    module.prepare_data()
    module.setup("fit")
    return module


def test_batches_are_2_5d_stacks_with_binary_masks(datamodule):
    batch = next(iter(datamodule.train_dataloader()))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["mask"].shape == (4, 1, 32, 32)
    assert set(batch["mask"].unique().tolist()) <= {0.0, 1.0}


def test_validation_sees_every_slice_and_training_brain_free_ones_at_the_ratio(datamodule):
    val_slices = sum(len(stack.hu) for stack in datamodule.stacks["val"])
    assert len(datamodule.val_dataloader().dataset) == val_slices
    brain = sum(len(stack.brain_slices) for stack in datamodule.stacks["train"])
    empty = sum(len(stack.hu) for stack in datamodule.stacks["train"]) - brain
    assert len(datamodule.train_dataloader().sampler) == brain + min(empty, round(0.5 * brain))


def test_neighbouring_slices_are_the_extra_channels(datamodule):
    dataset = datamodule.val_dataloader().dataset
    stack = datamodule.stacks["val"][0]
    hu, _ = dataset.crop(0, 5)
    centre = crop_around(stack.hu[[4, 5, 6]], dataset.size, dataset.centres[0], value=-1024)
    assert np.array_equal(hu, centre.astype(np.float32))


def test_the_checkpoint_learns_how_slices_were_made(datamodule):
    prep = datamodule.preprocessing()
    assert prep.mode == "slices" and prep.spacing_mm == 1.0 and prep.input_size == 32
    assert prep.in_channels == 3 and prep.context_slices == 1
    assert Preprocessing.from_dict(datamodule.state_dict()["preprocessing"]) == prep  # what a checkpoint carries


def test_validation_sees_whole_slices_where_training_sees_crops_around_the_brain(tmp_path):
    root = make_dataset(tmp_path / "ds", n=6, shape=(40, 36, 12))
    module = SliceDataModule(root=str(root), cache_dir=str(tmp_path / "cache"), spacing_mm=1.0, crop_size=16,
                             in_channels=1, batch_size=4, run_dir=str(tmp_path / "run"))
    module.prepare_data()
    module.setup("fit")
    assert next(iter(module.train_dataloader()))["image"].shape[-2:] == (16, 16)
    dataset = module.val_dataloader().dataset
    for (case, z) in dataset.items:
        stack = module.stacks["val"][case]
        assert all(side % 32 == 0 and side >= n for side, n in zip(dataset.size, stack.hu.shape[1:]))
        hu, mask = dataset.crop(case, z)
        assert mask.sum() == stack.mask[z].sum()  # nothing of the slice is cut away, brain or not
        assert (hu > -1000).sum() == (stack.hu[z] > -1000).sum()
    batch = next(iter(module.val_dataloader()))
    assert batch["case"].tolist() == dataset.items[:4, 0].tolist()  # each sample names its case: 3-D scores


def test_panels_show_one_slice_per_case(datamodule):
    panel = datamodule.cases["val"][0]
    assert panel.image.shape == (3, 32, 32) and panel.hu.shape == panel.mask.shape == (1, 32, 32)



def test_an_even_number_of_input_slices_is_refused():
    with pytest.raises(ValueError, match="must be odd"):
        SliceDataModule(root="x", in_channels=2)
