"""3-D metrics in physical units, checked against values computed by hand."""

import numpy as np
import pytest

from brainseg.evaluation.metrics import (
    hausdorff95_mm,
    score_regions,
    score_volume,
    volume_ml,
)

AFFINE = np.diag([0.5, 0.5, 3.0, 1.0])  # anisotropic: 0.75 mm^3 voxels


def cube(shape=(20, 20, 10), start=(5, 5, 2), size=(8, 8, 4)) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    mask[tuple(slice(s, s + n) for s, n in zip(start, size))] = 1
    return mask


@pytest.mark.parametrize(
    "shift, expected_mm",
    [
        ((0, 0, 0), 0.0),
        ((2, 0, 0), 1.0),  # two voxels along a 0.5 mm axis
        ((0, 0, 1), 3.0),  # one voxel along the 3 mm axis
    ],
)
def test_hd95_is_the_shift_in_millimetres(shift, expected_mm):
    truth = cube()
    moved = cube(start=(5 + shift[0], 5 + shift[1], 2 + shift[2]))
    assert hausdorff95_mm(moved, truth, AFFINE) == pytest.approx(expected_mm)


def test_hd95_is_undefined_when_a_mask_is_empty():
    assert np.isnan(hausdorff95_mm(np.zeros((4, 4, 4)), cube((4, 4, 4), (1, 1, 1), (2, 2, 2)), np.eye(4)))


def test_dice_and_volumes_by_hand():
    truth = cube()  # 256 voxels = 192 mL/1000 -> 0.192 mL
    half = cube(size=(8, 8, 2))  # 128 voxels inside the truth
    scores = score_volume(half, truth, AFFINE)
    assert scores["dice"] == pytest.approx(2 * 128 / (128 + 256))
    assert scores["iou"] == pytest.approx(128 / 256)
    assert scores["volume_truth_ml"] == pytest.approx(256 * 0.75 / 1000)
    assert scores["volume_difference_ml"] == pytest.approx(-128 * 0.75 / 1000)
    assert volume_ml(truth, AFFINE) == pytest.approx(0.192)
@pytest.mark.parametrize("s_axis_flipped", [False, True])
def test_region_scores_find_a_missing_skull_base_in_any_storage_order(s_axis_flipped):


    truth = np.zeros((20, 20, 30), bool)
    truth[5:15, 5:15, 0:30] = True  # brain from S index 0 (inferior) to 29
    prediction = truth.copy()
    prediction[:, :, 0:10] = False  # the inferior third missed
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    if s_axis_flipped:  # stored superior to inferior (e.g. LPI): the same anatomy, the array reversed along z
        truth, prediction, affine = truth[:, :, ::-1], prediction[:, :, ::-1], np.diag([1.0, 1.0, -1.0, 1.0])
    scores = score_regions(prediction, truth, affine)
    assert scores["dice_inferior_third"] == 0.0
    assert scores["dice_middle_third"] == scores["dice_superior_third"] == 1.0
    assert scores["footprint_dice"] == 1.0  # seen from above, nothing is missing


def test_the_footprint_dice_is_the_dice_of_the_projections_along_s():


    truth = np.zeros((10, 10, 4), bool)
    truth[2:6, 2:6, 1:3] = True  # 16 pixels seen from above
    prediction = np.zeros_like(truth)
    prediction[2:6, 4:8, 0] = True  # 16 pixels, 8 of them over the truth's
    assert score_regions(prediction, truth, np.eye(4))["footprint_dice"] == pytest.approx(2 * 8 / 32)
