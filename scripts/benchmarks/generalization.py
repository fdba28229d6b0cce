"""How far a model trained on the default synthetic data carries (``python scripts/benchmark_generalization.py``).

The checkpoint is scored on its own test split and on cases drawn with another seed from a
wider randomization (``SyntheticConfig.wide()`` by default), each as ``scripts/evaluate.py``
scores it; the figure is the drop in mean Dice. Written to docs/generalization.{md,json}.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.common import compose_conf
from brainseg.evaluation.evaluate import evaluate
from brainseg.synthetic import SyntheticConfig, synthesize_dataset

SCORES = ("dice", "iou", "hd95_mm")  # the summary columns, from evaluate's "<score>/mean"


def score(ckpt_path: str, output_dir: Path, overrides: list[str]) -> dict:
    """The metrics ``scripts/evaluate.py ckpt_path=... <overrides>`` reports; its files go to ``output_dir``."""
    return evaluate(compose_conf("evaluate", [f"ckpt_path={ckpt_path}", f"paths.output_dir={output_dir}", *overrides]))


def generalization(cfg) -> dict:
    """Generate the shifted cases, score both sets and write ``generalization.{md,json}`` into
    ``cfg.output``; returns the report. The keys are those of conf/benchmark_generalization.yaml."""
    workdir = Path(cfg.workdir)
    dataset = Path(cfg.data_dir) / f"{cfg.preset}-seed{cfg.seed}-n{cfg.n_cases}"
    started = time.perf_counter()
    synthesize_dataset(dataset, cfg.n_cases, cfg.seed, SyntheticConfig.preset(cfg.preset))
    results = {
        "in_distribution": score(cfg.ckpt_path, workdir / "test_split", ["split=test"]),
        cfg.preset: score(cfg.ckpt_path, workdir / cfg.preset, [f"data.root={dataset}"]),
    }
    own, other = results["in_distribution"], results[cfg.preset]
    report = {
        "checkpoint": str(cfg.ckpt_path),
        "shifted_data": f"preset={cfg.preset} seed={cfg.seed} n={cfg.n_cases}",
        "scores": {name: {score: values.get(f"{score}/mean") for score in SCORES} for name, values in results.items()},
        "dice_drop": own["dice/mean"] - other["dice/mean"],
        "dice_min_shifted": other.get("dice/min"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / "generalization.md").write_text(markdown(report))
    (output / "generalization.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The page: which checkpoint and data, a table of mean scores, the Dice drop."""
    lines = [
        "# Generalization: default synthetic training vs. wider randomization",
        "",
        f"Checkpoint: `{report['checkpoint']}`; shifted data: {report['shifted_data']}"
        + (" (`SyntheticConfig.wide()`: larger spread of spacing, matrix, pose, orientation, rescale, anatomy)."
           if report["shifted_data"].startswith("preset=wide ") else "."),
        "Produced by `python scripts/benchmark_generalization.py ckpt_path=...` "
        "(options in conf/benchmark_generalization.yaml).",
        "",
        "| cases | Dice (mean) | IoU (mean) | HD95 mm (mean) |",
        "| --- | --- | --- | --- |",
    ]
    for name, values in report["scores"].items():
        lines.append(f"| {name} | {values['dice']:.4f} | {values['iou']:.4f} | {values['hd95_mm']:.2f} |")
    lines += ["", f"Dice drop: **{report['dice_drop']:.4f}**; worst shifted case Dice {report['dice_min_shifted']:.4f}.", ""]
    return "\n".join(lines)
