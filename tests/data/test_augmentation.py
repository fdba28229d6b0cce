"""Augmentation: rigid geometry (never a shear), image and mask aligned, masks binary, reproducible."""

import math

import pytest
import torch

from brainseg.data.augmentation import Augmentation, gaussian_blur, similarity_matrix

OFF = dict(flip_lr=0, rotate_deg=0, scale=0, translate=0, intensity_scale=0, intensity_shift=0, noise_std=0)


@pytest.mark.parametrize("flip_x, flip_y", [(False, False), (True, False), (False, True), (True, True)])
@pytest.mark.parametrize("degrees, zoom", [(0, 1.0), (15, 1.0), (-15, 0.9), (40, 1.1), (90, 1.0)])
def test_the_geometry_is_a_rotation_times_a_flip_times_an_isotropic_scale(degrees, zoom, flip_x, flip_y):
    matrix = similarity_matrix(math.radians(degrees), zoom, flip_x, flip_y).double()
    gram = matrix.T @ matrix  # orthogonal columns of equal length: (1 / zoom^2) I
    torch.testing.assert_close(gram, torch.eye(2, dtype=torch.float64) / zoom**2, atol=1e-6, rtol=0)
    mirrored = flip_x != flip_y
    assert torch.linalg.det(matrix).item() == pytest.approx((-1 if mirrored else 1) / zoom**2, abs=1e-6)


def test_a_flip_with_a_rotation_is_not_sheared_as_it_was():
    """The old matrix [[cos*fx, -sin], [sin, cos*fy]] had columns at sin(2θ) to each other for fx = -1."""
    matrix = similarity_matrix(math.radians(15), 1.0, flip_x=True)
    assert torch.dot(matrix[:, 0], matrix[:, 1]).item() == pytest.approx(0.0, abs=1e-7)


