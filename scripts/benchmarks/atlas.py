"""The synthetic brain's proportions against a real one: the MNI ICBM152 2009 atlas.

``python scripts/measure_atlas.py`` measures the same landmarks on two brain masks: the MNI152
2009 (symmetric, nonlinear) gray + white matter probability maps, thresholded at 0.5 with the
holes (ventricles) filled, and the generator's analytic cranial cavity (``head.Cranium``'s
``cavity`` field, head size 1). Lengths are in mm; each height is from the vertex down to the
lowest brain over one part of the skull base, and is also given as a fraction of the brain's
anterior-posterior length, so the two brains compare whatever their size. The generator's
atlas cavity is measured too.

``python scripts/make_cavity_prior.py`` makes that atlas cavity (:func:`make_cavity_prior`):
brainseg/synthetic/cavity_prior.npz, which synthetic heads draw in ``wide()`` and ``varied()``.

The atlas maps ship inside nilearn's package data (``nilearn/datasets/data/``, licence notice
in docs/synthetic_data.md). nilearn is not a brainseg dependency: the script reads the files
from an installed nilearn, or from ``gray_matter=``/``white_matter=`` paths.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np

from brainseg.errors import ConfigError

MNI_GM = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
MNI_WM = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"
# Shipped inside the cavity prior (the template's licence asks for the notice in every copy).
NOTICE = (
    "Cranial cavity derived from the MNI ICBM152 2009a nonlinear symmetric template (gray and white matter maps). "
    "Copyright (C) 1993-2009 Louis Collins, McConnell Brain Imaging Centre, Montreal Neurological Institute, McGill "
    "University. Permission to use, "
    "copy, modify, and distribute this software and its documentation for any purpose and without fee is hereby "
    "granted, provided that the above copyright notice appear in all copies. The authors and McGill University make "
    "no representations about the suitability of this software for any purpose. It is provided \"as is\" without "
    "express or implied warranty. Fonov V. et al., NeuroImage 47 S102 (2009); NeuroImage 54(1):313-327 (2011)."
)
# Where each height is taken: the lowest brain point among points with |x| in [lo, hi] and
# y (anterior-posterior, as a fraction of the half length from the brain's centre) in [lo, hi].
REGIONS = {
    "cerebellum (posterior fossa)": ((20.0, 45.0), (-1.0, -0.45)),
    "temporal poles (middle fossa)": ((30.0, 80.0), (0.0, 0.5)),
    "orbitofrontal (anterior fossa)": ((10.0, 30.0), (0.55, 1.0)),
}


def landmarks(points: np.ndarray) -> dict:
    """Length, width and heights (vertex to the lowest brain in each of :data:`REGIONS`) of a
    brain given as (n, 3) RAS points in mm, and each as a fraction of the length."""
    x, _, z = points.T
    length, width, top = float(np.ptp(points[:, 1])), float(np.ptp(x)), float(z.max())
    figures = {"length_mm": length, "width_mm": width}
    figures.update({f"height to {name} mm": top - floor for name, floor in fossa_floors(points).items()})
    return {**figures, **{f"{key.removesuffix(' mm').removesuffix('_mm')} / length": value / length
                          for key, value in figures.items() if key != "length_mm"}}


def fossa_floors(points: np.ndarray) -> dict[str, float]:
    """The lowest z (mm) of a brain given as (n, 3) RAS points over each of :data:`REGIONS`."""
    x, y, z = points.T
    centre_x, centre_y, half = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2, np.ptp(y) / 2
    ax, ay = np.abs(x - centre_x), (y - centre_y) / half
    floors = {}
    for name, ((x_lo, x_hi), (y_lo, y_hi)) in REGIONS.items():
        where = (ax >= x_lo) & (ax <= x_hi) & (ay >= y_lo) & (ay <= y_hi)
        floors[name] = float(z[where].min())
    return floors


def atlas_brain(gray_matter: Path, white_matter: Path) -> tuple[np.ndarray, np.ndarray]:
    """The MNI brain as a mask and its affine: gray + white matter probability >= 0.5, largest piece, holes filled."""
    import nibabel as nib
    from scipy import ndimage

    gm, wm = nib.load(str(gray_matter)), nib.load(str(white_matter))
    scale = 255.0 if gm.get_data_dtype().kind in "ui" else 1.0  # nilearn's copies are stored as 0-255
    brain = (np.asarray(gm.dataobj, np.float32) + np.asarray(wm.dataobj, np.float32)) / scale >= 0.5
    labels, count = ndimage.label(brain)
    brain = labels == 1 + int(np.argmax(ndimage.sum(brain, labels, range(1, count + 1))))
    return ndimage.binary_fill_holes(brain), gm.affine


def atlas_points(gray_matter: Path, white_matter: Path) -> np.ndarray:
    """RAS mm of the MNI brain (:func:`atlas_brain`)."""
    import nibabel as nib

    brain, affine = atlas_brain(gray_matter, white_matter)
    return nib.affines.apply_affine(affine, np.argwhere(brain))


def synthetic_points(step_mm: float = 1.0, atlas: bool = False) -> np.ndarray:
    """Anatomy-frame mm of the generator's cranial cavity (its brain mask) for a head of size 1;
    ``atlas``: the shipped atlas cavity instead of the analytic one."""
    from brainseg.synthetic.head import Cranium

    cranium = Cranium(rng_state=0, vault_mm=6.0, base_mm=14.0, csf_mm=2.0, sulcus_mm=1.0, atlas=atlas)
    cranium.bumps[:] = 0.0  # the mean shape, without the case's random bumps
    axes = [np.arange(lo, hi + step_mm, step_mm, dtype=np.float32) for lo, hi in zip(cranium.lo, cranium.hi)]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    inside = cranium.coarse(x, y, z)["cavity"] < 0
    return np.stack([x[inside], y[inside], z[inside]], axis=1)


def nilearn_data(name: str) -> Path:
    """A file of an installed nilearn's package data, found without importing nilearn."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the MNI152 maps come from nilearn's package data: pip install nilearn, or give gray_matter= and white_matter=")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name
    if not path.is_file():
        raise ConfigError(f"{path} not found in the installed nilearn; give gray_matter= and white_matter=")
    return path


