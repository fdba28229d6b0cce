"""A DICOM study folder (nested folders, with or without DICOMDIR) sorted into the CT series worth predicting.

:func:`scan_study` reads every DICOM file's header only (``stop_before_pixels``, a few tags), so
large studies are sorted in seconds. Files are grouped by ``SeriesInstanceUID``, wherever they
lie. A series is predicted when it is an axial CT volume; the others are left out with their
reason:

* not an image: structured reports, dose reports, presentation states (no pixel rows, or an
  SR class or modality);
* a secondary capture (a screenshot or a saved picture, not CT slices);
* another modality than CT (HU are needed);
* a localizer (``ImageType`` says LOCALIZER) or a series of fewer than ``min_slices`` images;
* multi-frame (enhanced) objects, which :mod:`brainseg.data.dicom` does not read;
* not axial: a coronal, sagittal or oblique reformat, whose slice normal is more than
  ``max_axial_angle_deg`` away from the patient's S axis (gantry-tilted axial series, a few
  tens of degrees at most, are kept: reading them undoes the tilt).

Each series is named from the patient ID (or, without one, its folder), its series number and
its description, sanitized for file names; a folder holding one unnamed series keeps the
folder's name.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from brainseg.data.dicom import DicomSeries, load_pydicom, looks_like_dicom

MIN_SLICES = 5  # fewer images are a localizer or a fragment, not a volume to segment
MAX_AXIAL_ANGLE_DEG = 40.0  # gantry tilt stays under ~30 degrees; reformats are 90 degrees off
HEADER_TAGS = (
    "SeriesInstanceUID", "SOPClassUID", "Modality", "ImageType", "ImageOrientationPatient",
    "SeriesNumber", "SeriesDescription", "PatientID", "Rows", "NumberOfFrames",
)
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # and its .1-.4 multi-frame variants
STRUCTURED_REPORT = "1.2.840.10008.5.1.4.1.1.88."  # SR, including radiation dose reports
MEDIA_DIRECTORY = "1.2.840.10008.1.3.10"  # DICOMDIR
NOT_IMAGES = {"SR", "KO", "PR", "DOC", "REG", "SEG", "RTSTRUCT", "RTPLAN", "RTDOSE"}


@dataclass
class Study:
    """What a study folder holds: the series to predict, and the others with why they are left out."""

    series: list[DicomSeries] = field(default_factory=list)
    skipped: list[tuple[DicomSeries, str]] = field(default_factory=list)


def sanitize(text: str, limit: int = 80) -> str:
    """A string safe in a file name: runs of other characters become ``_``; at most ``limit`` characters."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", str(text)).strip("._-+")[:limit].rstrip("._-+")


def dicom_files(folder: Path) -> list[Path]:
    """Every DICOM file under ``folder``, sorted, hidden files and folders and DICOMDIR left out."""
    found = []
    for parent, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        for name in sorted(files):
            path = Path(parent) / name
            if name.upper() != "DICOMDIR" and looks_like_dicom(path):
                found.append(path)
    return found


def _text(header, tag: str) -> str:
    value = getattr(header, tag, None)
    return "" if value is None else str(value).strip()


def _axial_angle(orientation) -> float:
    """Degrees between a slice normal and the patient's S axis (0 for axial slices)."""
    cosines = np.asarray(orientation, float)
    normal = np.cross(cosines[:3], cosines[3:])
    length = float(np.linalg.norm(normal))
    return 90.0 if length == 0 else float(np.degrees(np.arccos(min(1.0, abs(normal[2]) / length))))


