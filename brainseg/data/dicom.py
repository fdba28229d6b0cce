"""A DICOM CT series folder read as the volume the NIfTI path projects (pydicom, an optional extra).

:func:`read_dicom_series` returns a :class:`DicomVolume`, a :class:`NiftiVolume` whose slabs come
from the slice files instead of one NIfTI file, so :func:`brainseg.data.projection.project_image`
projects it unchanged. Geometry comes from the tags, never from file names or their order:

* slices are sorted by their position along the slice normal
  (``ImagePositionPatient`` . (row cosine x column cosine));
* the affine is built from ``ImageOrientationPatient``, ``PixelSpacing`` and the slice step, in
  DICOM's LPS and then flipped to NIfTI's RAS;
* voxels are HU from each slice's own ``RescaleSlope``/``RescaleIntercept``, as float32;
* uneven slice spacing is resampled (linear, between neighbouring slices) to the median step, and
  gantry tilt (slice origins sheared within the slice plane) is undone by shifting each slice in
  its plane, so the volume is on an orthogonal, regular grid before anything is projected. Both
  are logged as warnings. What cannot be fixed (several series, mixed orientations or sizes,
  duplicate positions, a single slice, missing tags, pixel data that cannot be decoded) is refused
  with a one-line :class:`BadCaseError` naming the folder.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from brainseg.data.nifti import DEFAULT_MAX_VOXELS, SLAB_BYTES, NiftiVolume, open_nifti
from brainseg.errors import BadCaseError

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
POSITION_TOLERANCE_MM = 0.01  # slice positions and in-plane offsets closer than this are equal
SPACING_TOLERANCE = 0.01  # relative deviation of a slice gap from the median that counts as uneven
AIR_HU = -1024.0  # fills what a tilt correction shifts in from outside the field of view
REQUIRED_TAGS = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns")


@dataclass(frozen=True)
class SlicePlan:
    """One output slice: a linear mix of two sorted input slices, shifted in plane (pixels)."""

    lower: int
    upper: int
    weight: float  # of ``upper``
    shift_rows: float
    shift_cols: float


@dataclass(frozen=True)
class DicomSeries:
    """One series of a DICOM study: its files (anywhere under the study folder) and what names it.

    :func:`open_image` reads it like a series folder; :mod:`brainseg.data.dicom_study` finds them.
    """

    folder: Path  # the folder its files are in (their common parent)
    files: tuple[Path, ...]
    uid: str = ""  # SeriesInstanceUID
    name: str = ""  # the case ID its outputs are named by
    number: str = ""  # SeriesNumber
    description: str = ""  # SeriesDescription
    modality: str = ""

    def __str__(self) -> str:
        return str(self.folder)


@dataclass(frozen=True)
class DicomVolume(NiftiVolume):
    """A DICOM series on a regular orthogonal grid; storage axes (column, row, slice), HU float32."""

    files: tuple[Path, ...] = ()  # sorted by position along the slice normal
    plan: tuple[SlicePlan, ...] = ()
    warnings: tuple[str, ...] = ()

    def iter_slabs(self, slab_bytes: int = SLAB_BYTES) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_slice, slab)`` of HU float32, reading each slice file once or twice at most."""
        nx, ny, nz = self.shape
        per_slab = max(1, slab_bytes // (nx * ny * 4))
        recent: dict[int, np.ndarray] = {}  # the last input slices read: a resampled slice needs two

        def input_slice(index: int) -> np.ndarray:
            if index not in recent:
                if len(recent) >= 2:
                    recent.pop(min(recent))
                recent[index] = _read_hu(self.files[index]).T  # (rows, cols) -> (cols, rows) = (x, y)
            return recent[index]

        for start in range(0, nz, per_slab):
            slab = np.empty((nx, ny, min(per_slab, nz - start)), np.float32)
            for offset, step in enumerate(self.plan[start : start + slab.shape[2]]):
                values = input_slice(step.lower)
                if step.weight:
                    values = (1 - step.weight) * values + step.weight * input_slice(step.upper)
                if step.shift_rows or step.shift_cols:
                    values = ndimage.shift(values, (step.shift_cols, step.shift_rows), order=1, cval=AIR_HU)
                slab[:, :, offset] = values
            yield start, slab


def load_pydicom():
    """The pydicom module, or an ImportError that says how to install it."""
    try:
        import pydicom
    except ImportError:  # an optional extra: say how to get it
        raise ImportError("reading DICOM needs pydicom: pip install 'brainseg[dicom]' (or pip install pydicom)") from None
    return pydicom


def _read_hu(path: Path) -> np.ndarray:
    """One slice's pixels in HU, float32, (rows, cols)."""
    pydicom = load_pydicom()
    try:
        dataset = pydicom.dcmread(path)
        pixels = dataset.pixel_array
    except Exception as error:  # pydicom raises many types for undecodable pixel data
        raise BadCaseError(path, f"cannot decode pixel data ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    slope = float(getattr(dataset, "RescaleSlope", 1.0) or 1.0)
    intercept = float(getattr(dataset, "RescaleIntercept", 0.0) or 0.0)
    return pixels.astype(np.float32) * np.float32(slope) + np.float32(intercept)


def is_dicom_folder(path: str | Path) -> bool:
    """True if ``path`` is a folder holding at least one DICOM file (``DICM`` magic or ``.dcm``)."""
    path = Path(path)
    return path.is_dir() and any(looks_like_dicom(file) for file in path.iterdir())


def looks_like_dicom(file: Path) -> bool:
    """A ``.dcm`` file, or a file with the DICOM Part 10 preamble (``DICM`` at byte 128)."""
    if not file.is_file() or file.name.startswith("."):
        return False
    if file.suffix.lower() == ".dcm":
        return True
    with open(file, "rb") as stream:
        return stream.read(132)[128:] == b"DICM"


def _headers(folder: Path, files: tuple[Path, ...] | None = None) -> list[tuple[Path, object]]:
    """(file, header without pixels) for every DICOM image in ``folder`` (or of ``files``).

    Other files, and DICOM objects that are not images (DICOMDIR, reports: no ``Rows``), are skipped.
    """
    pydicom = load_pydicom()
    headers = []
    for file in sorted(folder.iterdir()) if files is None else files:
        if not looks_like_dicom(file):
            continue
        try:
            header = pydicom.dcmread(file, stop_before_pixels=True)
        except Exception as error:  # InvalidDicomError, truncated headers, bad tags
            raise BadCaseError(file, f"not a readable DICOM file ({type(error).__name__})") from None
        if getattr(header, "Rows", None) is None:
            log.info("%s: not a DICOM image; skipped", file)
            continue
        headers.append((file, header))
    if not headers:
        raise BadCaseError(folder, "no DICOM images in the folder")
    return headers


def _check_series(folder: Path, headers: list[tuple[Path, object]]) -> None:
    """Refuse what no resampling can fix: several series, non-CT, missing tags, mixed geometry."""
    series = {str(getattr(header, "SeriesInstanceUID", "")) for _, header in headers}
    if len(series) > 1:
        raise BadCaseError(folder, f"folder holds {len(series)} DICOM series; put each series in its own folder")
    modality = str(getattr(headers[0][1], "Modality", "CT"))
    if modality != "CT":
        raise BadCaseError(folder, f"modality is {modality}, not CT (HU are needed)")
    for file, header in headers:
        missing = [tag for tag in REQUIRED_TAGS if getattr(header, tag, None) in (None, "")]
        if missing:
            raise BadCaseError(file, f"missing DICOM tag(s) {', '.join(missing)}")
    first = headers[0][1]
    for file, header in headers[1:]:
        if (header.Rows, header.Columns) != (first.Rows, first.Columns):
            raise BadCaseError(file, f"slice size {header.Rows}x{header.Columns} differs from {first.Rows}x{first.Columns}")
        if not np.allclose(np.array(header.PixelSpacing, float), np.array(first.PixelSpacing, float), atol=1e-4):
            raise BadCaseError(file, "pixel spacing differs between slices")
        if not np.allclose(np.array(header.ImageOrientationPatient, float), np.array(first.ImageOrientationPatient, float), atol=1e-4):
            raise BadCaseError(file, "image orientation differs between slices")
    if len(headers) < 2:
        raise BadCaseError(folder, "a single slice is not a volume (need at least 2 slices)")


def _plan_slices(positions: np.ndarray, in_plane: np.ndarray, spacing: tuple[float, float]) -> tuple[tuple[SlicePlan, ...], float, list[str]]:
    """Regular output slices over the sorted input positions (mm), and the in-plane shifts that undo tilt.

    ``in_plane`` holds each slice origin's offset from the first along (row cosine, column cosine), mm.
    """
    gaps = np.diff(positions)
    step = float(np.median(gaps))
    warnings = []
    uneven = bool(np.abs(gaps - step).max() > max(POSITION_TOLERANCE_MM, SPACING_TOLERANCE * step))
    if uneven:  # the step nearest the median that puts output slices on both end slices
        extent = positions[-1] - positions[0]
        intervals = max(1, int(round(extent / step)))
        step = float(extent / intervals)
        targets = positions[0] + step * np.arange(intervals + 1)
        warnings.append(f"uneven slice spacing (gaps {gaps.min():.3g}-{gaps.max():.3g} mm) resampled to {step:.3g} mm")
    else:
        targets = positions
    tilted = bool(np.abs(in_plane).max() > POSITION_TOLERANCE_MM)
    if tilted:
        slope = np.polyfit(positions - positions[0], in_plane, 1)[0]  # mm in plane per mm along the normal
        degrees = float(np.degrees(np.arctan(np.hypot(*slope))))
        warnings.append(f"gantry tilt of {degrees:.3g} degrees corrected by shifting each slice in its plane")
    plan = []
    for target in targets:
        upper = int(np.clip(np.searchsorted(positions, target - POSITION_TOLERANCE_MM), 0, len(positions) - 1))
        lower = max(upper - 1, 0) if positions[upper] - target > POSITION_TOLERANCE_MM else upper
        span = positions[upper] - positions[lower]
        weight = float((target - positions[lower]) / span) if span > 0 else 0.0
        offset = (1 - weight) * in_plane[lower] + weight * in_plane[upper] if tilted else np.zeros(2)
        # A slice whose origin lies d mm further along the row cosine holds, at column i, what the
        # regular grid has at column i + d/spacing: shift it by +d/spacing to put it there.
        plan.append(SlicePlan(lower, upper, weight, float(offset[1] / spacing[0]), float(offset[0] / spacing[1])))
    return tuple(plan), step, warnings


def read_dicom_series(folder: str | Path, max_voxels: int = DEFAULT_MAX_VOXELS, files: tuple[Path, ...] | None = None) -> DicomVolume:
    """Open a folder holding one CT series (or the ``files`` of one series of a study); headers are
    read now, pixels when the volume is streamed.

    Raises:
        BadCaseError: one line naming the folder (or file) and what cannot be used.
    """
    folder = Path(folder)
    headers = _headers(folder, files)
    _check_series(folder, headers)
    first = headers[0][1]
    orientation = np.array(first.ImageOrientationPatient, float)
    row_cosine, column_cosine = orientation[:3], orientation[3:]
    normal = np.cross(row_cosine, column_cosine)
    origins = np.array([np.array(header.ImagePositionPatient, float) for _, header in headers])
    positions = origins @ normal
    order = np.argsort(positions, kind="stable")
    positions, origins = positions[order], origins[order]
    files = tuple(headers[i][0] for i in order)
    if np.diff(positions).min() < POSITION_TOLERANCE_MM:
        raise BadCaseError(folder, "two slices share a position (duplicate or mixed acquisitions)")
    offsets = origins - origins[0] - np.outer(positions - positions[0], normal)
    in_plane = np.stack([offsets @ row_cosine, offsets @ column_cosine], axis=1)
    spacing = (float(first.PixelSpacing[0]), float(first.PixelSpacing[1]))  # (between rows, between columns)
    plan, step, warnings = _plan_slices(positions, in_plane, spacing)
    shape = (int(first.Columns), int(first.Rows), len(plan))
    if int(np.prod(shape, dtype=np.int64)) > max_voxels:
        raise BadCaseError(folder, f"series is {shape} voxels, over the limit of {max_voxels:,}")
    lps = np.eye(4)
    lps[:3, 0] = row_cosine * spacing[1]  # storage axis 0 runs along a row: column index
    lps[:3, 1] = column_cosine * spacing[0]
    lps[:3, 2] = normal * step
    lps[:3, 3] = origins[0]
    for message in warnings:
        log.warning("%s: %s", folder, message)
    return DicomVolume(folder, shape, LPS_TO_RAS @ lps, np.dtype(np.float32), 1.0, 0.0, 0, files=files, plan=plan, warnings=tuple(warnings))


def open_image(path: str | Path | DicomSeries, max_voxels: int = DEFAULT_MAX_VOXELS) -> NiftiVolume:
    """A CT image for projection: a DICOM series folder, a series of a study, or a NIfTI file."""
    if isinstance(path, DicomSeries):
        return read_dicom_series(path.folder, max_voxels, path.files)
    path = Path(path)
    if path.is_dir():
        return read_dicom_series(path, max_voxels)
    return open_nifti(path, max_voxels)