def measure_atlas(cfg) -> dict:
    """Landmarks of both brains, their ratios (atlas / synthetic), printed as a table."""
    gray = Path(cfg.gray_matter) if cfg.gray_matter else nilearn_data(MNI_GM)
    white = Path(cfg.white_matter) if cfg.white_matter else nilearn_data(MNI_WM)
    atlas, synthetic = landmarks(atlas_points(gray, white)), landmarks(synthetic_points())
    shipped = landmarks(synthetic_points(atlas=True))
    rows = {key: {"mni152": atlas[key], "synthetic": synthetic[key], "ratio": atlas[key] / synthetic[key],
                  "atlas_cavity": shipped[key]} for key in atlas}
    print("| landmark | MNI152 2009 | synthetic (head size 1) | MNI / synthetic | synthetic atlas cavity |")
    print("|---|---|---|---|---|")
    for key, row in rows.items():
        print(f"| {key} | {row['mni152']:.3g} | {row['synthetic']:.3g} | {row['ratio']:.3f} | {row['atlas_cavity']:.3g} |")
    return rows


def make_cavity_prior(cfg) -> dict:
    """Write the atlas cranial cavity that ``brainseg.synthetic.cavity_prior`` ships (``cfg.output``).

    The MNI brain (:func:`atlas_brain`) is cut below the cerebellum (the medulla leaves through
    the foramen magnum), closed by ``cfg.closing_mm`` (the cisterns and fissures), grown by
    ``cfg.subarachnoid_mm`` of CSF to the inner table, smoothed (``cfg.smoothing_mm``), scaled to
    the analytic cavity's length, centred in x and y, and moved in z so that its three fossae
    lie, on average, at the analytic ones' height: the face, ears and spine, which are placed
    around the analytic skull base, stay in place, and the vault rises to real proportions.
    Stored as a bit mask on a ``cfg.spacing_mm`` grid.
    """
    import nibabel as nib
    from scipy import ndimage

    gray = Path(cfg.gray_matter) if cfg.gray_matter else nilearn_data(MNI_GM)
    white = Path(cfg.white_matter) if cfg.white_matter else nilearn_data(MNI_WM)
    brain, affine = atlas_brain(gray, white)
    voxel_mm = float(np.abs(affine[0, 0]))
    points = nib.affines.apply_affine(affine, np.argwhere(brain))
    cut = fossa_floors(points)["cerebellum (posterior fossa)"]
    z_of_slice = affine[2, 2] * np.arange(brain.shape[2]) + affine[2, 3]
    brain[:, :, z_of_slice < cut] = False  # the medulla below the cerebellum: spinal canal, not cranial cavity
    # Closing fills the cisterns and fissures (CSF spaces of the cavity) that the tissue maps leave open.
    closed = ndimage.distance_transform_edt(~brain) * voxel_mm <= cfg.closing_mm
    closed = ndimage.binary_fill_holes(ndimage.distance_transform_edt(closed) * voxel_mm > cfg.closing_mm)
    cavity = ndimage.distance_transform_edt(~(closed | brain)) * voxel_mm <= cfg.subarachnoid_mm
    # The inner table is smoother than the brain it holds: the gyri's crowns leave only shallow impressions.
    cavity = ndimage.gaussian_filter(cavity.astype(np.float32), cfg.smoothing_mm / voxel_mm) >= 0.5
    points = nib.affines.apply_affine(affine, np.argwhere(cavity))

    analytic = synthetic_points(step_mm=1.0)
    scale = np.ptp(analytic[:, 1]) / np.ptp(points[:, 1])
    centre = (points.max(axis=0) + points.min(axis=0)) / 2
    shift = -scale * centre
    shift[2] = np.mean(list(fossa_floors(analytic).values())) - scale * np.mean(list(fossa_floors(points).values()))
    to_anatomy = np.diag([scale, scale, scale, 1.0])
    to_anatomy[:3, 3] = shift

    moved = points * scale + shift
    step = float(cfg.spacing_mm)
    origin = np.floor((moved.min(axis=0) - cfg.margin_mm) / step) * step
    shape = tuple(int(v) for v in np.ceil((moved.max(axis=0) + cfg.margin_mm - origin) / step) + 1)
    grid = np.stack(np.meshgrid(*[origin[a] + step * np.arange(shape[a]) for a in range(3)], indexing="ij"), axis=-1)
    index = nib.affines.apply_affine(np.linalg.inv(affine) @ np.linalg.inv(to_anatomy), grid.reshape(-1, 3))
    inside = ndimage.map_coordinates(cavity.astype(np.float32), index.T, order=1, cval=0.0).reshape(shape) >= 0.5

    lowest = np.argwhere(inside)
    near_floor = lowest[(lowest[:, 2] <= lowest[:, 2].min() + 2) & (np.abs(origin[0] + step * lowest[:, 0]) < 20)]
    foramen = origin[:2] + step * near_floor[:, :2].mean(axis=0)
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(output, inside=np.packbits(inside.ravel()), shape=np.array(shape), origin=origin,
                        spacing=np.array(step), foramen=foramen, notice=np.array(NOTICE))
    figures = {"scale": float(scale), "shape": shape, "origin_mm": origin.tolist(), "foramen_mm": foramen.tolist(),
               "top_mm": float(moved[:, 2].max()), "bytes": output.stat().st_size}
    print(json.dumps(figures))
    return figures

