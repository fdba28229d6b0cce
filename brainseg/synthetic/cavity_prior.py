"""A real cranial cavity for synthetic heads: the MNI ICBM152 2009 brain, shipped as a small mask.

The analytic cavity (an ellipsoid cut by an analytic cranial floor) is flatter than a real
brain, and its skull base is smoother. ``cavity_prior.npz`` holds the MNI152 2009 brain
(gray + white matter >= 0.5, holes filled, medulla cut at the foramen magnum, cisterns and
fissures closed) grown by the subarachnoid space and smoothed, moved into the anatomy frame
(length 168 mm like the analytic cavity, its fossae on average at the analytic ones' height)
and stored as a bit mask on a 1.5 mm grid: 15 KB. ``scripts/make_cavity_prior.py`` makes it from the atlas; copyright notice in
docs/synthetic_data.md.

At run time the mask becomes a smooth signed distance field (``distance``) and a floor
height map (``floor``), which ``head.Cranium`` uses in place of its analytic ellipsoid and
floor when a case draws the atlas cavity.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

F = np.float32
PRIOR_FILE = Path(__file__).with_name("cavity_prior.npz")
# SyntheticConfig.head_height_ratio is relative to the analytic brain, which is flatter than a
# real one (scripts/measure_atlas.py: 1.18-1.31x by fossa). An atlas case is stretched by
# head_height_ratio / this: the middle of wide()'s range (1-1.3) gives it its own proportions.
ATLAS_HEIGHT_RATIO = 1.15
SCALP_OVER_CAVITY_MM = 14.0  # vertex of the scalp above the cavity's top, as in the analytic head (76 - 62)
FLOOR_REACH_MM = 12.0  # the skull base runs this far under the cavity's edges


@dataclass(frozen=True)
class CavityPrior:
    """The atlas cavity in the anatomy frame: signed distance (mm, < 0 inside) on a regular grid."""

    sdf: np.ndarray  # (nx, ny, nz) float32
    floor_z: np.ndarray  # (nx, ny) float32: the cranial floor's height over each column (floor_heights)
    origin: np.ndarray  # anatomy-frame mm of voxel (0, 0, 0)
    spacing: float
    foramen: tuple[float, float]  # (x, y) of the foramen magnum's centre
    box: tuple[np.ndarray, np.ndarray]  # the cavity's bounding box (lo, hi), mm

    def _index(self, coords) -> np.ndarray:
        return np.stack([(np.asarray(c, F) - F(o)) / F(self.spacing) for c, o in zip(coords, self.origin)])

    def distance(self, x, y, z) -> np.ndarray:
        """Signed distance to the cavity (mm, < 0 inside); beyond the grid, the border's value plus the way out."""
        from scipy.ndimage import map_coordinates

        x, y, z = np.broadcast_arrays(x, y, z)
        index = self._index((x, y, z))
        top = np.array(self.sdf.shape, F)[:, None] - 1
        flat = index.reshape(3, -1)
        clipped = np.clip(flat, 0, top)
        out = map_coordinates(self.sdf, clipped, order=1, mode="nearest").astype(F)
        out += np.sqrt(((flat - clipped) ** 2).sum(axis=0)) * F(self.spacing)
        return out.reshape(x.shape)

    def floor(self, x, y) -> np.ndarray:
        """Height (mm) of the cranial floor under each (x, y) (see :func:`floor_heights`)."""
        from scipy.ndimage import map_coordinates

        x, y = np.broadcast_arrays(x, y)
        index = self._index((x, y))
        top = np.array(self.floor_z.shape, F)[:, None] - 1
        clipped = np.clip(index.reshape(2, -1), 0, top)
        return map_coordinates(self.floor_z, clipped, order=1, mode="nearest").astype(F).reshape(x.shape)


def signed_distance(inside: np.ndarray, spacing: float) -> np.ndarray:
    """Smooth signed distance (mm, < 0 inside) of a bit mask: the surface halfway between voxels."""
    from scipy import ndimage

    outside = ndimage.distance_transform_edt(~inside) - 0.5
    within = ndimage.distance_transform_edt(inside) - 0.5
    sdf = np.where(inside, -within, outside) * spacing
    return ndimage.gaussian_filter(sdf, 1.0).astype(F)  # takes the voxel steps off the surface


def floor_heights(inside: np.ndarray, origin: np.ndarray, spacing: float, reach_mm: float = FLOOR_REACH_MM) -> np.ndarray:
    """Per (x, y) column, the cranial floor's height: the lowest cavity point within ``reach_mm``.

    Taking the lowest point nearby, not the column's own, lets the skull wrap down around the
    cavity's edges (behind the occipital pole, over the cerebellum), as the analytic floor does
    by running on under the vault. Columns farther out take their nearest column's height.
    """
    from scipy import ndimage

    any_inside = inside.any(axis=2)
    lowest = np.where(any_inside, np.argmax(inside, axis=2), np.inf)
    r = int(round(reach_mm / spacing))
    i, j = np.ogrid[-r : r + 1, -r : r + 1]
    lowest = ndimage.grey_erosion(lowest, footprint=i * i + j * j <= r * r, mode="nearest")
    _, (ii, jj) = ndimage.distance_transform_edt(~np.isfinite(lowest), return_indices=True)
    return (F(origin[2]) + lowest[ii, jj].astype(F) * F(spacing) - F(spacing / 2)).astype(F)


@lru_cache(maxsize=1)
def load_prior(path: Path = PRIOR_FILE) -> CavityPrior:
    """The shipped atlas cavity, read and turned into fields once per process."""
    with np.load(path) as data:
        shape = tuple(int(v) for v in data["shape"])
        inside = np.unpackbits(data["inside"], count=int(np.prod(shape))).reshape(shape).astype(bool)
        origin, spacing = data["origin"].astype(float), float(data["spacing"])
        foramen = tuple(float(v) for v in data["foramen"])
    where = np.argwhere(inside)
    box = (origin + where.min(axis=0) * spacing - spacing / 2, origin + where.max(axis=0) * spacing + spacing / 2)
    return CavityPrior(signed_distance(inside, spacing), floor_heights(inside, origin, spacing), origin, spacing,
                       foramen, box)
