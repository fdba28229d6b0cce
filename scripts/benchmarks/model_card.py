"""One model's scores preset by preset (``python scripts/benchmark_models.py``): the model card's tables.

The checkpoint is scored on its own test split and on cases drawn with another seed from one or
more presets (``SyntheticConfig.wide()`` by default), each as ``scripts/evaluate.py`` scores it
(2-D for a MIP model, 3-D for a slice model); the figure is the drop in mean Dice from the first
row to the last. A shipped model (``ckpt_path=pretrained:volume``) has no training run, so its
first row is held-out cases of the default preset (``preset=[default,wide]``). Written to
docs/<name>.{md,json} (``name=generalization`` by default).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.common import as_names, compose_conf
from brainseg.evaluation.evaluate import evaluate
from brainseg.pretrained import PREFIX, file_sha256, resolve_checkpoint
from brainseg.synthetic import SyntheticConfig, synthesize_dataset

# The summary columns, from evaluate's "<score>/mean" (2-D scores have IoU, 3-D ones a volume difference).
SCORES = {"dice": "Dice (mean)", "iou": "IoU (mean)", "hd95_mm": "HD95 mm (mean)", "volume_difference_ml": "volume difference mL (mean)"}


def score(ckpt_path: str, output_dir: Path, overrides: list[str]) -> dict:
    """The metrics ``scripts/evaluate.py ckpt_path=... <overrides>`` reports; its files go to ``output_dir``."""
    return evaluate(compose_conf("evaluate", [f"ckpt_path={ckpt_path}", f"paths.output_dir={output_dir}", *overrides]))


def has_test_split(ckpt_path: str) -> bool:
    """Whether the checkpoint sits in a training run folder whose split has test cases (a shipped model does not)."""
    if str(ckpt_path).startswith(PREFIX):
        return False
    split = Path(ckpt_path).resolve().parent.parent / "split.json"
    return split.is_file() and bool(json.loads(split.read_text()).get("test"))


def generalization(cfg) -> dict:
    """Generate the cases of each preset, score every set and write ``<name>.{md,json}`` into
    ``cfg.output``; returns the report. The keys are those of conf/benchmark_models.yaml."""
    workdir = Path(cfg.workdir)
    presets = as_names(cfg.preset)
    started = time.perf_counter()
    own_split = has_test_split(cfg.ckpt_path) if cfg.in_distribution == "auto" else bool(cfg.in_distribution)
    results = {"in_distribution": score(cfg.ckpt_path, workdir / "test_split", ["split=test"])} if own_split else {}
    for preset in presets:
        dataset = Path(cfg.data_dir) / f"{preset}-seed{cfg.seed}-n{cfg.n_cases}"
        synthesize_dataset(dataset, cfg.n_cases, cfg.seed, SyntheticConfig.preset(preset))
        results[preset] = score(cfg.ckpt_path, workdir / preset, [f"data.root={dataset}"])
    reference, shifted = next(iter(results)), list(results)[-1]
    own, other = results[reference], results[shifted]
    report = {
        "checkpoint": str(cfg.ckpt_path),
        "sha256": file_sha256(resolve_checkpoint(cfg.ckpt_path)),
        "shifted_data": f"preset={','.join(presets)} seed={cfg.seed} n={cfg.n_cases}",
        "scores": {name: {score: values.get(f"{score}/mean") for score in SCORES if f"{score}/mean" in values} for name, values in results.items()},
        "dice_drop": own["dice/mean"] - other["dice/mean"],
        "dice_min_shifted": other.get("dice/min"),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if reference != "in_distribution":
        report["reference"] = reference
    output = Path(cfg.output)
    output.mkdir(parents=True, exist_ok=True)
    (output / f"{cfg.name}.md").write_text(markdown(report))
    (output / f"{cfg.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(report))
    return report


def markdown(report: dict) -> str:
    """The page: which checkpoint and data, a table of mean scores, the Dice drop."""
    columns = [name for name in SCORES if any(name in values for values in report["scores"].values())]
    wide = "wide" in report["shifted_data"].split(" ")[0].removeprefix("preset=").split(",")
    lines = [
        "# Model scores: held-out synthetic cases of the training randomization and of wider ones",
        "",
        f"Checkpoint: `{report['checkpoint']}`; shifted data: {report['shifted_data']}"
        + (" (`SyntheticConfig.wide()`: larger spread of spacing, matrix, pose, orientation, rescale, anatomy)." if wide else "."),
        "Produced by `python scripts/benchmark_models.py ckpt_path=...` "
        "(options in conf/benchmark_models.yaml).",
        "",
        "| cases | " + " | ".join(SCORES[name] for name in columns) + " |",
        "| --- |" + " --- |" * len(columns),
    ]
    for name, values in report["scores"].items():
        cells = [f"{values[c]:.2f}" if c in ("hd95_mm", "volume_difference_ml") else f"{values[c]:.4f}" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    rows = list(report["scores"])
    drop = f"Dice drop from {rows[0]} to {rows[-1]}" if "reference" in report else "Dice drop"
    lines += ["", f"{drop}: **{report['dice_drop']:.4f}**; worst shifted case Dice {report['dice_min_shifted']:.4f}.", ""]
    return "\n".join(lines)
