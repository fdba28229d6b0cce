"""Volume inference: masks on the input's exact grid in any orientation, and post-processing."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from torch import nn

from brainseg.data.baseline import dice
from brainseg.data.preprocessing import Preprocessing
from brainseg.inference.postprocessing import PostProcessing, fill_holes, postprocess
from brainseg.inference.volume import (
    VolumePredictor,
    mask_path,
    save_mask,
    segment_volume,
)
from tests.conftest import write_nifti
from tests.data.test_slices import stored

WINDOW = [-100.0, 1000.0]
PREPROCESSING = Preprocessing("slices", WINDOW, 128, spacing_mm=2.0, context_slices=1)


class SoftTissueOracle(nn.Module):
    """A fixed 'network': brain where the centre slice's HU is soft tissue (about -20 to 90 HU)."""

    size_divisor = 4

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        centre = image[:, image.shape[1] // 2 : image.shape[1] // 2 + 1]
        return 100 * (0.05 - (centre - 0.123).abs())  # window [-100, 1000]: 35 HU -> 0.123


ORACLE = VolumePredictor(SoftTissueOracle(), PREPROCESSING)


def off_centre_head(shape, spacing) -> tuple[np.ndarray, np.ndarray]:
    """An int16 RAS head (air, skull, brain) whose brain sits right, anterior and high: any flip shows."""
    axes = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    half = np.array(shape) * np.array(spacing) / 2
    centre, semi = (0.15, 0.1, 0.1) * half, (0.7, 0.75, 0.7) * half
    r = np.sqrt(sum(((axis - c) / s) ** 2 for axis, c, s in zip((x, y, z), centre, semi)))
    image = np.full(shape, -1000, np.int16)
    image[r < 1.0] = 1200
    brain = r < 0.8
    image[brain] = 35
    return image, brain.astype(np.uint8)


GRIDS = [  # (shape, spacing): thick and thin slices, anisotropic pixels
    ((48, 44, 14), (1.6, 1.6, 4.0)),
    ((64, 60, 30), (0.9, 1.1, 2.0)),
]


@pytest.mark.parametrize("shape, spacing", GRIDS)
@pytest.mark.parametrize("axcodes", ["RAS", "LPS", "PLS", "ASR", "ILP"])
def test_masks_have_the_input_shape_and_header_geometry_in_every_orientation(tmp_path, shape, spacing, axcodes):
    image_ras, brain_ras = off_centre_head(shape, spacing)
    affine_ras = np.diag([*spacing, 1.0])
    affine_ras[:3, 3] = (-40.0, 12.5, -300.0)
    image, affine = stored(image_ras, affine_ras, axcodes)
    path = write_nifti(tmp_path / "case.nii.gz", image, affine, slope=1.0, inter=0.0)

    segmentation = segment_volume(ORACLE, path)
    written = nib.load(save_mask(segmentation, mask_path(tmp_path, "case")))
    original = nib.load(path)
    assert written.shape == original.shape and written.get_data_dtype() == np.uint8
    for form in ("sform", "qform"):
        get_written, get_original = getattr(written.header, f"get_{form}"), getattr(original.header, f"get_{form}")
        assert np.array_equal(get_written(coded=True)[0], get_original(coded=True)[0])
        assert written.header[f"{form}_code"] == original.header[f"{form}_code"]
    mask = np.asarray(written.dataobj)
    assert set(np.unique(mask)) <= {0, 1}
    truth, _ = stored(brain_ras, affine_ras, axcodes)
    assert dice(mask, truth) > 0.9


def test_every_orientation_gives_the_same_mask_voxel_for_voxel(tmp_path):
    shape, spacing = GRIDS[0]
    image_ras, _ = off_centre_head(shape, spacing)
    masks = []
    for axcodes in ("RAS", "LPI", "SAL"):
        image, affine = stored(image_ras, np.diag([*spacing, 1.0]), axcodes)
        mask = segment_volume(ORACLE, write_nifti(tmp_path / f"{axcodes}.nii.gz", image, affine)).mask
        masks.append(np.asarray(nib.as_closest_canonical(mask).dataobj))
    assert all(np.array_equal(masks[0], other) for other in masks[1:])


def test_probabilities_come_back_on_the_input_grid_when_asked_for(tmp_path):
    image, _ = off_centre_head(*GRIDS[0])
    path = write_nifti(tmp_path / "case.nii.gz", image, np.diag([*GRIDS[0][1], 1.0]))
    result = segment_volume(ORACLE, path, return_probabilities=True)
    assert result.probabilities.shape == image.shape and result.probabilities.dtype == np.float32
    assert 0.0 <= result.probabilities.min() and result.probabilities.max() <= 1.0
    assert segment_volume(ORACLE, path).probabilities is None


def test_interpolating_between_slices_changes_little(tmp_path):
    image, _ = off_centre_head((48, 44, 60), (1.6, 1.6, 0.6))
    path = write_nifti(tmp_path / "thin.nii.gz", image, np.diag([1.6, 1.6, 0.6, 1.0]))
    every = np.asarray(segment_volume(ORACLE, path, slice_step_mm=0).mask.dataobj)
    every_third = np.asarray(segment_volume(ORACLE, path).mask.dataobj)  # the model's 2 mm: every third 0.6 mm slice
    assert dice(every, every_third) > 0.95 and not np.array_equal(every, every_third)  # a 60 mL phantom: edges weigh a lot


def test_postprocessing_keeps_the_largest_piece_and_fills_its_holes():
    probabilities = np.zeros((10, 12, 12), np.float32)
    probabilities[2:8, 2:9, 2:9] = 0.9  # the brain
    probabilities[4:6, 4:6, 4:6] = 0.1  # a hole inside it
    probabilities[2:8, 2:9, 1] = 0.3  # its soft edge
    probabilities[0, 11, 11] = 0.8  # an island
    cleaned, removed_ml = postprocess(probabilities, 0.5, (2.0, 1.0, 1.0))
    assert cleaned[0, 11, 11] == 0 and removed_ml == pytest.approx(0.002)
    assert np.all(cleaned[4:6, 4:6, 4:6] == 1.0)
    assert np.all(cleaned[2:8, 2:9, 1] == 0.3)  # the kept piece's rim stays soft
    untouched, _ = postprocess(probabilities, 0.5, (2.0, 1.0, 1.0), PostProcessing(largest_component=False, fill_holes=False))
    assert np.array_equal(untouched, probabilities)


def test_closing_bridges_a_gap_narrower_than_its_radius():
    probabilities = np.zeros((12, 12, 12), np.float32)
    probabilities[2:10, 2:10, 2:10] = 0.9
    probabilities[2:10, 5, 2:10] = 0.0  # a one-voxel cleft through the middle... but for its ends
    probabilities[2:10, 5, 2] = 0.9
    closed, _ = postprocess(probabilities, 0.5, (1.0, 1.0, 1.0), PostProcessing(closing_mm=1.0))
    assert np.all(closed[3:9, 5, 3:9] == 1.0)


def test_fill_holes_leaves_cavities_open_to_the_border_alone():
    mask = np.zeros((5, 5, 5), bool)
    mask[1:4, 1:4, 1:4] = True
    mask[2, 2, 2] = False
    assert fill_holes(mask)[2, 2, 2]
    mask[2, 2, 2:] = False  # a tunnel to the border
    assert not fill_holes(mask)[2, 2, 2]


def test_warnings_report_an_implausible_mask(tmp_path):
    image, _ = off_centre_head(*GRIDS[0])
    path = write_nifti(tmp_path / "case.nii.gz", image, np.diag([*GRIDS[0][1], 1.0]))
    result = segment_volume(ORACLE, path)
    assert any("below the adult range" in w for w in result.warnings)  # a 60 mL phantom
    assert result.volume_ml == pytest.approx(np.count_nonzero(np.asarray(result.mask.dataobj)) * 1.6 * 1.6 * 4.0 / 1000)


# ---- end to end: train in slice mode, then predict and evaluate from what the checkpoint says -----


@pytest.fixture(scope="module")
def slice_run(tmp_path_factory):
    """A tiny 2.5-D slice model trained for 2 epochs on phantoms, through `mode=slices`."""
    from brainseg.training.train import train
    from tests.conftest import compose_config, make_dataset

    tmp = tmp_path_factory.mktemp("slice_run")
    dataset = make_dataset(tmp / "dataset", n=8, shape=(40, 36, 10))
    overrides = [
        "data=folder", f"data.root={dataset}", f"data.cache_dir={tmp / 'cache'}", "mode=slices",
        "data.spacing_mm=1.0", "data.in_channels=3", "data.crop_size=32", "data.batch_size=8",
        "model.net.channels=[4,8]", "trainer.max_epochs=2", "logger=csv",
        "callbacks.validation_panel=null", "callbacks.progress_bar=null",
    ]
    cfg = compose_config(overrides, tmp)
    metrics = train(cfg)
    assert "test/dice" in metrics and "test/dice_baseline" not in metrics  # the MIP baseline does not apply
    return Path(cfg.paths.output_dir), dataset


@pytest.mark.slow
def test_predict_writes_masks_pictures_and_a_table_for_a_slice_checkpoint(slice_run, tmp_path):
    from brainseg.inference.predict import load_predictor, predict
    from tests.conftest import compose_config

    run, dataset = slice_run
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert load_predictor(checkpoint).preprocessing.in_channels == 3
    cfg = compose_config([f"ckpt_path={checkpoint}", f"input={dataset / 'CTA images'}", "volumes.slab_mm=6"], tmp_path, "predict")
    assert predict(cfg) == []
    output = Path(cfg.output)
    for case in ("case00", "case07"):
        mask = nib.load(output / f"{case}_brainmask.nii.gz")
        assert mask.shape == (40, 36, 10) and mask.get_data_dtype() == np.uint8
        assert (output / f"{case}_brain_mip.png").is_file() and (output / f"{case}_slabs.nii.gz").is_file()
    assert (output / "predictions.csv").read_text().startswith("case_id,input,brain_volume_ml,warnings")


@pytest.mark.slow
def test_evaluate_scores_the_test_split_in_3d(slice_run, tmp_path):
    import json

    from brainseg.evaluation.evaluate import evaluate
    from tests.conftest import compose_config

    run, _ = slice_run
    cfg = compose_config([f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}", "split=test"], tmp_path, "evaluate")
    metrics = evaluate(cfg)
    test_cases = json.loads((run / "split.json").read_text())["test"]
    assert metrics["cases"] == len(test_cases) and 0.0 <= metrics["dice/mean"] <= 1.0
    header = (Path(cfg.paths.output_dir) / "per_case.csv").read_text().splitlines()[0]
    assert header == ("case_id,dice,iou,hd95_mm,volume_ml,volume_truth_ml,volume_difference_ml,"
                      "footprint_dice,dice_inferior_third,dice_middle_third,dice_superior_third,warnings,error")


def test_interpolated_slices_lie_on_the_line_between_inferred_ones():
    from brainseg.inference.volume import interpolate_slices

    values = torch.zeros(7, 1, 1)
    values[0], values[3], values[6] = 0.0, 0.9, 0.3
    out = interpolate_slices(values, np.array([0, 3, 6]))[:, 0, 0]
    assert torch.allclose(out, torch.tensor([0.0, 0.3, 0.6, 0.9, 0.7, 0.5, 0.3]))
