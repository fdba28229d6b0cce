"""MIP along the patient's S axis whatever the storage order, and one-line errors for bad files."""

import gzip
from types import SimpleNamespace

import nibabel as nib
import numpy as np
import pytest

from brainseg.data.cases import open_case, read_binary_mask
from brainseg.data.discovery import CaseRecord
from brainseg.data.extra_projections import EXTRA_PROJECTIONS, SlabValues
from brainseg.data.nifti import open_nifti
from brainseg.data.projection import (
    MipCache,
    MipRepresentation,
    Projection,
    display_to_ras,
    project_case,
    project_image,
    project_mask,
    project_volume,
    ras_to_display,
)
from brainseg.errors import BadCaseError
from tests.conftest import phantom, write_nifti

RAS_AFFINE = np.diag([0.7, 0.9, 2.5, 1.0])


def _reorient(volume: np.ndarray, affine: np.ndarray, codes: str):
    """The same voxels and world positions, stored in another axis order (e.g. 'LPS', 'SAR')."""
    image = nib.Nifti1Image(volume, affine)
    transform = nib.orientations.ornt_transform(nib.io_orientation(affine), nib.orientations.axcodes2ornt(codes))
    moved = image.as_reoriented(transform)
    return np.asanyarray(moved.dataobj), moved.affine


def test_mip_is_the_maximum_along_s_in_radiological_display(tmp_path):
    image, _ = phantom((10, 12, 8))
    path = write_nifti(tmp_path / "a.nii.gz", image, RAS_AFFINE)
    mip, spacing = project_image(open_nifti(path))
    expected = ras_to_display(image.max(axis=2).astype(np.float32))
    np.testing.assert_array_equal(mip, expected)
    assert mip.shape == (12, 10)  # rows = A-P (ny), cols = R-L (nx)
    assert spacing == pytest.approx((0.9, 0.7))
    np.testing.assert_array_equal(display_to_ras(mip), image.max(axis=2))


@pytest.mark.parametrize("codes", ["LPS", "RAS", "SAR", "PIL", "ASL"])
def test_every_storage_orientation_gives_the_same_mip(tmp_path, codes):
    image, mask = phantom((10, 12, 8))
    reference, ref_spacing = project_image(open_nifti(write_nifti(tmp_path / "ref.nii.gz", image, RAS_AFFINE)))
    stored, affine = _reorient(image, RAS_AFFINE, codes)
    stored_mask, _ = _reorient(mask, RAS_AFFINE, codes)
    assert "".join(nib.aff2axcodes(affine)) == codes
    mip, spacing = project_image(open_nifti(write_nifti(tmp_path / "img.nii.gz", stored, affine)))
    projected_mask, _ = mask_mip(open_nifti(write_nifti(tmp_path / "mask.nii.gz", stored_mask, affine)))
    np.testing.assert_array_equal(mip, reference)
    np.testing.assert_array_equal(projected_mask, ras_to_display(mask.max(axis=2)))
    assert spacing == pytest.approx(ref_spacing)


def test_rescale_slope_and_intercept_give_hu(tmp_path):
    stored = np.random.default_rng(0).integers(0, 3000, (6, 6, 5)).astype(np.int16)
    path = write_nifti(tmp_path / "s.nii.gz", stored, slope=1.0, inter=-1024.0)
    mip, _ = project_image(open_nifti(path))
    np.testing.assert_allclose(display_to_ras(mip), stored.max(axis=2) - 1024.0)


def test_streaming_over_many_slabs_matches_numpy(tmp_path, monkeypatch):
    monkeypatch.setattr("brainseg.data.nifti.SLAB_BYTES", 1)  # one slice per read
    rng = np.random.default_rng(1)
    for codes in ("RAS", "SAR", "ASR"):
        volume, affine = _reorient(rng.integers(-1000, 2000, (7, 9, 11)).astype(np.int16), RAS_AFFINE, codes)
        volume_obj = open_nifti(write_nifti(tmp_path / f"{codes}.nii", volume, affine))
        expected = np.asanyarray(nib.as_closest_canonical(nib.load(volume_obj.path)).dataobj).max(axis=2)
        np.testing.assert_array_equal(display_to_ras(project_image(volume_obj)[0]), expected)


