"""``report.html`` of a 3-D evaluation: the worst and best volumes as axial slices with the mask outlines.

The page is the 2-D report's (:func:`brainseg.evaluation.report.page`): context, summary scores,
picture sections picked the same way (:func:`~brainseg.evaluation.report.pick_cases`: lowest
Dice, largest HD95 among the others, highest Dice) and the table of every case, worst first.
A volume's picture is three axial slices, at a quarter, half and three quarters of the true
mask's height, in the radiological view (anterior up, the patient's right on the left), with the
true (green) and predicted (red) outlines.

While cases are scored only the mask slices are kept (:func:`axial_views`); the HU slices are
read for the few volumes shown, when the page is written.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np

from brainseg.data.nifti import NiftiVolume
from brainseg.data.normalization import window_hu
from brainseg.data.projection import ras_to_display
from brainseg.evaluation.metrics import VOLUME_SCORES
from brainseg.evaluation.report import format_value, page, pick_cases, png_data_uri
from brainseg.visualization import enlarge, grid, overlay

LEVELS = (0.25, 0.5, 0.75)  # of the true mask's extent along S
SLICE_SIDE = 200  # pixels a slice is enlarged to, at least
DIGITS = {"hd95_mm": 2, "volume_ml": 1, "volume_truth_ml": 1, "volume_difference_ml": 1}


@dataclass
class AxialViews:
    """What a volume's picture is drawn from: its image (read later) and the masks at a few axial levels."""

    image: NiftiVolume
    levels: list[int]  # slice indices along S, RAS voxel order
    truth: list[np.ndarray]  # (R, A) bool
    prediction: list[np.ndarray]


def axial_views(image: NiftiVolume, truth: np.ndarray, prediction: np.ndarray) -> AxialViews:
    """The true and predicted masks (stored voxel order) at :data:`LEVELS` of the truth's height."""
    orientation = image.orientation
    truth_ras = nib.apply_orientation(np.asarray(truth, bool), orientation)
    prediction_ras = nib.apply_orientation(np.asarray(prediction, bool), orientation)
    rows = np.flatnonzero(truth_ras.any(axis=(0, 1)))
    if rows.size == 0:
        rows = np.flatnonzero(prediction_ras.any(axis=(0, 1)))
    if rows.size == 0:
        rows = np.array([truth_ras.shape[2] // 2])
    levels = [int(round(rows[0] + fraction * (rows[-1] - rows[0]))) for fraction in LEVELS]
    return AxialViews(image, levels, [truth_ras[:, :, z].copy() for z in levels], [prediction_ras[:, :, z].copy() for z in levels])


def hu_slices(views: AxialViews) -> list[np.ndarray]:
    """The image's HU at the views' levels, (R, A) each; the volume is read once."""
    ras = nib.apply_orientation(views.image.read(), views.image.orientation)
    return [views.image.scale(ras[:, :, z]) for z in views.levels]


def volume_panel(views: AxialViews, window: tuple[float, float]) -> np.ndarray:
    """RGB: the axial slices side by side, each with the true (green) and predicted (red) outlines."""
    tiles = []
    for hu, truth, prediction in zip(hu_slices(views), views.truth, views.prediction):
        gray = (window_hu(ras_to_display(hu), window) * 255).round().astype(np.uint8)
        gray, (true_mask, predicted_mask) = enlarge(gray, [ras_to_display(truth), ras_to_display(prediction)], SLICE_SIDE)
        tiles.append(overlay(gray, [true_mask, predicted_mask], width=max(1, round(max(gray.shape) / 256))))
    height, width = max(t.shape[0] for t in tiles), max(t.shape[1] for t in tiles)
    padded = [np.pad(t, ((0, height - t.shape[0]), (0, width - t.shape[1]), (0, 0))) for t in tiles]
    return grid([padded], gap=4)


def _card(row: dict, views: AxialViews, window: tuple[float, float]) -> str:
    scores = "".join(f"<tr><td>{name}</td><td>{format_value(row.get(name), DIGITS.get(name, 4))}</td></tr>" for name in VOLUME_SCORES)
    note = f"<div class='meta'>{html.escape(row['warnings'])}</div>" if row.get("warnings") else ""
    levels = ", ".join(str(z) for z in views.levels)
    return (
        f"<div class='case'><div class='id'>{html.escape(row['case_id'])}</div>"
        f"<img src='{png_data_uri(volume_panel(views, window))}' alt='{html.escape(row['case_id'])}'>"
        f"<div class='meta'>axial slices {levels} (RAS index along S)</div><table>{scores}</table>{note}</div>"
    )


def write_volume_report(
    path: str | Path,
    rows: list[dict],
    views: dict[str, AxialViews],
    metrics: dict[str, float],
    context: dict[str, str],
    count: int = 4,
    window: tuple[float, float] = (-100.0, 1000.0),
    data_warnings: list[str] = (),
) -> Path:
    """Write ``report.html`` for 3-D scores: summary, the worst and best ``count`` volumes as axial
    slices, all cases, and ``data_warnings`` (what reading the data had to fix)."""
    scored = [SimpleNamespace(**row) for row in rows if row.get("dice") is not None and row["case_id"] in views]
    worst, farthest, best = pick_cases(scored, count)

    def section(title: str, picked) -> str:
        cards = "".join(_card(next(r for r in rows if r["case_id"] == p.case_id), views[p.case_id], window) for p in picked)
        return f"<h2>{html.escape(title)}</h2>\n<div class='cases'>{cards}</div>" if picked else ""

    columns = ("case_id", *VOLUME_SCORES, "warnings", "error")
    ordered = sorted(rows, key=lambda row: (row.get("dice") is None, row.get("dice") or 0.0, row["case_id"]))
    table = [[format_value(row.get(name), DIGITS.get(name, 4)) if name in row else "" for name in columns] for row in ordered]
    legend = (
        "<p class='legend'>Axial slices with outlines<span style='background:#3cdc3c'></span>truth"
        "<span style='background:#ff3c3c'></span>prediction; anterior up, the patient's right on the left</p>"
    )
    sections = [section(f"Worst {len(worst)} by Dice", worst), section("Largest HD95 among the others", farthest), section(f"Best {len(best)} by Dice", best)]
    path = Path(path)
    path.write_text(page(context, metrics, len(rows), VOLUME_SCORES, legend, sections, columns, table, data_warnings))
    return path
