"""Maximum intensity projection along the patient's superior-inferior axis, streamed from disk.

Each volume is projected along the storage axis that nibabel's orientation maps to S, whatever
the file's storage order (RAS, LPS, permuted axes), and the 2-D result is put in one display
orientation: radiological axial view, anterior at the top and the patient's right on the left.
The same volume stored in any orientation gives the same MIP.

The image MIP is the maximum of the stored values (the minimum when the rescale slope is
negative), scaled to HU afterwards. The mask projection is the union of the mask along the
axis and stays {0, 1}.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainseg.data.dicom import open_image
from brainseg.data.discovery import CaseRecord
from brainseg.data.nifti import DEFAULT_MAX_VOXELS, NiftiVolume, open_nifti
from brainseg.errors import BadCaseError

SUPERIOR_AXIS = 2  # index of S in RAS


@dataclass
class Projection:
    """A case's MIPs in display orientation, with the pixel size they came with."""

    image: np.ndarray  # float32 HU, (rows, cols)
    mask: np.ndarray | None  # uint8 {0, 1}, same shape
    spacing: tuple[float, float]  # mm per pixel along (rows, cols)
    warnings: list[str] = field(default_factory=list)


def ras_to_display(ras: np.ndarray) -> np.ndarray:
    """(R, A)-ordered 2-D array -> radiological view: rows anterior->posterior, cols right->left."""
    return np.ascontiguousarray(ras[::-1, ::-1].T)


def display_to_ras(display: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ras_to_display`."""
    return np.ascontiguousarray(display.T[::-1, ::-1])


def _projection_axis(volume: NiftiVolume) -> int:
    """The storage axis along the patient's superior-inferior direction."""
    return int(np.flatnonzero(volume.orientation[:, 0] == SUPERIOR_AXIS)[0])


def _to_display(volume: NiftiVolume, projected: np.ndarray, axis: int) -> tuple[np.ndarray, tuple[float, float]]:
    """Put a 2-D projection (remaining storage axes, in order) into display orientation."""
    kept = [a for a in range(3) if a != axis]
    ras_axes = volume.orientation[kept, 0].astype(int)
    flips = volume.orientation[kept, 1]
    for position, flip in enumerate(flips):
        if flip < 0:
            projected = np.flip(projected, axis=position)
    spacing = volume.spacing[kept]
    if ras_axes[0] > ras_axes[1]:  # stored (A, R): transpose to (R, A)
        projected, spacing = projected.T, spacing[::-1]
    return ras_to_display(projected), (float(spacing[1]), float(spacing[0]))


def _reduce_slabs(volume: NiftiVolume, axis: int, reduce_slab, combine) -> np.ndarray:
    """Stream ``volume`` and reduce it along storage ``axis`` with ``reduce_slab(slab, axis)``."""
    nx, ny, nz = volume.shape
    result = None
    for start, slab in volume.iter_slabs():
        part = reduce_slab(slab, axis)
        if axis == 2:
            result = part if result is None else combine(result, part)
        else:
            if result is None:
                result = np.empty((ny if axis == 0 else nx, nz), dtype=part.dtype)
            result[:, start : start + slab.shape[2]] = part
    return result


def project_image(volume: NiftiVolume) -> tuple[np.ndarray, tuple[float, float]]:
    """HU MIP of a CT volume, in display orientation, with its pixel spacing.

    Raises:
        BadCaseError: NaN or Inf voxels, or unreadable data.
    """
    axis = _projection_axis(volume)
    take_max = volume.slope > 0
    is_float = volume.dtype.kind == "f"

    def reduce_slab(slab: np.ndarray, ax: int) -> np.ndarray:
        if is_float and not np.isfinite(slab).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        return slab.max(axis=ax) if take_max else slab.min(axis=ax)

    projected = _reduce_slabs(volume, axis, reduce_slab, np.maximum if take_max else np.minimum)
    return _to_display(volume, volume.scale(projected), axis)


def project_mask(volume: NiftiVolume) -> tuple[np.ndarray, list[str]]:
    """Union of a brain mask along S, as uint8 {0, 1} in display orientation, plus warnings.

    A mask holding {0, k} for one k != 1 (e.g. 0/255 exports) is binarized with a warning.

    Raises:
        BadCaseError: empty mask, several non-zero labels, non-finite values, unreadable data.
    """
    axis = _projection_axis(volume)
    scaled = (volume.slope, volume.intercept) != (1.0, 0.0)
    labels: set[float] = set()

    def reduce_slab(slab: np.ndarray, ax: int) -> np.ndarray:
        values = volume.scale(slab) if scaled else slab
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise BadCaseError(volume.path, "contains NaN or Inf voxels")
        inside = values != 0
        # gather in memory order: slabs are Fortran-ordered, and a C-order gather is ~20x slower
        foreground = values.ravel(order="K")[inside.ravel(order="K")]
        if foreground.size and len(labels) <= 8:
            low, high = foreground.min(), foreground.max()
            labels.update({low.item(), high.item()} if low == high else np.unique(foreground)[:9].tolist())
        return inside.any(axis=ax)

    union = _reduce_slabs(volume, axis, reduce_slab, np.logical_or)
    if not labels:
        raise BadCaseError(volume.path, "mask is empty (no brain voxels)")
    if len(labels) > 1:
        shown = ", ".join(f"{v:g}" for v in sorted(labels)[:8])
        raise BadCaseError(volume.path, f"mask is not binary: values {{0, {shown}}}")
    warnings = []
    (label,) = labels
    if label != 1:
        warnings.append(f"{volume.path}: mask values are {{0, {label:g}}}; binarized (non-zero = brain)")
    mask, _ = _to_display(volume, union.astype(np.uint8), axis)
    return mask, warnings


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


def project_case(
    record: CaseRecord, affine_tolerance: float = 1e-3, max_voxels: int = DEFAULT_MAX_VOXELS
) -> Projection:
    """Validate a case and project its image (and mask, if it has one) along S.

    Raises:
        BadCaseError: with a one-line reason naming the offending file.
    """
    image = open_image(record.image_path, max_voxels)  # a NIfTI file or a DICOM series folder
    mask = None
    if record.mask_path is not None:
        mask = open_nifti(record.mask_path, max_voxels)
        check_same_grid(image, mask, affine_tolerance)
    image_mip, spacing = project_image(image)
    if mask is None:
        return Projection(image_mip, None, spacing)
    mask_mip, warnings = project_mask(mask)
    return Projection(image_mip, mask_mip, spacing, warnings)
