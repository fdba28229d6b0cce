"""Paired comparison of two models on the cases both scored: is B better than A, and by how much?

Each side is a folder holding a ``per_case.csv``: an evaluation run (``scripts/evaluate.py``), a
cross-validation multirun folder (its pooled table, every case scored by the fold model that did
not train on it) or a training run (its ``test/per_case.csv``). Only cases scored in both count;
differences are B minus A, case by case (:func:`~brainseg.evaluation.statistics.paired_comparison`).
Writes ``comparison.md`` (numbers and per-case table), ``comparison.csv`` and ``comparison.png``
(per-case score of A against B).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from PIL import Image, ImageDraw, ImageFont

from brainseg.errors import ConfigError
from brainseg.evaluation.cross_validation import TEST_CASES_FOLDER
from brainseg.evaluation.statistics import paired_comparison

MIN_CASES = 5  # fewer paired cases say nothing: the smallest two-sided Wilcoxon p is 0.0625 at n = 5
SCORES = {"dice": "higher", "iou": "higher", "hd95_mm": "lower"}  # the scores compared, and which way is better
PER_CASE_PLACES = ("per_case.csv", f"{TEST_CASES_FOLDER}/per_case.csv")  # an evaluation or CV folder; a training run


def per_case_table(folder: str | Path) -> tuple[Path, dict[str, dict]]:
    """The per-case table of a run, evaluation or cross-validation folder: its path and rows by case ID.

    Raises:
        ConfigError: the folder holds no per-case table.
    """
    folder = Path(folder)
    for place in PER_CASE_PLACES:
        path = folder / place
        if path.is_file():
            with open(path, newline="") as stream:
                return path, {row["case_id"]: row for row in csv.DictReader(stream)}
    raise ConfigError(f"{folder}: no {' or '.join(PER_CASE_PLACES)} (give an evaluation, cross-validation or training run folder)")


def _number(cell: str | None) -> float | None:
    try:
        value = float(cell)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def paired_scores(rows_a: dict[str, dict], rows_b: dict[str, dict], score: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Case IDs scored (a finite ``score``) in both tables, sorted, with both sides' values."""
    cases = sorted(
        case_id for case_id in rows_a.keys() & rows_b.keys()
        if _number(rows_a[case_id].get(score)) is not None and _number(rows_b[case_id].get(score)) is not None
    )
    return cases, np.array([_number(rows_a[c][score]) for c in cases]), np.array([_number(rows_b[c][score]) for c in cases])


