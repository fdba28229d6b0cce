"""Scanner geometry of a synthetic case: matrix, spacing, field of view, pose, tilt, orientation.

Volumes are generated in *acquisition order*, axes (i, j, k) pointing to the patient's left,
posterior and superior as a DICOM axial series does, and reoriented to the storage
orientation only at the end. Anatomy lives in a head-centred frame (RAS mm, origin at the
centre of the cranial cavity); the pose maps that frame into scanner world coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np

from .config import SyntheticConfig

ACQUISITION_AXCODES = "LPS"

# Head-frame heights (mm) of landmarks the field of view is placed by.
VERTEX_Z = 76.0  # top of the scalp for head_scale 1
SKULL_BASE_Z = -60.0
AORTIC_ARCH_Z = -270.0


@dataclass(frozen=True)
class Acquisition:
    """Where the voxels of one case sit, in the scanner and relative to the head."""

    shape: tuple[int, int, int]  # acquisition order (i, j, k)
    affine: np.ndarray  # acquisition order voxel -> world RAS mm
    head_to_world: np.ndarray  # 4x4 pose of the head frame in the scanner
    slice_thickness_mm: float
    fov_kind: str
    storage_axcodes: str
    rotation_deg: tuple[float, float, float]
    translation_mm: tuple[float, float, float]
    gantry_tilt_deg: float

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel spacing along i, j, k in mm (k: distance between slices along z)."""
        return (float(-self.affine[0, 0]), float(-self.affine[1, 1]), float(self.affine[2, 2]))

    @property
    def voxel_to_head(self) -> np.ndarray:
        """4x4 map from acquisition voxel indices to head-frame mm."""
        return np.linalg.inv(self.head_to_world) @ self.affine


def rotation_matrix(angles_deg) -> np.ndarray:
    """Rotation about x (nodding), then y (tilting to a shoulder), then z (turning)."""
    ax, ay, az = np.deg2rad(angles_deg)
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _uniform(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _in_plane_grid(rng: np.random.Generator, config: SyntheticConfig) -> tuple[int, float]:
    """Matrix size and pixel spacing whose product stays inside the reconstruction FOV range."""
    lo, hi = config.shape_in_plane
    matrix = int(np.clip(8 * round(rng.integers(lo, hi + 1) / 8), lo, hi))
    fov_lo, fov_hi = config.reconstruction_fov_mm
    sp_lo = max(config.spacing_in_plane_mm[0], fov_lo / matrix)
    sp_hi = min(config.spacing_in_plane_mm[1], fov_hi / matrix)
    if sp_lo > sp_hi:  # ranges disagree for this matrix: honour the FOV
        sp_lo, sp_hi = fov_lo / matrix, fov_hi / matrix
    return matrix, _uniform(rng, (sp_lo, sp_hi))


def _z_range(rng: np.random.Generator, fov_kind: str, head_scale: float) -> tuple[float, float]:
    """Head-frame z interval covered by the slices for a field-of-view kind."""
    vertex = VERTEX_Z * head_scale
    if fov_kind == "head":
        return _uniform(rng, (-115.0, -80.0)), vertex + _uniform(rng, (3.0, 20.0))
    if fov_kind == "head_neck":
        return AORTIC_ARCH_Z + _uniform(rng, (-20.0, 40.0)), vertex + _uniform(rng, (3.0, 20.0))
    if fov_kind == "truncated_vertex":
        return _uniform(rng, (-115.0, -70.0)), vertex - _uniform(rng, (12.0, 40.0))
    raise ValueError(f"unknown field-of-view kind {fov_kind!r}")


def sample_acquisition(rng: np.random.Generator, config: SyntheticConfig, head_height: float) -> Acquisition:
    """Draw matrix, spacing, slices, pose, gantry tilt and storage orientation for one case."""
    matrix, pixel = _in_plane_grid(rng, config)
    names, probs = zip(*config.fov_kinds)
    fov_kind = str(rng.choice(names, p=np.asarray(probs) / np.sum(probs)))
    z_lo, z_hi = _z_range(rng, fov_kind, head_height)
    extent = z_hi - z_lo
    n_lo, n_hi = config.slice_count
    n_slices = int(np.clip(round(extent / _uniform(rng, config.slice_spacing_mm)), n_lo, n_hi))
    dz = extent / n_slices
    thickness = dz * _uniform(rng, config.slice_thickness_ratio)

    angles = tuple(_uniform(rng, (-m, m)) for m in config.rotation_deg)
    offset = tuple(_uniform(rng, (-m, m)) for m in config.translation_mm)
    tilt = _uniform(rng, (-config.gantry_tilt_deg, config.gantry_tilt_deg)) if rng.random() < config.gantry_tilt_prob else 0.0
    axcodes = str(rng.choice(config.orientations))

    # Scanner world: isocentre on the table axis, head somewhere along the table.
    table_y, table_z = _uniform(rng, (-40.0, 40.0)), _uniform(rng, (-500.0, 200.0))
    head_to_world = np.eye(4)
    head_to_world[:3, :3] = rotation_matrix(angles)
    head_to_world[:3, 3] = (offset[0], table_y + offset[1], table_z + offset[2])

    shear = np.tan(np.deg2rad(tilt))
    affine = np.eye(4)
    affine[:3, :3] = [[-pixel, 0.0, 0.0], [0.0, -pixel, dz * shear], [0.0, 0.0, dz]]
    centre = (matrix - 1) / 2
    affine[:3, 3] = (
        centre * pixel,
        table_y + centre * pixel - (n_slices - 1) / 2 * dz * shear,
        table_z + z_lo + dz / 2,
    )
    return Acquisition(
        shape=(matrix, matrix, n_slices),
        affine=affine,
        head_to_world=head_to_world,
        slice_thickness_mm=thickness,
        fov_kind=fov_kind,
        storage_axcodes=axcodes,
        rotation_deg=angles,
        translation_mm=offset,
        gantry_tilt_deg=tilt,
    )


def to_storage(volume: np.ndarray, acquisition_affine: np.ndarray, axcodes: str) -> tuple[np.ndarray, np.ndarray]:
    """Flip/permute an acquisition-order volume to ``axcodes``; returns (volume, affine)."""
    transform = nib.orientations.ornt_transform(
        nib.orientations.axcodes2ornt(ACQUISITION_AXCODES), nib.orientations.axcodes2ornt(axcodes)
    )
    # A view, not a copy: NIfTI is written in Fortran order, which the flipped/transposed view often already is.
    stored = nib.orientations.apply_orientation(volume, transform)
    affine = acquisition_affine @ nib.orientations.inv_ornt_aff(transform, volume.shape)
    return stored, affine
