"""``report.html``: an evaluation at a glance, one self-contained file (images embedded as base64 PNG).

It shows the summary scores, the worst and the best cases by Dice, each as the MIP with the true
(green) and predicted (red) outlines next to an error map (false negatives green, false positives
red), and the table of all cases, worst first.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from brainseg.data.normalization import window_hu
from brainseg.evaluation.metrics import SCORES, CaseScores
from brainseg.visualization import enlarge, error_map, grid, overlay

DIGITS = {"hd95_mm": 2, "predicted_area_mm2": 1, "true_area_mm2": 1}  # decimals shown; 4 for the rest
DISPLAY_SIDE = 320  # pixels a small MIP is enlarged to in the report, per picture

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.9em; }
td, th { padding: 3px 10px; text-align: right; border-bottom: 1px solid #eee; }
th:first-child, td:first-child { text-align: left; }
.cases { display: flex; flex-wrap: wrap; gap: 18px; }
.case { border: 1px solid #ddd; border-radius: 6px; padding: 8px; background: #fafafa; }
.case img { max-width: %dpx; display: block; }
.case .id { font-weight: 600; margin: 4px 0; } .case table { font-size: 0.85em; }
.legend span { display: inline-block; width: 12px; height: 12px; margin: 0 4px 0 12px; vertical-align: middle; }
.meta { color: #666; font-size: 0.9em; }
""" % (2 * DISPLAY_SIDE + 8)


@dataclass
class CasePicture:
    """What a case's picture is drawn from, on the grid it was scored on."""

    hu: np.ndarray  # MIP in HU, display orientation
    truth: np.ndarray  # uint8 {0, 1}
    prediction: np.ndarray  # uint8 {0, 1}


def case_panel(picture: CasePicture, window: tuple[float, float]) -> np.ndarray:
    """RGB: the MIP with true (green) and predicted (red) outlines | the error map.

    Small grids (the network's) are enlarged to about ``DISPLAY_SIDE`` pixels first, the image
    smoothly and the masks by pixel replication, so outlines stay thin and exact.
    """
    gray = (window_hu(picture.hu, window) * 255).round().astype(np.uint8)
    gray, (truth, prediction) = enlarge(gray, [picture.truth, picture.prediction], DISPLAY_SIDE)
    width = max(1, round(max(gray.shape) / 256))
    outlined = overlay(gray, [truth, prediction], width=width)
    return grid([[outlined, error_map(truth, prediction, gray)]], gap=4)


