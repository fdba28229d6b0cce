"""Skull-free projections of a CTA: the intracranial arteries without bone in front of them.

A MIP of the raw CTA is dominated by the skull. With a 3-D brain mask, everything outside
the (slightly eroded) mask is set to air before projecting, so the MIP shows what lies inside
the cranial cavity: the circle of Willis and its branches, where an occlusion is looked for.

* ``<CaseID>_brain_mip.png``: axial MIP of the masked volume along S, vessel window, in the
  radiological display orientation of :mod:`brainseg.data.projection`.
* thick-slab axial MIPs (``slab_mm`` thick, neighbours overlapping by ``overlap_mm``), as a
  PNG stack ``<CaseID>_slabs/slab_###.png`` (inferior to superior) and a NIfTI
  ``<CaseID>_slabs.nii.gz`` whose affine puts each slab at its centre, in scanner mm.

The margin erosion removes the partial-volume rim of the inner table, which would otherwise
draw a bright ring as bright as contrast-filled vessels.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.orientations import inv_ornt_aff
from PIL import Image
from scipy import ndimage

from brainseg.data.axial import plan_axial_grid, to_ras
from brainseg.data.dicom import open_image
from brainseg.data.nifti import open_nifti
from brainseg.data.normalization import window_hu
from brainseg.data.projection import ras_to_display
from brainseg.inference.postprocessing import ellipsoid_ball

VESSEL_WINDOW = (0.0, 600.0)  # HU: brain (~40) dark, contrast-filled arteries (150-500) bright
AIR_HU = -1024


def _mask_array(mask) -> np.ndarray:
    """A mask given as a path, a nibabel image or an array, as a boolean array in storage order."""
    if isinstance(mask, (str, Path)):
        volume = open_nifti(mask)
        return volume.read() != 0
    if isinstance(mask, nib.spatialimages.SpatialImage):
        return np.asarray(mask.dataobj) != 0
    return np.asarray(mask) != 0


def masked_brain(image_path: str | Path, mask, margin_mm: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CTA in HU (float32) with everything outside the eroded mask set to air, RAS voxel order.

    Returns:
        (hu, spacing along R, A, S in mm, the 4x4 affine of the RAS-ordered voxels).

    Raises:
        BadCaseError: unreadable image; ValueError: a mask of another shape.
    """
    volume = open_image(image_path)  # a NIfTI file or a DICOM series folder
    inside = _mask_array(mask)
    if inside.shape != volume.shape:
        raise ValueError(f"mask shape {inside.shape} differs from image shape {volume.shape} ({image_path})")
    grid = plan_axial_grid(volume.affine, volume.shape, None)
    inside = np.ascontiguousarray(to_ras(inside, grid))
    if margin_mm > 0 and inside.any():
        box = ndimage.find_objects(inside.astype(np.uint8))[0]
        inside[box] = ndimage.binary_erosion(inside[box], structure=ellipsoid_ball(margin_mm, grid.spacing))
    hu = volume.scale(to_ras(volume.read(), grid))
    hu[~inside] = AIR_HU
    affine = volume.affine @ inv_ornt_aff(grid.orientation, volume.shape)
    return hu, np.asarray(grid.spacing), affine


def to_png(hu: np.ndarray, vessel_window=VESSEL_WINDOW) -> np.ndarray:
    """A (R, A) HU image -> uint8 picture in display orientation, in the vessel window."""
    return (window_hu(ras_to_display(hu), vessel_window) * 255).round().astype(np.uint8)


def brain_mip(hu: np.ndarray) -> np.ndarray:
    """Axial MIP (R, A) of a masked (R, A, S) volume."""
    return hu.max(axis=2)


def slab_mips(hu: np.ndarray, affine: np.ndarray, slab_mm: float, overlap_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Thick-slab axial MIPs covering the brain, inferior to superior, and their NIfTI affine.

    Returns:
        (slabs (R, A, n) float32 HU, 4x4 affine placing slab ``k`` at its centre).
    """
    if not 0 <= overlap_mm < slab_mm:
        raise ValueError(f"need 0 <= overlap_mm < slab_mm, got slab_mm={slab_mm}, overlap_mm={overlap_mm}")
    dz = float(np.linalg.norm(affine[:3, 2]))
    thick = max(1, int(round(slab_mm / dz)))
    step = max(1, int(round((slab_mm - overlap_mm) / dz)))
    brain = np.flatnonzero((hu > AIR_HU).any(axis=(0, 1)))
    first, last = (int(brain[0]), int(brain[-1])) if len(brain) else (0, hu.shape[2] - 1)
    starts = list(range(first, max(first + 1, last - thick + 1 + step), step))  # the last slab reaches `last`
    slabs = np.stack([hu[:, :, s : s + thick].max(axis=2) for s in starts], axis=2)
    slab_affine = affine.copy()
    slab_affine[:3, 2] = affine[:3, 2] * step
    slab_affine[:3, 3] = affine[:3, :3] @ [0, 0, starts[0] + (thick - 1) / 2] + affine[:3, 3]
    return slabs, slab_affine


def write_vessel_views(
    case_id: str,
    image_path: str | Path,
    mask,
    output_dir: str | Path,
    vessel_window=VESSEL_WINDOW,
    margin_mm: float = 1.0,
    slab_mm: float | None = None,
    overlap_mm: float = 0.0,
) -> list[Path]:
    """Write ``<CaseID>_brain_mip.png`` and, with ``slab_mm``, the slab PNG stack and NIfTI.

    Args:
        mask: the brain mask on the image's grid (path, nibabel image or array).
        vessel_window: HU window of the pictures. Defaults to (0, 600).
        margin_mm: erosion of the mask before masking, mm. Defaults to 1.
        slab_mm, overlap_mm: thickness of slab MIPs and overlap of neighbours; ``None``: no slabs.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    hu, _, affine = masked_brain(image_path, mask, margin_mm)
    written = [output_dir / f"{case_id}_brain_mip.png"]
    Image.fromarray(to_png(brain_mip(hu), vessel_window)).save(written[0])
    if slab_mm:
        slabs, slab_affine = slab_mips(hu, affine, slab_mm, overlap_mm)
        folder = output_dir / f"{case_id}_slabs"
        folder.mkdir(exist_ok=True)
        for k in range(slabs.shape[2]):
            path = folder / f"slab_{k:03d}.png"
            Image.fromarray(to_png(slabs[:, :, k], vessel_window)).save(path)
            written.append(path)
        image = nib.Nifti1Image(np.clip(np.round(slabs), -32768, 32767).astype(np.int16), slab_affine)
        image.set_qform(slab_affine, code=1)
        image.set_sform(slab_affine, code=1)
        written.append(output_dir / f"{case_id}_slabs.nii.gz")
        nib.save(image, written[-1])
    return written