def tissue_below_top(ras_hu: np.ndarray, slice_mm: float, pixel_mm2: float, band_mm=130.0, layer_mm=5.0, top_area_mm2=500.0):
    """The soft tissue within ``band_mm`` below the top of the head, slice by slice as defined."""
    tissue = (ras_hu >= 0) & (ras_hu <= 100)
    k = max(1, round(layer_mm / slice_mm))
    layers = [tissue[:, :, i : i + k] for i in range(0, tissue.shape[2], k)]  # from the most inferior up
    held = [i for i, layer in enumerate(layers) if layer.sum() * pixel_mm2 / layer.shape[2] >= top_area_mm2]
    if not held:
        return np.zeros(ras_hu.shape[:2])
    n_band = max(1, round(band_mm / (k * slice_mm)))
    return sum(layers[i].sum(axis=2) for i in range(max(0, held[-1] + 1 - n_band), held[-1] + 1)) * slice_mm


def expected_extra(ras_hu: np.ndarray, slice_mm: float, pixel_mm2: float) -> dict[str, np.ndarray]:
    """The extra projections of a RAS-ordered HU volume, by their definitions, in display orientation."""
    return {
        "mean": ras_to_display(np.clip(ras_hu, -1000, 2000).mean(axis=2)),
        "bone_mm": ras_to_display((ras_hu >= 300).sum(axis=2) * slice_mm),
        "tissue_mm": ras_to_display(((ras_hu >= 0) & (ras_hu <= 100)).sum(axis=2) * slice_mm),
        "top_tissue_mm": ras_to_display(tissue_below_top(ras_hu, slice_mm, pixel_mm2)),
    }


@pytest.mark.parametrize("codes", ["RAS", "LPI", "SAR", "ASL"])
def test_extra_projections_measure_bone_and_tissue_along_s_whatever_the_storage_order(tmp_path, codes, monkeypatch):
    monkeypatch.setattr("brainseg.data.nifti.SLAB_BYTES", 200)  # a few slices per read: slabs are combined
    rng = np.random.default_rng(2)
    ras_hu = rng.choice([-1000, -50, 40, 90, 250, 700, 3000], (30, 32, 80)).astype(np.float32)
    ras_hu[:, :, 70:] = np.where(rng.random((30, 32, 10)) < 0.3, 40, -1000)  # sparse tissue at the top: the head's top is inside the volume
    ras_hu[:, :, 77:] = -1000
    ras = ((ras_hu + 1000) / 2).astype(np.int16)  # stored with slope 2, intercept -1000
    affine = np.diag([2.0, 2.0, 2.5, 1.0])  # 2.5 mm slices: 2-slice layers, a 26-layer band that leaves out the lowest slices
    stored, affine = _reorient(ras, affine, codes)
    volume = open_nifti(write_nifti(tmp_path / "img.nii.gz", stored, affine, slope=2.0, inter=-1000.0))
    mip, extra, _ = project_volume(volume, tuple(EXTRA_PROJECTIONS))
    np.testing.assert_allclose(mip, ras_to_display(ras_hu.max(axis=2)))
    assert 0 < extra["top_tissue_mm"].max() and (extra["top_tissue_mm"] < extra["tissue_mm"]).any()
    for name, expected in expected_extra(ras_hu, slice_mm=2.5, pixel_mm2=4.0).items():  # at the cache's resolution: 1 HU, 0.1 mm
        np.testing.assert_allclose(extra[name], expected, atol=EXTRA_PROJECTIONS[name].png_step / 2 + 1e-4, err_msg=name)


def test_a_column_through_3_slices_of_bone_and_2_of_brain_has_7_5_mm_of_bone_and_5_of_tissue(tmp_path):
    column = np.array([-1000, 1200, 40, 30, 1500, 900, -1000, -1000], np.int16)  # 2.5 mm slices
    volume = np.broadcast_to(column, (3, 3, 8)).copy()
    _, extra, _ = project_volume(open_nifti(write_nifti(tmp_path / "c.nii.gz", volume, RAS_AFFINE)), ("bone_mm", "tissue_mm", "mean"))
    assert extra["bone_mm"][1, 1] == pytest.approx(7.5) and extra["tissue_mm"][1, 1] == pytest.approx(5.0)
    assert extra["mean"][1, 1] == np.round(np.mean(np.clip(column, -1000, 2000)))  # whole HU