def compare(cfg: DictConfig) -> dict:
    """Compare ``cfg.a`` and ``cfg.b`` case by case on ``cfg.score``; write the comparison into the run folder.

    Raises:
        ConfigError: a folder without a per-case table, an unknown score, or fewer than 5 cases
            scored by both.
    """
    if cfg.score not in SCORES:
        raise ConfigError(f"score must be one of {tuple(SCORES)}, got {cfg.score!r}")
    path_a, rows_a = per_case_table(cfg.a)
    path_b, rows_b = per_case_table(cfg.b)
    cases, a, b = paired_scores(rows_a, rows_b, cfg.score)
    if len(cases) < MIN_CASES:
        raise ConfigError(
            f"a and b have {len(cases)} case(s) with a {cfg.score} in both ({len(rows_a)} in a, {len(rows_b)} in b); "
            f"a paired comparison needs at least {MIN_CASES}"
        )
    scored_a, scored_b = (set(case_id for case_id, row in rows.items() if _number(row.get(cfg.score)) is not None) for rows in (rows_a, rows_b))
    results = {"a": str(path_a), "b": str(path_b), "score": cfg.score, "scored_only_in_a": len(scored_a - scored_b),
               "scored_only_in_b": len(scored_b - scored_a), "scores": {}}
    for name in SCORES:  # every score both tables have, on the cases both scored
        names, values_a, values_b = paired_scores(rows_a, rows_b, name)
        if len(names) >= MIN_CASES:
            results["scores"][name] = paired_comparison(values_a, values_b, seed=int(cfg.seed))
    output = Path(cfg.paths.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    with open(output / "comparison.csv", "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["case_id", f"{cfg.score}_a", f"{cfg.score}_b", "difference_b_minus_a"])
        writer.writerows([case_id, f"{x:.6f}", f"{y:.6f}", f"{y - x:.6f}"] for case_id, x, y in zip(cases, a, b))
    (output / "comparison.json").write_text(json.dumps(results, indent=2) + "\n")
    draw_paired_scores(a, b, output / "comparison.png", cfg.score, str(cfg.a), str(cfg.b))
    (output / "comparison.md").write_text(comparison_markdown(results, cases, a, b))
    main = results["scores"][cfg.score]
    print(
        f"{main['n']} case(s): {cfg.score} A {main['mean_a']:.4f}, B {main['mean_b']:.4f}, B - A {main['mean_difference']:+.4f} "
        f"(95% CI {main['ci95_low']:+.4f} to {main['ci95_high']:+.4f}), Wilcoxon p = {main['wilcoxon_p']:.3g}; comparison.md in {output}"
    )
    return results


def comparison_markdown(results: dict, cases: list[str], a: np.ndarray, b: np.ndarray) -> str:
    """``comparison.md``: what was compared, the paired statistics per score, and the per-case differences."""
    score = results["score"]
    lines = [
        "# Paired comparison", "",
        f"* A: `{results['a']}`", f"* B: `{results['b']}`",
        f"* cases with a {score} in both: {len(cases)} (left out, scored only in A: {results['scored_only_in_a']}, only in B: {results['scored_only_in_b']})",
        "* differences are B - A per case; the CI is a seeded bootstrap of the mean difference (10000 resamples);",
        "  the p-value is scipy's paired Wilcoxon signed-rank test (two-sided)", "",
        "| score | better | mean A | mean B | B - A | 95% CI | cases B better / A better (ties left out) | Wilcoxon W | p |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in results["scores"].items():
        b_better, a_better = (r["b_higher"], r["a_higher"]) if SCORES[name] == "higher" else (r["a_higher"], r["b_higher"])
        lines.append(
            f"| {name} | {SCORES[name]} | {r['mean_a']:.4f} | {r['mean_b']:.4f} | {r['mean_difference']:+.4f} | "
            f"{r['ci95_low']:+.4f} to {r['ci95_high']:+.4f} | {b_better} / {a_better} | {r['wilcoxon_statistic']:g} | {r['wilcoxon_p']:.3g} |"
        )
    lines += ["", "![per-case scores](comparison.png)", "", f"| case | {score} A | {score} B | B - A |", "| --- | --- | --- | --- |"]
    lines += [f"| {case_id} | {x:.4f} | {y:.4f} | {y - x:+.4f} |" for case_id, x, y in zip(cases, a, b)]
    return "\n".join(lines) + "\n"


def draw_paired_scores(a: np.ndarray, b: np.ndarray, path: str | Path, score: str, label_a: str, label_b: str, size: int = 480) -> None:
    """A scatter of per-case scores, A across and B up, with the identity line: points above it are
    cases B scored higher (green), below it cases A scored higher (red)."""
    margin, font = 64, ImageFont.load_default()
    values = np.concatenate([a, b])
    step = _tick_step(float(values.max() - values.min()))
    low, high = math.floor(values.min() / step) * step, math.ceil(values.max() / step) * step
    high = low + step if high <= low else high
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    span = size - 2 * margin

    def at(x: float, y: float) -> tuple[float, float]:
        return margin + (x - low) / (high - low) * span, size - margin - (y - low) / (high - low) * span

    draw.rectangle([margin, margin, size - margin, size - margin], outline="black")
    draw.line([at(low, low), at(high, high)], fill=(160, 160, 160), width=1)
    for tick in np.arange(low, high + step / 2, step):
        x, y = at(tick, tick)
        draw.line([x, size - margin, x, size - margin + 4], fill="black")
        draw.line([margin - 4, y, margin, y], fill="black")
        draw.text((x - 12, size - margin + 6), f"{tick:.4g}", fill="black", font=font)
        draw.text((margin - 40, y - 6), f"{tick:.4g}", fill="black", font=font)
    for x, y in zip(a, b):
        colour = (0, 150, 0) if y > x else (200, 0, 0) if y < x else (100, 100, 100)
        cx, cy = at(x, y)
        draw.ellipse([cx - 4, cy - 4, cx + 4, cy + 4], outline=colour, width=2)
    draw.text((margin, 18), f"per-case {score}: {len(a)} cases (green: B higher, red: A higher)", fill="black", font=font)
    draw.text((margin, size - 30), f"A: {_shorten(label_a)}", fill="black", font=font)
    draw.text((6, margin - 18), f"B: {_shorten(label_b)}", fill="black", font=font)
    image.save(path)


def _tick_step(span: float) -> float:
    """1, 2 or 5 times a power of ten: about 4 to 10 ticks across ``span``."""
    raw = max(span, 1e-6) / 5
    power = 10 ** math.floor(math.log10(raw))
    return next(factor * power for factor in (1, 2, 5, 10) if factor * power >= raw)


def _shorten(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else "..." + text[-(limit - 3) :]