def disc(size=64, radius=14, centre=(30, 36)) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return (((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) <= radius**2).float()[None]


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return (2 * (a * b).sum() / (a.sum() + b.sum())).item()


TRANSFORMS = {
    "flip": dict(OFF, flip_lr=1.0, flip_ap=1.0),
    "rotation": dict(OFF, rotate_deg=40),
    "zoom": dict(OFF, scale=0.3),
    "shift": dict(OFF, translate=0.2),
    "field of view": dict(OFF, fov_crop=0.4, fov_crop_prob=1.0),
    "field-of-view corners": dict(OFF, fov_crop=0.5, fov_crop_prob=1.0, fov_crop_sides=2),
    "everything": dict(flip_lr=0.5, rotate_deg=40, scale=0.3, translate=0.2, fov_crop=0.4, fov_crop_prob=0.5,
                       blur_sigma=1.5, low_resolution=0.5, resolution_prob=1.0, intensity_scale=0.2,
                       intensity_shift=0.1, gamma=0.4, noise_std=0.02),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_image_and_mask_stay_aligned_and_the_mask_stays_binary(name):
    augment = Augmentation(**TRANSFORMS[name])
    mask = disc()
    image = mask * 1.0  # brain bright on air (0): the image's own outline is the mask's
    generator = torch.Generator().manual_seed(3)
    for _ in range(20):
        out_image, out_mask = augment(image, mask, generator)
        assert set(out_mask.unique().tolist()) <= {0.0, 1.0}
        if name != "everything":  # intensity and resolution changes move the 0.5 level; geometry must not
            assert dice((out_image > 0.5).float(), out_mask) > 0.95


def test_rotations_and_flips_keep_the_area_and_zoom_scales_it():
    mask = disc(size=96, radius=20, centre=(48, 48))
    for options, expected in ((dict(OFF, rotate_deg=45, flip_lr=1.0), 1.0), (dict(OFF, scale=0.2), None)):
        out_image, out_mask = Augmentation(**options)(mask.clone(), mask.clone(), torch.Generator().manual_seed(0))
        ratio = (out_mask.sum() / mask.sum()).item()
        if expected is not None:
            assert ratio == pytest.approx(expected, rel=0.03)
        else:
            assert 1 / 1.2**2 - 0.03 < ratio < 1 / 0.8**2 + 0.03


def test_what_comes_in_from_outside_is_air():
    image = torch.full((1, 32, 32), 0.7)  # normalized soft tissue everywhere
    image[0, 0, 0] = -0.2  # the image's air value
    out, _ = Augmentation(**dict(OFF, translate=0.4))(image, torch.zeros(1, 32, 32), torch.Generator().manual_seed(1))
    assert out.min().item() == pytest.approx(-0.2, abs=1e-5)  # never a border smear of tissue
    assert (out < 0).float().mean() > 0.05


def test_a_field_of_view_cut_removes_image_and_mask_along_one_border():
    mask = torch.ones(1, 40, 40)
    image = torch.full((1, 40, 40), 0.5)
    image[0, 20, 20] = 0.0
    out_image, out_mask = Augmentation(**dict(OFF, fov_crop=0.25, fov_crop_prob=1.0))(image, mask, torch.Generator().manual_seed(5))
    cut = out_mask == 0
    assert 0 < cut.float().mean() <= 0.25 + 1 / 40
    assert torch.all(out_image[cut] == 0.0)  # air
    rows, cols = torch.nonzero(cut[0], as_tuple=True)
    assert rows.unique().numel() == 40 or cols.unique().numel() == 40  # a whole band along one side


def test_field_of_view_cuts_on_two_sides_make_corners_and_one_side_draws_as_before():
    mask, image = torch.ones(1, 40, 40), torch.full((1, 40, 40), 0.5)
    image[0, 20, 20] = 0.0  # air
    corners = 0
    for seed in range(40):
        out_image, out_mask = Augmentation(**dict(OFF, fov_crop=0.5, fov_crop_prob=1.0, fov_crop_sides=2))(
            image, mask, torch.Generator().manual_seed(seed))
        cut = out_mask[0] == 0
        assert torch.all(out_image[0][cut] == 0.0) and cut.float().mean() <= 0.75 + 0.05  # two bands at most
        full_rows, full_cols = cut.all(dim=1).any().item(), cut.all(dim=0).any().item()
        corners += full_rows and full_cols  # a horizontal and a vertical band: a corner is left
    assert 5 < corners < 40
    one = dict(OFF, fov_crop=0.25, fov_crop_prob=1.0)
    for seed in range(5):  # fov_crop_sides=1 draws exactly what the one-border cut always drew
        a = Augmentation(**one)(image, mask, torch.Generator().manual_seed(seed))
        b = Augmentation(**one, fov_crop_sides=1)(image, mask, torch.Generator().manual_seed(seed))
        assert torch.equal(a[1], b[1])


def test_intensity_changes_leave_the_mask_alone_and_gamma_keeps_the_range():
    mask = disc()
    image = torch.linspace(0, 1, 64 * 64).view(1, 64, 64)
    out_image, out_mask = Augmentation(**dict(OFF, gamma=0.5))(image, mask, torch.Generator().manual_seed(2))
    assert torch.equal(out_mask, mask)
    assert out_image.min().item() == pytest.approx(0.0, abs=1e-6) and out_image.max().item() == pytest.approx(1.0, abs=1e-6)
    assert not torch.allclose(out_image, image)


def test_blur_keeps_the_mean_and_lowers_the_contrast_of_edges():
    image = disc()
    blurred = gaussian_blur(image, 1.5)
    assert blurred.mean().item() == pytest.approx(image.mean().item(), rel=1e-3)
    assert (blurred[:, :, 1:] - blurred[:, :, :-1]).abs().max() < (image[:, :, 1:] - image[:, :, :-1]).abs().max()


def test_the_same_generator_state_gives_the_same_sample():
    augment = Augmentation(**TRANSFORMS["everything"])
    image, mask = disc() * 0.8, disc()
    first = augment(image, mask, torch.Generator().manual_seed(11))
    second = augment(image, mask, torch.Generator().manual_seed(11))
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])


@pytest.mark.parametrize("name", ["everything", "field-of-view corners", "zoom"])
def test_a_batch_is_augmented_exactly_as_its_samples_one_by_one(name):
    """Training augments a batch at once (MipDataset.__getitems__); each sample must come out as
    the same sample with the same generator alone, bit for bit, and the inputs stay untouched."""
    augment = Augmentation(**TRANSFORMS[name])
    torch.manual_seed(0)
    images, masks = torch.rand(6, 3, 40, 48), (torch.rand(6, 1, 40, 48) > 0.5).float()
    before = images.clone(), masks.clone()
    out_images, out_masks = augment.batch(images, masks, [torch.Generator().manual_seed(seed) for seed in range(6)])
    assert torch.equal(images, before[0]) and torch.equal(masks, before[1])
    for seed in range(6):
        image, mask = augment(images[seed], masks[seed], torch.Generator().manual_seed(seed))
        assert torch.equal(out_images[seed], image) and torch.equal(out_masks[seed], mask)