def test_the_tissue_below_the_top_of_the_head_holds_the_brain_not_the_neck_under_it(tmp_path):
    """A head-and-neck field: the neck, 140 mm below the vertex, lies beside the brain's footprint;
    half the brain has no bone above it (a craniectomy)."""
    hu = np.full((40, 40, 100), -1000.0, np.float32)  # 2 mm voxels, S up
    x, y = np.mgrid[:40, :40]
    brain = (x - 12) ** 2 + (y - 20) ** 2 <= 64  # 800 mm² a slice
    neck = (x - 30) ** 2 + (y - 20) ** 2 <= 16
    hu[brain, 45:95] = 35.0
    hu[brain & (x < 12), 95:97] = 1200.0  # the vault over one half; the other half bulges through the defect
    hu[brain & (x >= 12), 95:97] = 35.0
    hu[brain, 97] = 20.0  # scalp: the top of the head
    hu[neck, :28] = 50.0
    volume = open_nifti(write_nifti(tmp_path / "h.nii.gz", hu.astype(np.int16), np.diag([2.0, 2.0, 2.0, 1.0])))
    _, extra, _ = project_volume(volume, ("tissue_mm", "top_tissue_mm"))
    plane, everything = display_to_ras(extra["top_tissue_mm"]), display_to_ras(extra["tissue_mm"])
    assert everything[neck].min() == pytest.approx(56.0)  # the neck's 28 slices, all of them tissue
    assert plane[neck].max() == 0.0  # ... and none of it within 130 mm of the top
    np.testing.assert_allclose(plane[brain & (x < 12)], 102.0)  # 50 slices of brain and the scalp under the vault
    np.testing.assert_allclose(plane[brain & (x >= 12)], 106.0)  # the same and the bulge where there is no bone
    assert plane[~brain & ~neck].max() == 0.0


@pytest.mark.parametrize("fraction", [0.0, 0.37], ids=["whole HU", "fractional HU"])
def test_a_cached_case_equals_a_fresh_one_extra_projections_included(tmp_path, fraction):
    """The first run, which prepares the cache, trains on the same arrays as every later run, which
    reads it: a float volume's fractional HU are whole in both (the first run's test Dice differed)."""
    image, mask = phantom((20, 18, 10))
    image = image.astype(np.float32) + fraction if fraction else image
    record = CaseRecord("c", write_nifti(tmp_path / "c.nii.gz", image, RAS_AFFINE), write_nifti(tmp_path / "c_ROI.nii.gz", mask, RAS_AFFINE))
    representation = MipRepresentation(("mean", "bone_mm", "tissue_mm"))
    fresh = representation.make(open_case(record))
    cache = representation.cache(tmp_path / "cache")
    cache.store("c", "key", fresh)
    cached = cache.load("c", "key")
    np.testing.assert_array_equal(cached.image, fresh.image)
    assert cached.image.dtype == fresh.image.dtype == np.float32
    for name in ("mean", "bone_mm", "tissue_mm"):
        np.testing.assert_array_equal(cached.extra[name], fresh.extra[name], err_msg=name)


def test_extra_projections_are_cached_to_0_1_mm_and_1_hu_and_their_set_is_part_of_the_key(tmp_path):
    rng = np.random.default_rng(3)
    extra = {"mean": rng.uniform(-1000, 1500, (5, 6)).astype(np.float32), "bone_mm": rng.uniform(0, 300, (5, 6)).astype(np.float32)}
    cache = MipCache(tmp_path, ("mean", "bone_mm"))
    cache.store("case", "key", Projection(np.zeros((5, 6), np.float32), None, (1.0, 1.0), [], extra))
    loaded = cache.load("case", "key")
    np.testing.assert_allclose(loaded.extra["mean"], extra["mean"], atol=0.5)
    np.testing.assert_allclose(loaded.extra["bone_mm"], extra["bone_mm"], atol=0.05)
    cache.extra_path("case", "bone_mm").unlink()
    assert cache.load("case", "key") is None  # an incomplete set is a miss
    assert MipRepresentation().settings() == {"projection": "mip", "axis": "S", "orientation": "radiological"}  # old caches stay valid
    assert MipRepresentation(("mean",)).cache_folder == "mip-mean" != MipRepresentation().cache_folder


def test_unknown_extra_projections_are_refused():
    with pytest.raises(ValueError, match="extra projections must be distinct names among mean, bone_mm, tissue_mm, top_tissue_mm"):
        MipRepresentation(("mean", "median"))
    assert set(EXTRA_PROJECTIONS) == {"mean", "bone_mm", "tissue_mm", "top_tissue_mm"}


@pytest.mark.parametrize("value", [255, 7])
def test_a_zero_k_mask_is_binarized_with_a_warning(tmp_path, value):
    _, mask = phantom()
    path = write_nifti(tmp_path / "m.nii.gz", mask * value)
    projected, warnings = mask_mip(open_nifti(path))
    assert set(np.unique(projected)) == {0, 1}
    assert len(warnings) == 1 and "binarized" in warnings[0] and "m.nii.gz" in warnings[0]


