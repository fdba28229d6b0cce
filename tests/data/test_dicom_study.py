"""A DICOM study is sorted into its axial CT series by header alone; everything else is left out with its reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from brainseg.data.dicom import open_image  # noqa: E402
from brainseg.data.dicom_study import sanitize, scan_study, series_problem  # noqa: E402
from tests.conftest import phantom  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DOSE_REPORT = "1.2.840.10008.5.1.4.1.1.88.67"
MR = "1.2.840.10008.5.1.4.1.1.4"
AXIAL = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
CORONAL = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
SPACING = (0.8, 0.8, 2.0)


def write_image(path: Path, pixels: np.ndarray | None, series_uid: str, number: int, description: str, *, position=(0.0, 0.0, 0.0),
                orientation=AXIAL, modality="CT", sop_class=CT, image_type=("ORIGINAL", "PRIMARY", "AXIAL"), patient="PAT-001") -> Path:
    """One DICOM file: an image with HU ``pixels`` (rows, cols), or (``None``) a non-image object such as a dose report."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = sop_class, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = sop_class, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber, ds.SeriesDescription = modality, series_uid, number, description
    ds.PatientID, ds.StudyInstanceUID = patient, "1.2.3.4"
    if pixels is not None:
        ds.ImageType = list(image_type)
        ds.Rows, ds.Columns = pixels.shape
        ds.PixelSpacing = [SPACING[1], SPACING[0]]
        ds.ImageOrientationPatient = list(orientation)
        ds.ImagePositionPatient = list(position)
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.PixelData = np.rint(pixels + 1024).astype(np.int16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_volume(folder: Path, ras: np.ndarray, number: int, description: str, shear_mm: float = 0.0, **kwargs) -> str:
    """An axial series of a RAS HU volume, one file per slice; ``shear_mm`` per mm along S moves the
    slice origins along the rows (gantry tilt, anatomy fixed). Returns its SeriesInstanceUID."""
    from pydicom.uid import generate_uid

    uid = generate_uid()
    lps = ras[::-1, ::-1, :]
    for k in range(lps.shape[2]):
        z = SPACING[2] * k
        shift = int(round(shear_mm * z / SPACING[0]))
        pixels = np.roll(lps[:, :, k].T.astype(np.float32), -shift, axis=1)
        write_image(folder / f"IM{k:04d}", pixels, uid, number, description, position=(shift * SPACING[0], 0.0, z), **kwargs)
    return uid


def write_study(root: Path, with_dicomdir: bool = True) -> Path:
    """A study as scanners export it: a localizer, two axial CT series (one with gantry tilt), a coronal
    reformat, an MR series, a secondary capture and a dose report, each series in its own nested folder."""
    from pydicom.uid import generate_uid

    image, _ = phantom((40, 36, 12))
    patient = root / "PAT-001" / "STUDY1"
    scout = generate_uid()
    for k in range(2):
        write_image(patient / "SE1" / f"IM{k}", np.full((36, 40), -1000.0), scout, 1, "Topogram 0.6 T20f",
                    image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"), orientation=CORONAL if k else AXIAL)
    write_volume(patient / "SE2", image, 2, "CTA Head 1.0 Hv40")
    write_volume(patient / "SE3", image, 3, "CTA Head tilt", shear_mm=0.2)
    write_volume(patient / "SE4", image, 4, "Cor MPR", orientation=CORONAL)
    write_volume(patient / "SE5", np.clip(image + 1000, 0, 1000), 5, "T1 MPRAGE", modality="MR", sop_class=MR)
    write_image(patient / "SE6" / "IM0", np.zeros((36, 40)), generate_uid(), 6, "Screen capture", modality="OT", sop_class=SECONDARY_CAPTURE)
    write_image(patient / "SE7" / "IM0", None, generate_uid(), 7, "Dose Report", modality="SR", sop_class=DOSE_REPORT)
    if with_dicomdir:  # an index of the files, which scanning must not mistake for an image
        write_image(root / "DICOMDIR", None, generate_uid(), 0, "", sop_class="1.2.840.10008.1.3.10", modality="")
    return root


def test_a_study_is_sorted_into_its_axial_ct_series_and_the_rest_with_reasons(tmp_path):
    study = scan_study(write_study(tmp_path / "study"))
    assert [series.name for series in study.series] == ["PAT-001_2_CTA_Head_1.0_Hv40", "PAT-001_3_CTA_Head_tilt"]
    assert all(len(series.files) == 12 for series in study.series)
    reasons = {series.number: reason for series, reason in study.skipped}
    assert sorted(reasons) == ["1", "4", "5", "6", "7"]
    assert reasons["1"].startswith("localizer")
    assert reasons["4"].startswith("not axial")
    assert reasons["5"].startswith("modality MR")
    assert reasons["6"].startswith("secondary capture")
    assert reasons["7"].startswith("not an image") and "dose report" in reasons["7"]


def test_series_of_a_flat_study_folder_are_told_apart_by_uid(tmp_path):
    """Every file in one folder (no DICOMDIR, no sub-folders): the series still come apart."""
    image, _ = phantom((40, 36, 12))
    write_volume(tmp_path / "flat", image, 2, "CTA", patient="")
    for path in sorted((tmp_path / "flat").iterdir()):
        path.rename(tmp_path / "flat" / f"a_{path.name}")
    write_volume(tmp_path / "flat", image, 3, "CTA", patient="")
    study = scan_study(tmp_path / "flat")
    assert [series.name for series in study.series] == ["flat_2_CTA", "flat_3_CTA"]
    assert open_image(study.series[0]).shape == (40, 36, 12)


def test_a_tilted_series_is_read_with_its_tilt_undone_and_reported(tmp_path):
    study = scan_study(write_study(tmp_path / "study", with_dicomdir=False))
    tilted = open_image(study.series[1])
    assert any("gantry tilt" in warning for warning in tilted.warnings)
    assert not open_image(study.series[0]).warnings


@pytest.mark.parametrize(
    "tilt_deg, kept",
    [(0.0, True), (25.0, True), (60.0, False), (90.0, False)],
)
def test_gantry_tilted_axial_slices_are_kept_and_reformats_left_out(tilt_deg, kept):
    angle = np.radians(tilt_deg)
    header = pydicom.Dataset()
    header.SOPClassUID, header.Modality, header.Rows, header.ImageType = CT, "CT", 36, ["ORIGINAL", "PRIMARY", "AXIAL"]
    header.ImageOrientationPatient = [1, 0, 0, 0, float(np.cos(angle)), float(-np.sin(angle))]
    assert (series_problem([header] * 10) == "") is kept


def test_names_are_safe_in_file_names():
    assert sanitize("CTA Head/Neck 0.625 (arterial)") == "CTA_Head_Neck_0.625_arterial"
    assert sanitize("../..") == ""
