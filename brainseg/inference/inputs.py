"""What prediction runs on: NIfTI files, DICOM series and studies, dataset folders and MIP PNGs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from brainseg.data.cache import HU_OFFSET, from_png16
from brainseg.data.cases import open_case
from brainseg.data.dicom import DicomSeries
from brainseg.data.dicom_study import scan_study
from brainseg.data.discovery import (
    LAYOUTS,
    CaseRecord,
    discover_cases,
    strip_nifti_suffix,
)
from brainseg.data.projection import Projection, project_case
from brainseg.errors import BadCaseError

PNG_SUFFIX = ".png"
IMAGE_FOLDERS = {image_folder for image_folder, *_ in LAYOUTS.values()}  # lower-case names


@dataclass(frozen=True)
class InputCase:
    """One thing to predict on: a NIfTI file, a DICOM series or a MIP PNG."""

    case_id: str
    path: Path
    problem: str = ""  # why it cannot be predicted, known before reading it (a duplicate case ID)
    series: DicomSeries | None = None  # a DICOM series: its files, wherever they lie
    skipped: str = ""  # why a DICOM series is left out (a localizer, a secondary capture, ...); not a failure

    @property
    def source(self) -> Path | DicomSeries:
        """What :func:`brainseg.data.dicom.open_image` opens: the series, or the file or folder."""
        return self.series if self.series is not None else self.path

    def describe(self) -> dict:
        """The DICOM series' identity, for reports (empty for files)."""
        if self.series is None:
            return {}
        series = self.series
        return {"series_uid": series.uid, "series_number": series.number, "description": series.description,
                "modality": series.modality, "images": len(series.files)}


def find_inputs(path: str | Path, dicom: dict | None = None) -> list[InputCase]:
    """The cases under ``path``: a NIfTI file, a MIP PNG, a dataset folder (either layout; masks are
    not needed), or a folder of NIfTI files, PNGs and DICOM files, the DICOM files in nested folders
    or not (a series folder, a study, folders of studies). DICOM files are grouped into series
    (:func:`brainseg.data.dicom_study.scan_study`, options ``dicom``); the series that are not axial
    CT volumes come back with their reason in ``skipped``. Inputs that share a case ID come back with
    a ``problem``: predicting them would mix up outputs.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if path.is_file():
        stem = strip_nifti_suffix(path.name) or path.stem
        return [InputCase(stem, path)]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    try:
        discovery = discover_cases(path, require_masks=False)
    except FileNotFoundError:  # not a dataset layout: a flat folder
        discovery = None
    if discovery is not None:
        cases = [InputCase(record.case_id, record.image_path) for record in discovery.cases]
        # Discovery leaves images with a duplicate case ID out: they are failures to list, not to drop.
        for file, reason in discovery.problems.items():
            if Path(file).parent.name.lower() in IMAGE_FOLDERS:
                cases.append(InputCase(strip_nifti_suffix(Path(file).name) or Path(file).name, Path(file), reason))
        return cases
    cases = []
    for child in sorted(path.iterdir()):
        stem = strip_nifti_suffix(child.name)
        if stem is not None:
            cases.append(InputCase(stem, child))
        elif child.suffix.lower() == PNG_SUFFIX and child.is_file():
            cases.append(InputCase(child.stem, child))
    cases += dicom_inputs(path, dicom)
    counts = Counter(case.case_id for case in cases if not case.skipped)  # 'a.nii' and 'a.nii.gz' would write the same outputs
    duplicate = "duplicate case ID {!r} in the input; rename one"
    return [replace(c, problem=duplicate.format(c.case_id)) if counts[c.case_id] > 1 and not c.skipped else c for c in cases]


def dicom_inputs(folder: Path, options: dict | None = None) -> list[InputCase]:
    """The DICOM series under ``folder``: those to predict, then those left out with their reason."""
    study = scan_study(folder, **dict(options or {}))
    cases = [InputCase(series.name, series.folder, series=series) for series in study.series]
    return cases + [InputCase(series.name, series.folder, series=series, skipped=reason) for series, reason in study.skipped]


def read_mip_png(path: str | Path, hu_window: tuple[float, float]) -> Projection:
    """A MIP PNG as a :class:`Projection` in HU.

    16-bit PNGs hold HU + 32768, as the MIP cache writes them (their ``spacing`` text chunk is
    used when present). 8-bit PNGs are taken as already windowed with ``hu_window``: 0 is its low end,
    255 its high end. Without a spacing chunk the pixels are taken as square, 1 mm.

    Raises:
        BadCaseError: unreadable, not a PNG, or not single-channel.
    """
    try:
        with Image.open(path) as image:
            image.load()
            mode, pixels, text = image.mode, np.asarray(image), dict(getattr(image, "text", {}))
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as error:
        raise BadCaseError(path, f"not a readable PNG ({type(error).__name__})") from None
    if mode == "L":
        low, high = float(hu_window[0]), float(hu_window[1])
        hu = low + pixels.astype(np.float32) / 255.0 * (high - low)
    elif mode in ("I;16", "I;16B", "I"):
        hu = from_png16(pixels)
    else:
        raise BadCaseError(path, f"expected a grayscale MIP PNG (8-bit windowed or 16-bit HU+{HU_OFFSET}), got mode {mode}")
    if min(hu.shape) < 2:
        raise BadCaseError(path, f"image of shape {hu.shape} is too small")
    spacing = (1.0, 1.0)
    if "spacing" in text:
        spacing = tuple(float(value) for value in text["spacing"].split(","))
    return Projection(hu, None, spacing)


def is_windowed_png(case: InputCase) -> bool:
    """An 8-bit MIP PNG: already windowed, so its HU are not the scanner's and cannot be checked as CT."""
    if case.series is not None or case.path.suffix.lower() != PNG_SUFFIX:
        return False
    try:
        with Image.open(case.path) as image:
            return image.mode == "L"
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError):
        return False


def project_input(case: InputCase, hu_window: tuple[float, float], extra: tuple[str, ...] = ()) -> Projection:
    """The HU MIP (and ``extra`` projections) of an input case in display orientation: a NIfTI
    file, a DICOM folder, or a MIP PNG (which has no extra projections)."""
    if case.path.is_file() and case.path.suffix.lower() == PNG_SUFFIX:
        return read_mip_png(case.path, hu_window)
    return project_case(open_case(CaseRecord(case.case_id, case.source)), extra)
