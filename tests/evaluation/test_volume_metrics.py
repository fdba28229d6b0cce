"""3-D metrics in physical units, checked against values computed by hand."""

import numpy as np
import pytest

from brainseg.evaluation.metrics import (
    hausdorff95_mm,
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