def series_problem(headers: list, min_slices: int = MIN_SLICES, max_axial_angle_deg: float = MAX_AXIAL_ANGLE_DEG) -> str:
    """Why a series (its headers) is not an axial CT volume to predict on; '' when it is."""
    first = headers[0]
    sop_class, modality = _text(first, "SOPClassUID"), _text(first, "Modality").upper()
    if sop_class.startswith(STRUCTURED_REPORT) or modality in NOT_IMAGES or getattr(first, "Rows", None) is None:
        kind = "a dose report" if "dose" in _text(first, "SeriesDescription").lower() else f"modality {modality or '?'}"
        return f"not an image (structured report or other non-image object: {kind})"
    if sop_class == SECONDARY_CAPTURE or sop_class.startswith(SECONDARY_CAPTURE + "."):
        return "secondary capture (a saved picture, not CT slices)"
    if modality != "CT":
        return f"modality {modality or 'missing'}, not CT (brain masks need CT in HU)"
    image_types = {str(value).upper() for header in headers for value in (getattr(header, "ImageType", None) or [])}
    if "LOCALIZER" in image_types:
        return "localizer (ImageType LOCALIZER)"
    if any(int(getattr(header, "NumberOfFrames", 1) or 1) > 1 for header in headers):
        return "multi-frame (enhanced) DICOM, not read here; export the series as single-frame images"
    if len(headers) < min_slices:
        return f"only {len(headers)} image(s): a localizer or fragment, not a volume (at least {min_slices} needed)"
    orientations = [getattr(header, "ImageOrientationPatient", None) for header in headers]
    if any(orientation is None or len(orientation) != 6 for orientation in orientations):
        return "no ImageOrientationPatient: slice geometry unknown"
    angle = max(_axial_angle(orientation) for orientation in orientations)
    if angle > max_axial_angle_deg:
        return f"not axial (slices {angle:.0f} degrees from axial: a coronal, sagittal or oblique reformat)"
    return ""


def _series_number(series: DicomSeries) -> tuple:
    return (0, int(series.number), series.uid) if series.number.lstrip("-").isdigit() else (1, 0, series.uid)


def _named(folder: Path, uid: str, entries: list[tuple[Path, object]]) -> DicomSeries:
    files = tuple(path for path, _ in entries)
    parents = {path.parent for path in files}
    home = parents.pop() if len(parents) == 1 else Path(os.path.commonpath([str(path.parent) for path in files]))
    header = entries[0][1]
    number, description = _text(header, "SeriesNumber"), _text(header, "SeriesDescription")
    base = _text(header, "PatientID") or home.name or folder.name
    name = "_".join(sanitize(part) for part in (base, number, description) if sanitize(part)) or "series"
    return DicomSeries(home, files, uid, name, number, description, _text(header, "Modality"))


def scan_study(folder: str | Path, min_slices: int = MIN_SLICES, max_axial_angle_deg: float = MAX_AXIAL_ANGLE_DEG) -> Study:
    """Sort the DICOM files under ``folder`` into series, by header alone; see the module docstring.

    Unreadable files are left out one by one, each with its reason.
    """
    folder = Path(folder)
    files = dicom_files(folder)
    pydicom = load_pydicom() if files else None
    groups: dict[str, list[tuple[Path, object]]] = defaultdict(list)
    study = Study()
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=list(HEADER_TAGS))
        except Exception as error:  # InvalidDicomError, truncated headers, bad tags
            study.skipped.append((DicomSeries(path.parent, (path,), name=sanitize(path.name)), f"not a readable DICOM file ({type(error).__name__})"))
            continue
        if str(getattr(getattr(header, "file_meta", None), "MediaStorageSOPClassUID", "")) == MEDIA_DIRECTORY:
            continue  # a DICOMDIR under another name: an index, not an image
        groups[_text(header, "SeriesInstanceUID")].append((path, header))
    named = []
    for uid, entries in groups.items():
        series = _named(folder, uid, entries)
        problem = "no SeriesInstanceUID: files cannot be grouped into a series" if not uid else ""
        problem = problem or series_problem([header for _, header in entries], min_slices, max_axial_angle_deg)
        named.append((series, problem))
    named.sort(key=lambda item: (_series_number(item[0]), item[0].name))
    seen: dict[str, int] = defaultdict(int)
    for series, problem in named:
        seen[series.name] += 1
        if seen[series.name] > 1:  # same patient, number and description: keep the outputs apart
            series = replace(series, name=f"{series.name}_{seen[series.name]}")
        if problem:
            study.skipped.append((series, problem))
        else:
            study.series.append(series)
    return study
