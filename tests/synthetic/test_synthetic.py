"""Specification of the synthetic head CTA generator (brainseg.synthetic)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brainseg.synthetic import (
    HU_RANGES,
    SyntheticConfig,
    Tissue,
    case_seed,
    generate_case,
    synthesize_dataset,
    write_case,
)
from brainseg.synthetic.dataset import GENERATOR_VERSION
from brainseg.synthetic.physics import Imaging, Renderer
from brainseg.synthetic.tiles import TiledShape
from brainseg.synthetic.voxels import assign, member

BONE = (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE)
# Tissues big enough to keep voxels after erosion at default resolution, checked against the table.
MEASURED = (Tissue.FAT, Tissue.SOFT_TISSUE, Tissue.CSF, Tissue.WHITE_MATTER, Tissue.GRAY_MATTER,
            Tissue.CANCELLOUS_BONE, Tissue.EYE, Tissue.ARTERY, Tissue.VEIN)
PARTIAL_VOLUME_HU = 6.0  # what blur and thick slices may pull a median off an eroded region


@pytest.fixture(scope="module")
def labelled_cases():
    return [generate_case(seed, return_labels=True) for seed in (1, 2, 3)]


@pytest.fixture(scope="module")
def twenty_cases():
    return [generate_case(seed) for seed in range(100, 120)]


def test_median_hu_of_each_tissue_lies_in_the_documented_range(labelled_cases):
    for case in labelled_cases:
        hu = case.hu
        for tissue in MEASURED:
            core = ndimage.binary_erosion(case.labels == tissue)
            if core.sum() < 30:
                continue
            low, high = HU_RANGES[tissue]
            if tissue == Tissue.VEIN:
                low = 45.0  # veins range from unenhanced blood to the arterial value
            median = float(np.median(hu[core]))
            assert low - PARTIAL_VOLUME_HU <= median <= high + PARTIAL_VOLUME_HU, (case.meta["seed"], tissue.name, median)


def test_gray_matter_is_denser_than_white_matter(labelled_cases):
    for case in labelled_cases:
        hu = case.hu
        gray = np.median(hu[ndimage.binary_erosion(case.labels == Tissue.GRAY_MATTER)])
        white = np.median(hu[ndimage.binary_erosion(case.labels == Tissue.WHITE_MATTER)])
        assert gray > white + 3


def test_twenty_default_cases_vary_in_acquisition_and_pose(twenty_cases):
    config = SyntheticConfig()
    spacing = np.array([nib.affines.voxel_sizes(c.affine) for c in twenty_cases])
    in_plane = [c.meta["shape_acquisition"][0] for c in twenty_cases]
    slices = [c.meta["shape_acquisition"][2] for c in twenty_cases]
    codes = {"".join(nib.aff2axcodes(c.affine)) for c in twenty_cases}
    rotations = np.array([c.meta["rotation_deg"] for c in twenty_cases])
    assert len(np.unique(spacing.round(3))) >= 20
    assert all(config.shape_in_plane[0] <= n <= config.shape_in_plane[1] for n in in_plane)
    assert len(set(in_plane)) >= 4
    assert all(config.slice_count[0] <= n <= config.slice_count[1] for n in slices)
    assert len(codes) >= 3
    assert codes <= set(config.orientations)
    assert rotations.std(axis=0).min() > 2.0
    assert np.abs(rotations).max(axis=0).tolist() <= list(config.rotation_deg)
    assert len({c.meta["fov_kind"] for c in twenty_cases}) >= 2


def test_case_meta_matches_the_affine(twenty_cases):
    for case in twenty_cases:
        assert "".join(nib.aff2axcodes(case.affine)) == case.meta["orientation"]
        assert case.image.shape == case.mask.shape


def test_same_seed_gives_identical_arrays_and_other_seeds_differ():
    a, b, c = generate_case(7, return_labels=True), generate_case(7, return_labels=True), generate_case(8)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.affine, b.affine)
    assert a.meta == b.meta
    assert a.image.shape != c.image.shape or not np.array_equal(a.image, c.image)


def test_mask_is_binary_nonempty_and_inside_the_skull(labelled_cases):
    for case in labelled_cases:
        assert case.mask.dtype == np.uint8 and set(np.unique(case.mask)) == {0, 1}
        inside = case.mask.astype(bool)
        assert not np.isin(case.labels[inside], BONE).any()
        dense = inside & (case.hu > 300)
        assert not np.isin(case.labels[dense], BONE).any()
        # The mask is the cranial cavity: brain and CSF make up most of it.
        brain = np.isin(case.labels[inside], (Tissue.GRAY_MATTER, Tissue.WHITE_MATTER, Tissue.CSF))
        assert brain.mean() > 0.8


def test_stored_values_follow_the_scanner_rescale_convention(twenty_cases):
    for case in twenty_cases:
        assert case.image.dtype == np.int16
        if case.intercept < 0:
            assert case.image.min() >= 0
        hu = case.hu
        assert hu.max() <= 3071
        # Below the 12-bit range only as padding outside the reconstruction circle (GE style).
        assert set(np.unique(hu[hu < -1024]).tolist()) <= {-2000.0}


def test_written_files_load_with_the_affine_and_hu(tmp_path):
    case = generate_case(5)
    image_path, mask_path = write_case(case, tmp_path, "synth_test")
    assert image_path == tmp_path / "CTA images" / "synth_test.nii.gz"
    assert mask_path == tmp_path / "brain masks" / "synth_test_ROI.nii.gz"
    image, mask = nib.load(image_path), nib.load(mask_path)
    assert image.get_data_dtype() == np.int16 and mask.get_data_dtype() == np.uint8
    for loaded in (image, mask):
        np.testing.assert_allclose(loaded.affine, case.affine, atol=1e-4)
        assert int(loaded.header["sform_code"]) == 1 and int(loaded.header["qform_code"]) == 1
    assert np.array_equal(np.asarray(image.dataobj.get_unscaled()), case.image)
    np.testing.assert_allclose(image.get_fdata(dtype=np.float32), case.hu)
    assert np.array_equal(np.asarray(mask.dataobj), case.mask)
    assert not list(tmp_path.rglob("*.tmp*"))


def test_dataset_is_deterministic_per_case_and_resumes(tmp_path):
    config = replace(SyntheticConfig(), shape_in_plane=(96, 96), slice_count=(30, 40))
    ids = synthesize_dataset(tmp_path, 2, seed=3, config=config, workers=1, progress=False)
    assert ids == ["synth_0000", "synth_0001"]
    first = tmp_path / "CTA images" / "synth_0001.nii.gz"
    stamp = first.stat().st_mtime_ns
    synthesize_dataset(tmp_path, 3, seed=3, config=config, workers=1, progress=False)
    assert first.stat().st_mtime_ns == stamp  # existing cases are skipped
    third = nib.load(tmp_path / "CTA images" / "synth_0002.nii.gz")
    expected = generate_case(case_seed(3, 2), config)
    assert np.array_equal(np.asarray(third.dataobj.get_unscaled()), expected.image)
    assert case_seed(3, 2) != case_seed(4, 2)


def test_a_dataset_made_by_an_older_generator_is_made_again(tmp_path):
    config = replace(SyntheticConfig(), shape_in_plane=(96, 96), slice_count=(30, 40))
    synthesize_dataset(tmp_path, 1, seed=3, config=config, workers=1, progress=False)
    assert json.loads((tmp_path / "generator.json").read_text()) == {"version": GENERATOR_VERSION}
    image = tmp_path / "CTA images" / "synth_0000.nii.gz"
    made = image.stat().st_mtime_ns
    (tmp_path / "generator.json").unlink()  # a folder from before the stamp: made by an older generator
    time.sleep(0.01)
    synthesize_dataset(tmp_path, 1, seed=3, config=config, workers=1, progress=False)
    assert image.stat().st_mtime_ns != made
    assert (tmp_path / "generator.json").is_file()


def test_presets_widen_the_ranges():
    default, realistic, wide = SyntheticConfig(), SyntheticConfig.realistic(), SyntheticConfig.wide()
    assert default.shape_in_plane[1] <= 192 and realistic.shape_in_plane == (256, 512)
    assert wide.spacing_in_plane_mm[0] < realistic.spacing_in_plane_mm[0] < default.spacing_in_plane_mm[0]
    assert len(wide.orientations) > len(default.orientations)
    assert SyntheticConfig.preset("wide") == wide
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        SyntheticConfig.preset("huge")


@pytest.mark.parametrize(
    "config, seed",
    [
        (SyntheticConfig(), 0),  # 1.5 mm pixels, 3 sub-slices per slice: bricks of 4 x 4 cells
        (replace(SyntheticConfig(), shape_in_plane=(160, 160), reconstruction_fov_mm=(70.0, 72.0)), 1),  # 0.45 mm: one cell
        (replace(SyntheticConfig(), shape_in_plane=(96, 96), reconstruction_fov_mm=(245.0, 250.0),
                 spacing_in_plane_mm=(2.5, 2.6)), 2),  # 2.5 mm: fields sampled on every voxel
        (replace(SyntheticConfig(), craniectomy_prob=1.0, craniectomy_bulge_mm=(9.0, 9.0), burr_hole_prob=1.0), 6),  # defects
    ],
)
def test_skipping_and_filling_bricks_changes_nothing(monkeypatch, config, seed):
    # Large shapes skip bricks they cannot reach and fill uniform ones; the voxel-wise rules everywhere give the same case.
    fast = generate_case(seed, config, return_labels=True)
    for cls in TiledShape.__subclasses__():
        monkeypatch.setattr(cls, "classify", lambda self, box: np.ones(box.shape, np.uint8))
    slow = generate_case(seed, config, return_labels=True)
    assert np.array_equal(fast.labels, slow.labels)
    assert np.array_equal(fast.mask, slow.mask)
    assert np.array_equal(fast.image, slow.image)


def test_rendering_is_lookup_sub_slice_mean_then_gaussian_psf():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, (2 * 3, 40, 33), dtype=np.uint8)  # 2 slices of 3 sub-slices
    lut = rng.uniform(-1000, 2000, 256).astype(np.float32)
    imaging = Imaging(lut, noise_hu=0.0, psf_sigma_vox=0.8, subslices=3, circular_fov=False, slope=1.0,
                      intercept=-1024.0, padding_hu=-1024.0)
    hu = Renderer(imaging, (2, 40, 33))(labels, np.ones(2), rng)
    expected = lut[labels].reshape(2, 3, 40, 33).mean(axis=1)
    for axis in (1, 2):
        expected = ndimage.gaussian_filter1d(expected, 0.8, axis=axis, mode="nearest")
    np.testing.assert_allclose(hu, expected, atol=1e-3)


@pytest.mark.parametrize("over", [(0,), (1, 2, 3), (1, 2, 7, 9, 10, 17), tuple(range(20))])
def test_label_writes_match_masked_assignment(over):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 20, (5, 6, 7), dtype=np.uint8)
    where = rng.random(labels.shape) < 0.5
    np.testing.assert_array_equal(member(labels, over), np.isin(labels, over))
    expected = labels.copy()
    expected[where] = 12
    assign(labels, 12, where)
    np.testing.assert_array_equal(labels, expected)
