"""The synthetic brain's proportions against a real one: the MNI ICBM152 2009 atlas.

``python scripts/measure_atlas.py`` measures the same landmarks on two brain masks: the MNI152
2009 (symmetric, nonlinear) gray + white matter probability maps, thresholded at 0.5 with the
holes (ventricles) filled, and the generator's analytic cranial cavity (``head.Cranium``'s
``cavity`` field, head size 1). Lengths are in mm; each height is from the vertex down to the
lowest brain over one part of the skull base, and is also given as a fraction of the brain's
anterior-posterior length, so the two brains compare whatever their size.

The atlas maps ship inside nilearn's package data (``nilearn/datasets/data/``, licence notice
in docs/synthetic_data.md). nilearn is not a brainseg dependency: the script reads the files
from an installed nilearn, or from ``gray_matter=``/``white_matter=`` paths.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from brainseg.errors import ConfigError

MNI_GM = "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz"
MNI_WM = "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz"
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
    x, y, z = points.T
    length, width, top = float(np.ptp(y)), float(np.ptp(x)), float(z.max())
    centre_x, centre_y, half = (x.max() + x.min()) / 2, (y.max() + y.min()) / 2, length / 2
    ax, ay = np.abs(x - centre_x), (y - centre_y) / half
    figures = {"length_mm": length, "width_mm": width}
    for name, ((x_lo, x_hi), (y_lo, y_hi)) in REGIONS.items():
        where = (ax >= x_lo) & (ax <= x_hi) & (ay >= y_lo) & (ay <= y_hi)
        figures[f"height to {name} mm"] = top - float(z[where].min())
    return {**figures, **{f"{key.removesuffix(' mm').removesuffix('_mm')} / length": value / length
                          for key, value in figures.items() if key != "length_mm"}}


def atlas_points(gray_matter: Path, white_matter: Path) -> np.ndarray:
    """RAS mm of the MNI brain: gray + white matter probability >= 0.5, largest piece, holes filled."""
    import nibabel as nib
    from scipy import ndimage

    gm, wm = nib.load(str(gray_matter)), nib.load(str(white_matter))
    scale = 255.0 if gm.get_data_dtype().kind in "ui" else 1.0  # nilearn's copies are stored as 0-255
    brain = (np.asarray(gm.dataobj, np.float32) + np.asarray(wm.dataobj, np.float32)) / scale >= 0.5
    labels, count = ndimage.label(brain)
    brain = labels == 1 + int(np.argmax(ndimage.sum(brain, labels, range(1, count + 1))))
    brain = ndimage.binary_fill_holes(brain)
    return nib.affines.apply_affine(gm.affine, np.argwhere(brain))


def synthetic_points(step_mm: float = 1.0) -> np.ndarray:
    """Anatomy-frame mm of the generator's cranial cavity (its brain mask) for a head of size 1."""
    from brainseg.synthetic.head import Cranium

    cranium = Cranium(rng_state=0, vault_mm=6.0, base_mm=14.0, csf_mm=2.0, sulcus_mm=1.0)
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
    rows = {key: {"mni152": atlas[key], "synthetic": synthetic[key], "ratio": atlas[key] / synthetic[key]} for key in atlas}
    print("| landmark | MNI152 2009 | synthetic (head size 1) | MNI / synthetic |\n|---|---|---|---|")
    for key, row in rows.items():
        print(f"| {key} | {row['mni152']:.3g} | {row['synthetic']:.3g} | {row['ratio']:.3f} |")
    return rows
