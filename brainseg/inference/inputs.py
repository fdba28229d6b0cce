"""What prediction runs on: NIfTI files, DICOM series folders, dataset folders and MIP PNGs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from brainseg.data.cases import open_case
from brainseg.data.dicom import is_dicom_folder
from brainseg.data.discovery import (
    LAYOUTS,
    CaseRecord,
    discover_cases,
    strip_nifti_suffix,
)
from brainseg.data.projection import HU_OFFSET, Projection, project_case
from brainseg.errors import BadCaseError

PNG_SUFFIX = ".png"
IMAGE_FOLDERS = {image_folder for image_folder, *_ in LAYOUTS.values()}  # lower-case names


@dataclass(frozen=True)
class InputCase:
    """One thing to predict on: a NIfTI file, a DICOM series folder or a MIP PNG."""

    case_id: str
    path: Path
    problem: str = ""  # why it cannot be predicted, known before reading it (a duplicate case ID)


def find_inputs(path: str | Path) -> list[InputCase]:
    """The cases under ``path``: a NIfTI file, a MIP PNG, a DICOM series folder, a dataset folder
    (either layout; masks are not needed), or a flat folder of NIfTI files, PNGs and series folders.
    Inputs that share a case ID are returned with a ``problem``: predicting them would mix up outputs.

    Raises:
        FileNotFoundError: ``path`` does not exist.
    """
    path = Path(path)
    if path.is_file():
        stem = strip_nifti_suffix(path.name) or path.stem
        return [InputCase(stem, path)]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if is_dicom_folder(path):
        return [InputCase(path.name, path)]
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
        elif child.is_dir() and is_dicom_folder(child):
            cases.append(InputCase(child.name, child))
    counts = Counter(case.case_id for case in cases)  # 'a.nii' and 'a.nii.gz' would write the same outputs
    duplicate = "duplicate case ID {!r} in the input; rename one"
    return [InputCase(c.case_id, c.path, duplicate.format(c.case_id)) if counts[c.case_id] > 1 else c for c in cases]


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
        hu = pixels.astype(np.float32) - HU_OFFSET
    else:
        raise BadCaseError(path, f"expected a grayscale MIP PNG (8-bit windowed or 16-bit HU+{HU_OFFSET}), got mode {mode}")
    if min(hu.shape) < 2:
        raise BadCaseError(path, f"image of shape {hu.shape} is too small")
    spacing = (1.0, 1.0)
    if "spacing" in text:
        spacing = tuple(float(value) for value in text["spacing"].split(","))
    return Projection(hu, None, spacing)


def project_input(case: InputCase, hu_window: tuple[float, float]) -> Projection:
    """The HU MIP of an input case (NIfTI, DICOM folder or PNG), in display orientation."""
    if case.path.is_file() and case.path.suffix.lower() == PNG_SUFFIX:
        return read_mip_png(case.path, hu_window)
    return project_case(open_case(CaseRecord(case.case_id, case.path)))
