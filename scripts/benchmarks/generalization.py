"""The generalization matrix (``python scripts/benchmark_generalization.py``): where the models hold and where they fail.

About a hundred cases are drawn from a wide randomization (``SyntheticConfig.wide()`` by
default) with a seed no training uses; each case's acquisition and anatomy are recorded. The
MIP model and, when given, the 3-D model score every case as ``scripts/evaluate.py`` does.
The rows group the cases by one property at a time (field of view, slice spacing, pixel size,
storage orientation, tilt, contrast phase, kernel, noise, head size and height, cranial cavity (analytic or atlas),
pathology, metal, skull defect, motion, beam hardening);
the columns are the MIP model's Dice, the 3-D model's Dice and HD95, the 3-D model's Dice on
each third of the brain from the skull base up, and the Dice of the 3-D mask's footprint (its
projection along S) scored as the MIP model is. Below the table: the worst case of each mode.
Written to docs/generalization.{md,json} and docs/generalization_worst_{mip,volume}.png.
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.common import compose_conf
from brainseg.evaluation.evaluate import evaluate
from brainseg.synthetic import (
    SyntheticConfig,
    case_paths,
    case_seed,
    generate_case,
    write_case,
)
from brainseg.synthetic.dataset import made_by_this_generator, stamp_generator

# (row group, the property of a case's record that puts it in a row, or a list of rows); None leaves
# a case out of the group.
GROUPS = {
    "field of view": lambda m: m["fov_kind"],
    "slice spacing": lambda m: _bin(m["spacing_mm"][2], (1.0, 2.5, 4.0), "mm"),
    "pixel size": lambda m: _bin(m["spacing_mm"][0], (0.5, 0.8, 1.3), "mm"),
    "storage orientation": lambda m: m["orientation"],
    "gantry tilt": lambda m: "tilted" if abs(m["gantry_tilt_deg"]) > 0.5 else "none",
    "contrast phase": lambda m: m.get("phase", "arterial"),
    "reconstruction kernel": lambda m: m.get("kernel", "soft"),
    "noise": lambda m: _bin(m["noise_hu"], (8.0, 16.0, 25.0), "HU"),
    "head size": lambda m: None if "head_size" not in m else _bin(float(np.mean(m["head_size"])), (0.9, 1.0, 1.08), "x"),
    # The analytic cavity's stretch (an atlas cavity has its own proportions: the next row).
    "head height / length": lambda m: None if "head_height_ratio" not in m or m.get("atlas_cavity") else _bin(m["head_height_ratio"], (1.08, 1.16), "x"),
    "cranial cavity": lambda m: None if "atlas_cavity" not in m else ("atlas (MNI152)" if m["atlas_cavity"] else "analytic"),
    "pathology": lambda m: sorted(k for k, v in (m.get("pathology") or {}).items() if v) or "none",  # a row per kind
    "metal": lambda m: None if "dental_metal" not in m else ("dental metal" if m["dental_metal"] else "none"),
    "skull defect": lambda m: ", ".join(sorted({d["kind"] for d in m.get("skull_defects") or []})) or "none",
    "motion": lambda m: "moved" if (m.get("motion") or {}).get("jumps_at_slice") else "still",
    "beam hardening": lambda m: "yes" if m.get("beam_hardening_hu", 0) > 0 else "no",
}
MIP_COLUMNS = ("dice",)
VOLUME_COLUMNS = ("dice", "hd95_mm", "dice_inferior_third", "dice_middle_third", "dice_superior_third", "footprint_dice")


def _bin(value: float, edges: tuple[float, ...], unit: str) -> str:
    """The interval of ``edges`` that holds ``value``, as a label ('< 1 mm', '1-2.5 mm', '>= 4 mm')."""
    for low, high in zip((None, *edges), (*edges, None)):
        if high is None or value < high:
            if low is None:
                return f"< {high:g} {unit}"
            return f">= {low:g} {unit}" if high is None else f"{low:g}-{high:g} {unit}"
    raise AssertionError("unreachable")


def _make_case(arguments: tuple[Path, str, int, SyntheticConfig]) -> tuple[str, dict]:
    root, case_id, seed, config = arguments
    case = generate_case(seed, config)
    write_case(case, root, case_id)
    return case_id, case.meta


def make_cases(root: Path, n: int, seed: int, config: SyntheticConfig, workers: int | None = None) -> dict[str, dict]:
    """Generate ``n`` cases into ``root`` (dataset layout) with their records in ``cases.json``;
    cases already there are kept, with their records, unless an older generator made them."""
    records_path = root / "cases.json"
    current = made_by_this_generator(root)
    records = json.loads(records_path.read_text()) if records_path.is_file() and current else {}
    todo = [(root, f"synth_{i:04d}", case_seed(seed, i), config) for i in range(n)]
    todo = [t for t in todo if t[1] not in records or not all(p.exists() for p in case_paths(root, t[1]))]
    with ProcessPoolExecutor(max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))) as pool:
        for case_id, meta in pool.map(_make_case, todo):
            records[case_id] = meta
    stamp_generator(root)
    records_path.write_text(json.dumps(records, indent=1, default=float) + "\n")
    return {f"synth_{i:04d}": records[f"synth_{i:04d}"] for i in range(n)}


def score(ckpt_path: str, dataset: Path, output_dir: Path) -> dict[str, dict]:
    """Per-case rows of ``scripts/evaluate.py ckpt_path=... data.root=dataset`` (its files go to ``output_dir``)."""
    evaluate(compose_conf("evaluate", [f"ckpt_path={ckpt_path}", f"data.root={dataset}", f"paths.output_dir={output_dir}"]))
    with open(output_dir / "per_case.csv", newline="") as stream:
        return {row["case_id"]: {key: _number(value) for key, value in row.items()} for row in csv.DictReader(stream)}


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text or None


def _stats(values: list) -> dict[str, float | None]:
    finite = [v for v in values if isinstance(v, float) and math.isfinite(v)]
    if not finite:
        return {"mean": None, "worst": None, "max": None}
    return {"mean": float(np.mean(finite)), "worst": float(np.min(finite)), "max": float(np.max(finite))}


def matrix(records: dict[str, dict], mip: dict[str, dict], volume: dict[str, dict] | None) -> list[dict]:
    """One row per (group, value): case count and mean and worst of each column ("all cases" first);
    for HD95 the worst is the largest."""
    groups = {"all cases": lambda m: "all"} | GROUPS
    rows = []
    for group, key in groups.items():
        members: dict[str, list[str]] = {}
        for case_id, meta in records.items():
            labels = key(meta)
            for label in [labels] if isinstance(labels, str) else labels or []:
                members.setdefault(label, []).append(case_id)
        for label in sorted(members):
            ids = members[label]
            row = {"group": group, "value": label, "cases": len(ids)}
            stats = _stats([mip.get(i, {}).get("dice") for i in ids])
            row["mip_dice_mean"], row["mip_dice_worst"] = stats["mean"], stats["worst"]
            for column in VOLUME_COLUMNS if volume else ():
                stats = _stats([volume.get(i, {}).get(column) for i in ids])
                row[f"volume_{column}_mean"] = stats["mean"]
                row[f"volume_{column}_{'max' if column == 'hd95_mm' else 'worst'}"] = stats["max" if column == "hd95_mm" else "worst"]
            rows.append(row)
    return rows


def generalization(cfg) -> dict:
    """Generate the cases, score both models, write the matrix and the worst cases' pictures into
    ``cfg.output``; returns the report. The keys are those of conf/benchmark_generalization.yaml."""
    from benchmarks.generalization_pictures import (
        worst_mip_picture,
        worst_volume_picture,
    )

    started = time.perf_counter()
    workdir, output = Path(cfg.workdir), Path(cfg.output)
    dataset = Path(cfg.data_dir) / f"{cfg.preset}-seed{cfg.seed}-n{cfg.n_cases}"
    records = make_cases(dataset, cfg.n_cases, cfg.seed, SyntheticConfig.preset(cfg.preset), cfg.get("workers"))
    mip = score(cfg.ckpt_path, dataset, workdir / "mip")
    volume = score(cfg.volume_ckpt_path, dataset, workdir / "volume") if cfg.get("volume_ckpt_path") else None
    output.mkdir(parents=True, exist_ok=True)
    pictures = {"mip": worst_mip_picture(cfg.ckpt_path, dataset, mip, output / "generalization_worst_mip.png")}
    if volume:
        pictures["volume"] = worst_volume_picture(dataset, volume, cfg.volume_ckpt_path, output / "generalization_worst_volume.png")
    report = {
        "mip_checkpoint": str(cfg.ckpt_path),
        "volume_checkpoint": str(cfg.get("volume_ckpt_path")),
        "cases": f"preset={cfg.preset} seed={cfg.seed} n={cfg.n_cases}",
        "matrix": matrix(records, mip, volume),
        "worst": pictures,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (output / "generalization.json").write_text(json.dumps(report, indent=2) + "\n")
    (output / "generalization.md").write_text(markdown(report))
    print(markdown(report))
    return report


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def findings(rows: list[dict], volume: bool, floor: float = 0.95) -> list[str]:
    """What the matrix says, in sentences written from its figures: the footprint against the MIP
    model, and the rows whose mean falls below ``floor``."""
    overall = rows[0]
    lines = ["## Reading it", ""]
    if volume and overall.get("volume_footprint_dice_mean") is not None:
        better_mean = overall["volume_footprint_dice_mean"] > overall["mip_dice_mean"]
        better_worst = overall["volume_footprint_dice_worst"] > overall["mip_dice_worst"]
        verdict = {
            (True, True): "For a MIP mask, segment the volume with the 3-D model and project its mask along S (the "
                          "`footprint` of the 3-D model): it is the better MIP mask. `scripts/predict.py` with the 3-D "
                          "model writes it as `<case>_footprint.png`.",
            (True, False): "The 3-D model's footprint is the better MIP mask on average, the MIP model in the worst case.",
            (False, True): "The MIP model is the better MIP mask on average, the 3-D model's footprint in the worst case.",
            (False, False): "The MIP model is the better MIP mask here.",
        }[(better_mean, better_worst)]
        lines.append(
            f"- Over all cases the 3-D model's footprint scores {overall['volume_footprint_dice_mean']:.3f} mean and "
            f"{overall['volume_footprint_dice_worst']:.3f} worst against the MIP truth; the MIP model "
            f"{overall['mip_dice_mean']:.3f} and {overall['mip_dice_worst']:.3f}. " + verdict
        )
    weak = [f"{row['group']} {row['value']} ({row['mip_dice_mean']:.3f})" for row in rows[1:]
            if row["mip_dice_mean"] is not None and row["mip_dice_mean"] < floor]
    lines.append(f"- Rows where the MIP model's mean is below {floor}: " + (", ".join(weak) if weak else "none") + ".")
    if volume:
        weak = [f"{row['group']} {row['value']} ({row['volume_dice_mean']:.3f})" for row in rows[1:]
                if row.get("volume_dice_mean") is not None and row["volume_dice_mean"] < floor]
        lines.append(f"- Rows where the 3-D model's mean is below {floor}: " + (", ".join(weak) if weak else "none") + ".")
    return lines


def markdown(report: dict) -> str:
    """The page: what was scored, the matrix, the worst cases."""
    volume = report["volume_checkpoint"] not in (None, "None")
    head = "| group | value | cases | MIP Dice mean | MIP Dice worst |"
    rule = "| --- | --- | --- | --- | --- |"
    if volume:
        head += (" 3-D Dice mean | 3-D Dice worst | HD95 mm mean | HD95 mm max | 3-D Dice skull-base third |"
                 " middle third | vertex third | 3-D footprint Dice mean | footprint worst |")
        rule += " --- |" * 9
    lines = [
        "# Generalization matrix",
        "",
        f"MIP model `{report['mip_checkpoint']}`" + (f", 3-D model `{report['volume_checkpoint']}`" if volume else "")
        + f"; cases: {report['cases']} (a seed no training uses). Produced by "
        "`python scripts/benchmark_generalization.py ckpt_path=MIP_CKPT volume_ckpt_path=VOLUME_CKPT` "
        f"(conf/benchmark_generalization.yaml) in {report['seconds']:.0f} s.",
        "",
        "Each row groups the cases by one property; \"3-D footprint\" is the 3-D model's mask projected along S "
        "(the union over axial slices) and scored against the MIP truth, as the MIP model is. The thirds split "
        "each true brain's S extent: skull base, middle, vertex.",
        "",
        head,
        rule,
    ]
    for row in report["matrix"]:
        cells = [row["group"], row["value"], str(row["cases"]), _cell(row["mip_dice_mean"]), _cell(row["mip_dice_worst"])]
        if volume:
            cells += [_cell(row.get("volume_dice_mean")), _cell(row.get("volume_dice_worst")),
                      _cell(row.get("volume_hd95_mm_mean"), 2), _cell(row.get("volume_hd95_mm_max"), 2),
                      _cell(row.get("volume_dice_inferior_third_mean")), _cell(row.get("volume_dice_middle_third_mean")),
                      _cell(row.get("volume_dice_superior_third_mean")), _cell(row.get("volume_footprint_dice_mean")),
                      _cell(row.get("volume_footprint_dice_worst"))]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *findings(report["matrix"], volume), "", "## Worst cases", ""]
    for mode, picture in report["worst"].items():
        lines += [f"{picture['caption']}", "", f"![worst {mode} case]({Path(picture['path']).name})", ""]
    return "\n".join(lines)
