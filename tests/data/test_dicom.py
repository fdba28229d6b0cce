"""A DICOM CT series projects exactly like the same volume in NIfTI; what cannot be fixed is refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from brainseg.data.cases import open_case
from brainseg.data.dicom import is_dicom_folder, open_image, read_dicom_series  # noqa: E402
from brainseg.data.discovery import CaseRecord, discover_cases  # noqa: E402
from brainseg.data.projection import project_case, project_image  # noqa: E402
from brainseg.errors import BadCaseError  # noqa: E402
from tests.conftest import phantom, write_nifti  # noqa: E402

SPACING = (0.8, 0.6, 2.0)  # mm along R, A, S of the phantom


def write_series(
    folder: Path,
    ras: np.ndarray,
    spacing=SPACING,
    positions: np.ndarray | None = None,
    shear_mm: float = 0.0,
    shear_axis: int = 0,
    slope: float = 1.0,
    intercept: float = -1024.0,
    series_uid: str | None = None,
) -> Path:
    """Write an axial DICOM series of a RAS-indexed HU volume, one file per S slice, shuffled names.

    ``positions`` (mm along S) default to a regular step; ``shear_mm`` moves each slice's origin
    by that much per mm along S (gantry tilt) along the row cosine (``shear_axis=0``) or the
    column cosine (1), by whole pixels, with the anatomy staying where it is in the world.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    lps = ras[::-1, ::-1, :]  # DICOM rows run to posterior, columns to the patient's left
    nx, ny, nz = lps.shape
    positions = spacing[2] * np.arange(nz) if positions is None else np.asarray(positions, float)
    series_uid = series_uid or generate_uid()
    for k in range(nz):
        pixels = lps[:, :, k].T.astype(np.float32)  # (rows = y, cols = x)
        shift_px = int(round(shear_mm * positions[k] / spacing[shear_axis]))
        pixels = np.roll(pixels, -shift_px, axis=1 - shear_axis)  # pixels are (rows = y, cols = x)
        origin = [0.0, 0.0, float(positions[k])]
        origin[shear_axis] = shift_px * spacing[shear_axis]
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.Modality, ds.SeriesInstanceUID = "CT", series_uid
        ds.Rows, ds.Columns = ny, nx
        ds.PixelSpacing = [spacing[1], spacing[0]]  # (between rows, between columns)
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = origin
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        stored = np.rint((pixels - intercept) / slope).astype(np.int16)
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = stored.tobytes()
        ds.save_as(folder / f"IM{(k * 7919) % 1000:04d}", enforce_file_format=True)
    return folder


def reference_mip(tmp_path: Path, ras: np.ndarray, spacing=SPACING):
    path = write_nifti(tmp_path / "reference.nii.gz", ras, np.diag([*spacing, 1.0]))
    return project_image(open_image(path))


def test_series_projects_like_the_same_volume_in_nifti(tmp_path):
    ras, _ = phantom((20, 16, 10))
    folder = write_series(tmp_path / "series", ras)
    assert is_dicom_folder(folder)
    volume = read_dicom_series(folder)
    assert volume.shape == (20, 16, 10)
    assert volume.axcodes == "LPS"
    np.testing.assert_allclose(volume.spacing, SPACING)
    mip, spacing = project_image(volume)
    expected, expected_spacing = reference_mip(tmp_path, ras)
    np.testing.assert_array_equal(mip, expected)
    assert spacing == pytest.approx(expected_spacing)


def test_hu_come_from_each_slices_rescale_slope_and_intercept(tmp_path):
    ras, _ = phantom((12, 12, 6))
    folder = write_series(tmp_path / "series", ras, slope=0.5, intercept=-2000.0)
    mip, _ = project_image(read_dicom_series(folder))
    np.testing.assert_allclose(mip, reference_mip(tmp_path, ras)[0])


def test_uneven_spacing_is_resampled_to_a_regular_grid(tmp_path):
    ras = np.full((12, 10, 6), -1000, np.int16)
    ras[5, 4, :] = 400  # a vessel along S: every slice has it, so any resampling keeps it
    positions = np.array([0.0, 2.0, 4.0, 7.0, 9.0, 11.0])
    folder = write_series(tmp_path / "series", ras, positions=positions)
    volume = read_dicom_series(folder)
    assert any("uneven slice spacing" in warning for warning in volume.warnings)
    assert volume.shape[2] == 7 and volume.spacing[2] == pytest.approx(11 / 6)  # 0..11 mm, nearest the 2 mm median
    mip, _ = project_image(volume)
    np.testing.assert_allclose(mip, reference_mip(tmp_path, ras)[0], atol=1e-3)


@pytest.mark.parametrize("shear_axis", [0, 1])
def test_gantry_tilt_is_undone_before_projecting(tmp_path, shear_axis):
    ras = np.full((24, 24, 8), -1000, np.int16)
    ras[10, 12, :] = 400  # a vessel straight along S
    folder = write_series(tmp_path / "series", ras, spacing=(1.0, 1.0, 2.0), shear_mm=0.5, shear_axis=shear_axis)
    volume = read_dicom_series(folder)
    assert any("gantry tilt" in warning for warning in volume.warnings)
    mip, _ = project_image(volume)
    straight, _ = reference_mip(tmp_path, ras, spacing=(1.0, 1.0, 2.0))
    np.testing.assert_array_equal(mip > 0, straight > 0)  # one dot, not a smeared line


def test_dataset_folder_may_hold_a_dicom_series_per_case(tmp_path):
    ras, mask = phantom((20, 16, 10))
    write_series(tmp_path / "data" / "CTA images" / "case00", ras)
    write_nifti(tmp_path / "data" / "brain masks" / "case00_ROI.nii.gz", mask[::-1, ::-1], np.diag([-0.8, -0.6, 2.0, 1.0]))
    (case,) = discover_cases(tmp_path / "data").cases
    assert case.image_path.is_dir()
    projection = project_case(open_case(case, affine_tolerance=1e-3))
    assert projection.image.shape == projection.mask.shape == (16, 20)


@pytest.mark.parametrize(
    "damage, message",
    [
        ("empty", "no DICOM images"),
        ("two_series", "2 DICOM series"),
        ("duplicate", "share a position"),
        ("single", "single slice"),
        ("truncated", "cannot decode pixel data"),
    ],
)
def test_unusable_series_are_refused_in_one_line(tmp_path, damage, message):
    ras, _ = phantom((8, 8, 4))
    folder = tmp_path / "series"
    if damage == "empty":
        folder.mkdir()
        (folder / "readme.txt").write_text("no images here")
        folder_to_read = folder
    elif damage == "two_series":
        write_series(folder, ras)
        write_series(tmp_path / "other", ras, positions=np.arange(4) * 2.0 + 1.0)
        for file in (tmp_path / "other").iterdir():
            file.rename(folder / f"B{file.name}")
        folder_to_read = folder
    elif damage == "duplicate":
        write_series(folder, ras, positions=np.array([0.0, 2.0, 2.0, 4.0]))
        folder_to_read = folder
    elif damage == "single":
        write_series(folder, ras[:, :, :1])
        folder_to_read = folder
    else:
        write_series(folder, ras)
        victim = sorted(folder.iterdir())[1]
        victim.write_bytes(victim.read_bytes()[:-40])  # a transfer cut short
        folder_to_read = folder
    with pytest.raises(BadCaseError, match=message) as error:
        project_case(open_case(CaseRecord("case", folder_to_read)))
    assert "\n" not in str(error.value)