def png_data_uri(rgb: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def format_value(value, digits: int = 4) -> str:
    """A table cell: a float with ``digits`` decimals, a dash for nothing, anything else escaped."""
    if value is None:
        return "&ndash;"
    return f"{value:.{digits}f}" if isinstance(value, float) else html.escape(str(value))


def _case_card(row: CaseScores, picture: CasePicture, window: tuple[float, float]) -> str:
    scores = "".join(f"<tr><td>{name}</td><td>{format_value(getattr(row, name), DIGITS.get(name, 4))}</td></tr>" for name in SCORES)
    note = f"<div class='meta'>{html.escape(row.note)}</div>" if row.note else ""
    return (
        f"<div class='case'><div class='id'>{html.escape(row.case_id)}</div>"
        f"<img src='{png_data_uri(case_panel(picture, window))}' alt='{html.escape(row.case_id)}'>"
        f"<table>{scores}</table>{note}</div>"
    )


def _section(title: str, rows: list[CaseScores], pictures: dict[str, CasePicture], window: tuple[float, float]) -> str:
    cards = "".join(_case_card(row, pictures[row.case_id], window) for row in rows)
    return f"<h2>{html.escape(title)}</h2>\n<div class='cases'>{cards}</div>"


def pick_cases(rows: list[CaseScores], count: int) -> tuple[list[CaseScores], list[CaseScores], list[CaseScores]]:
    """The ``count`` lowest-Dice cases; the ``count`` highest-HD95 cases not among them (a stray
    blob far from the brain costs little Dice but much HD95); the ``count`` highest-Dice cases
    not among either. No case is shown twice."""
    scored = sorted((row for row in rows if row.dice is not None), key=lambda row: (row.dice, row.case_id))
    worst = scored[:count]
    by_distance = sorted(scored[count:], key=lambda row: (-row.hd95_mm, row.case_id))
    farthest = [row for row in by_distance if row.hd95_mm > max((r.hd95_mm for r in worst), default=0.0)][:count]
    shown = {row.case_id for row in worst + farthest}
    best = [row for row in reversed(scored) if row.case_id not in shown][:count]
    return worst, farthest, best


def page(
    context: dict[str, str], metrics: dict[str, float], n_rows: int, scores, legend: str, sections: list[str], columns,
    table: list[list[str]], data_warnings: list[str] = (),
) -> str:
    """The whole ``report.html``: context, summary of ``scores``, legend, picture sections, the case
    table (cells formatted), and what reading the data had to fix (``data_warnings``: DICOM tilt, ...)."""
    statistics = ("mean", "median", "std", "min", "max")
    header = "".join(f"<th>{name}</th>" for name in statistics)
    summary = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td>{format_value(metrics.get(f'{name}/{stat}'))}</td>" for stat in statistics) + "</tr>"
        for name in scores
    )
    meta = " &middot; ".join(f"{html.escape(key)}: {html.escape(str(value))}" for key, value in context.items())
    counts = f"{metrics.get('cases', n_rows)} cases, {metrics.get('cases_excluded', 0)} excluded"
    if metrics.get("cases_failed"):
        counts += f", {metrics['cases_failed']} failed"
    rows = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in table)
    body = "\n".join(section for section in sections if section)
    if data_warnings:
        items = "".join(f"<li>{html.escape(str(warning))}</li>" for warning in data_warnings)
        body += f"\n<h2>Reading the data</h2>\n<ul class='meta'>{items}</ul>"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>brainseg evaluation</title><style>{STYLE}</style></head>
<body>
<h1>brainseg evaluation</h1>
<p class="meta">{meta}<br>{counts}</p>
<h2>Summary</h2>
<table><tr><th>score</th>{header}</tr>{summary}</table>
{legend}
{body}
<h2>All cases, worst first</h2>
<table><tr>{''.join(f'<th>{name}</th>' for name in columns)}</tr>{rows}</table>
</body></html>
"""


def write_report(
    path: str | Path,
    rows: list[CaseScores],
    pictures: dict[str, CasePicture],
    metrics: dict[str, float],
    context: dict[str, str],
    window: tuple[float, float],
    count: int = 4,
    data_warnings: list[str] = (),
) -> Path:
    """Write ``report.html``: summary, the worst and best ``count`` cases with pictures, all cases,
    and ``data_warnings`` (what reading the data had to fix)."""
    worst, farthest, best = pick_cases(rows, count)
    columns = ("case_id", *SCORES, "predicted_area_mm2", "true_area_mm2", "note")
    ordered = sorted(rows, key=lambda row: (row.dice is None, row.dice if row.dice is not None else 0.0, row.case_id))
    table = [[format_value(getattr(row, name), DIGITS.get(name, 4)) for name in columns] for row in ordered]
    legend = (
        "<p class='legend'>Left: MIP with outlines<span style='background:#3cdc3c'></span>truth"
        "<span style='background:#ff3c3c'></span>prediction. Right: error map"
        "<span style='background:#c8c8c8'></span>both<span style='background:#3cdc3c'></span>missed (false negative)"
        "<span style='background:#ff3c3c'></span>extra (false positive)</p>"
    )
    sections = [
        _section(f"Worst {len(worst)} by Dice", worst, pictures, window),
        _section("Largest HD95 among the others", farthest, pictures, window) if farthest else "",
        _section(f"Best {len(best)} by Dice", best, pictures, window),
    ]
    document = page(context, metrics, len(rows), SCORES, legend, sections, columns, table, data_warnings)
    path = Path(path)
    path.write_text(document)
    return path
