"""One validated case: its image opened for streaming and its mask read, checked and binarized.

Every path that reads a labelled case goes through :func:`open_case`: both training
representations (MIP and axial slices) and evaluation. The checks live here once: the mask
must be on its image's voxel grid, finite, non-empty and hold one non-zero label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainseg.data.dicom import open_image
from brainseg.data.discovery import CaseRecord
from brainseg.data.nifti import DEFAULT_MAX_VOXELS, NiftiVolume, open_nifti
from brainseg.errors import BadCaseError

MAX_LABELS_SHOWN = 8


@dataclass
class OpenedCase:
    """A case ready to represent: image header (voxels not read yet) and the binary mask, if any."""

    record: CaseRecord
    image: NiftiVolume  # a NIfTI file or a DICOM series folder (same interface)
    mask: np.ndarray | None  # bool, the image's stored voxel order
    warnings: list[str] = field(default_factory=list)


def check_same_grid(image: NiftiVolume, mask: NiftiVolume, affine_tolerance: float = 1e-3) -> None:
    """Refuse a mask that is not on its image's voxel grid.

    Raises:
        BadCaseError: the shapes differ or the affines differ by more than ``affine_tolerance`` (mm).
    """
    if image.shape != mask.shape:
        raise BadCaseError(mask.path, f"mask shape {mask.shape} differs from image shape {image.shape}")
    difference = float(np.abs(image.affine - mask.affine).max())
    if difference > affine_tolerance:
        raise BadCaseError(
            mask.path, f"mask affine differs from the image's by up to {difference:.3g} mm (tolerance {affine_tolerance:g})"
        )


def read_binary_mask(volume: NiftiVolume) -> tuple[np.ndarray, list[str]]:
    """A brain mask as bool voxels (stored order), streamed slab by slab, plus warnings.

    Rescale slope and intercept are applied first. A mask holding {0, k} for one k != 1 (0/255
    exports) is binarized with a warning.

    Raises:
        BadCaseError: empty mask, several non-zero labels, non-finite values, unreadable data.
    """
    scaled = (volume.slope, volume.intercept) != (1.0, 0.0)
    mask = np.empty(volume.shape, dtype=bool, order="F")
    labels: set[float] = set()
    for start, slab in volume.iter_slabs():
        values = volume.scale(slab) if scaled else slab
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        inside = values != 0
        # gather in memory order: slabs are Fortran-ordered, and a C-order gather is ~20x slower
        foreground = values.ravel(order="K")[inside.ravel(order="K")]
        if foreground.size and len(labels) <= MAX_LABELS_SHOWN:
            low, high = foreground.min(), foreground.max()
            labels.update({low.item(), high.item()} if low == high else np.unique(foreground)[: MAX_LABELS_SHOWN + 1].tolist())
        mask[:, :, start : start + slab.shape[2]] = inside
    if not labels:
        raise BadCaseError(volume.path, "mask is empty (no brain voxels)")
    if len(labels) > 1:
        shown = ", ".join(f"{v:g}" for v in sorted(labels)[:MAX_LABELS_SHOWN])
        raise BadCaseError(volume.path, f"mask is not binary: values {{0, {shown}}}")
    (label,) = labels
    warnings = [] if label == 1 else [f"{volume.path}: mask values are {{0, {label:g}}}; binarized (non-zero = brain)"]
    return mask, warnings


def open_case(record: CaseRecord, affine_tolerance: float = 1e-3, max_voxels: int = DEFAULT_MAX_VOXELS) -> OpenedCase:
    """Open a case's image (NIfTI or DICOM series) and read and check its mask, if it has one.

    Raises:
        BadCaseError: with a one-line reason naming the offending file.
    """
    image = open_image(record.image_path, max_voxels)
    # What reading had to fix (a DICOM series' tilt or uneven spacing, repaired NIfTI header fields)
    # travels into the run's reports, each line naming its file.
    image_warnings = [w if str(image.path) in w else f"{image.path}: {w}" for w in getattr(image, "warnings", ())]
    if record.mask_path is None:
        return OpenedCase(record, image, None, image_warnings)
    mask_volume = open_nifti(record.mask_path, max_voxels)
    check_same_grid(image, mask_volume, affine_tolerance)
    mask, warnings = read_binary_mask(mask_volume)
    return OpenedCase(record, image, mask, [*image_warnings, *mask_volume.warnings, *warnings])