def _bad_case(tmp_path, image=None, mask=None, mask_affine=None, image_dtype=None):
    good_image, good_mask = phantom()
    image = good_image if image is None else image
    image_path = write_nifti(tmp_path / "img.nii.gz", image.astype(image_dtype) if image_dtype else image)
    mask_path = write_nifti(tmp_path / "msk.nii.gz", good_mask if mask is None else mask, mask_affine)
    return CaseRecord("x", image_path, mask_path)


def _corrupt(tmp_path, kind):
    image, _ = phantom()
    path = write_nifti(tmp_path / "img.nii.gz", image)
    if kind == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "zero bytes":
        path.write_bytes(b"")
    elif kind == "not nifti":
        path.write_bytes(gzip.compress(b"hello, this is a text file" * 50))
    elif kind == "2-D":
        write_nifti(path, image[:, :, 0])
    elif kind == "4-D":
        write_nifti(path, np.stack([image, image], axis=-1))
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("truncated", "truncated|unreadable"),
        ("zero bytes", "empty \\(0 bytes\\)"),
        ("not nifti", "not a readable NIfTI"),
        ("2-D", "expected a 3-D volume, got 2-D"),
        ("4-D", "expected a 3-D volume, got 4-D"),
    ],
)
def test_broken_files_give_one_line_errors_naming_the_file(tmp_path, kind, message):
    path = _corrupt(tmp_path, kind)
    with pytest.raises(BadCaseError, match=message) as error:
        project_image(open_nifti(path))
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)


def test_case_validation_errors(tmp_path):
    image, mask = phantom()
    nan_image = image.astype(np.float32)
    nan_image[3, 3, 3] = np.nan
    cases = {
        "contains NaN or Inf": dict(image=nan_image),
        "mask shape .* differs": dict(mask=mask[:-1]),
        "mask affine differs": dict(mask_affine=np.diag([1.0, 1.0, 1.1, 1.0])),
        "mask is not binary": dict(mask=mask * np.random.default_rng(0).integers(1, 4, mask.shape).astype(np.uint8)),
        "mask is empty": dict(mask=np.zeros_like(mask)),
    }
    for message, kwargs in cases.items():
        with pytest.raises(BadCaseError, match=message) as error:
            project_case(open_case(_bad_case(tmp_path, **kwargs)))
        assert "\n" not in str(error.value)


def test_a_header_declaring_a_huge_volume_is_refused_before_reading(tmp_path):
    path = write_nifti(tmp_path / "big.nii.gz", phantom()[0])
    with pytest.raises(BadCaseError, match="over the limit"):
        open_nifti(path, max_voxels=1000)


def test_a_float_mask_with_partial_values_is_not_binary(tmp_path):
    _, mask = phantom()
    soft = mask.astype(np.float32) * 0.5
    soft[mask > 0][:10] = 1.0
    soft[0, 0, 0] = 1.0
    with pytest.raises(BadCaseError, match="not binary"):
        mask_mip(open_nifti(write_nifti(tmp_path / "soft.nii.gz", soft)))


def mask_mip(volume):
    """The union along S of a mask file, and the warnings its labels gave."""
    mask, warnings = read_binary_mask(volume)
    return project_mask(mask, volume), warnings


@pytest.mark.parametrize("slope, intercept", [(1.0, -1024.0), (2.0, -1000.0), (-1.0, 1000.0), (0.7, -1024.0), (1.0, 130000.0)])
def test_slab_values_in_stored_integers_match_their_definitions_in_hu(slope, intercept):
    """Integer files are tested and summed in their stored values; the results are those of HU."""
    stored = np.random.default_rng(4).integers(-1500, 3500, (6, 7, 9)).astype(np.int16)
    volume = SimpleNamespace(slope=slope, intercept=intercept, scale=lambda values: values.astype(np.float32) * np.float32(slope) + np.float32(intercept))
    hu = stored.astype(np.float64) * slope + intercept
    slab = SlabValues(stored, volume)
    for low, high in [(0.0, 100.0), (300.0, np.inf), (-1000.0, 2000.0), (40000.0, np.inf)]:
        np.testing.assert_array_equal(slab.within(low, high), (hu >= low) & (hu <= high), err_msg=f"{low}..{high}")
    np.testing.assert_allclose(slab.clipped_sum(-1000.0, 2000.0, axis=1), np.clip(hu, -1000, 2000).sum(axis=1), atol=1e-3)  # HU in float32 where bounds fall between integers
    assert slab.within(0.0, 100.0) is slab.within(0.0, 100.0)  # made once per slab, shared by the planes that ask
