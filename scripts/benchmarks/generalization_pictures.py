"""Pictures of the generalization matrix's worst cases: where a model fails, for a person to look at.

Truth is drawn in green and prediction in red (:mod:`brainseg.visualization`). The MIP case is
its MIP and the extra projections the model takes, with both footprints; the 3-D case is a
coronal and a sagittal slice through the middle of the true brain, in RAS display (superior
up), with both masks' outlines.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from brainseg.data.cases import open_case
from brainseg.data.discovery import discover_cases
from brainseg.data.extra_projections import EXTRA_PROJECTIONS
from brainseg.data.normalization import window_hu
from brainseg.data.projection import project_case
from brainseg.inference.predict import load_predictor
from brainseg.visualization import enlarge, grid, overlay, save_png

SIDE = 384  # pixels of the longer side of each panel, at least
PLANE_SIDE = 256  # the same for the MIP case's five panels, which sit side by side
VOLUME_WINDOW = (-100.0, 1000.0)  # HU: brain, vessels and bone apart


def _worst(rows: dict[str, dict]) -> tuple[str, float]:
    scored = {case_id: row["dice"] for case_id, row in rows.items() if isinstance(row.get("dice"), float)}
    case_id = min(scored, key=scored.get)
    return case_id, scored[case_id]


def _record(dataset: Path, case_id: str):
    return next(record for record in discover_cases(dataset).cases if record.case_id == case_id)


def _panel(hu: np.ndarray, truth: np.ndarray, prediction: np.ndarray, window: tuple[float, float], side: int = SIDE) -> np.ndarray:
    gray = (window_hu(hu, window) * 255).round().astype(np.uint8)
    gray, (truth, prediction) = enlarge(gray, [truth, prediction], side)
    return overlay(gray, [truth, prediction], width=2)


def _isotropic(view: np.ndarray, row_mm: float, col_mm: float, nearest: bool) -> np.ndarray:
    """A slice resampled to square pixels of the finer spacing, so thick slices are not squashed."""
    from PIL import Image

    pixel = min(row_mm, col_mm)
    size = (max(1, round(view.shape[1] * col_mm / pixel)), max(1, round(view.shape[0] * row_mm / pixel)))
    if nearest:
        return np.asarray(Image.fromarray(view.astype(np.uint8)).resize(size, Image.NEAREST)).astype(bool)
    return np.asarray(Image.fromarray(view.astype(np.float32)).resize(size, Image.BILINEAR))


def worst_mip_picture(ckpt_path: str, dataset: Path, rows: dict[str, dict], path: Path) -> dict:
    """The MIP model's worst case: its MIP and the extra projections the model takes beside it
    (each from its air value, black, to a head's, white), with the true and predicted footprints."""
    case_id, dice = _worst(rows)
    predictor = load_predictor(ckpt_path)
    names = predictor.preprocessing.extra_projections
    projection = project_case(open_case(_record(dataset, case_id)), names)
    prediction = predictor.predict(projection)
    panels = [_panel(projection.image, projection.mask, prediction.mask, predictor.preprocessing.hu_window, PLANE_SIDE)]
    panels += [_panel(EXTRA_PROJECTIONS[name].normalize(projection.extra[name]), projection.mask, prediction.mask, (0.0, 1.0), PLANE_SIDE)
               for name in names]
    save_png(grid([panels]), path)
    planes = f", then {', '.join(f'`{name}`' for name in names)}" if names else ""
    return {"case": case_id, "dice": dice, "path": str(path),
            "caption": f"MIP model, worst case `{case_id}` (Dice {dice:.3f}): the MIP{planes}, with the true (green) and "
                       "predicted (red) footprint."}


def worst_volume_picture(dataset: Path, rows: dict[str, dict], ckpt_path: str, path: Path) -> dict:
    """The 3-D model's worst case: coronal and sagittal slices with true and predicted outlines."""
    case_id, dice = _worst(rows)
    record = _record(dataset, case_id)
    case = open_case(record)
    predicted = np.asanyarray(load_predictor(ckpt_path).segment(record.image_path, {}).mask.dataobj) != 0
    orientation = nib.orientations.io_orientation(case.image.affine)
    hu, truth, prediction = (nib.orientations.apply_orientation(a, orientation)
                             for a in (case.image.scale(case.image.read()), case.mask, predicted))
    r, a, _ = (int(np.mean(np.flatnonzero(truth.any(axis=tuple(k for k in range(3) if k != axis))))) for axis in range(3))
    spacing = np.empty(3)
    spacing[orientation[:, 0].astype(int)] = nib.affines.voxel_sizes(case.image.affine)  # mm along R, A, S
    panels = []
    for cut, across in ((np.s_[:, a, :], spacing[0]), (np.s_[r, :, :], spacing[1])):  # coronal, sagittal; superior up
        views = [_isotropic(np.flipud(view[cut].T), spacing[2], across, nearest=view is not hu) for view in (hu, truth, prediction)]
        panels.append(_panel(*views, VOLUME_WINDOW))
    height = max(p.shape[0] for p in panels)
    width = max(p.shape[1] for p in panels)
    tiles = [np.pad(p, ((0, height - p.shape[0]), (0, width - p.shape[1]), (0, 0))) for p in panels]
    save_png(grid([tiles]), path)
    return {"case": case_id, "dice": dice, "path": str(path),
            "caption": f"3-D model, worst case `{case_id}` (3-D Dice {dice:.3f}): coronal and sagittal slices through the "
                       "middle of the brain, true (green) and predicted (red) outlines."}
