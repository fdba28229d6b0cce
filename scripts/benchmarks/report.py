"""Benchmark results as ``docs/benchmarks.json`` (everything) and ``docs/benchmarks.md`` (the tables).

Each row of the main table is one figure, the figure it is compared with (measured in the same
run), their ratio, the target and whether it is met.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from benchmarks import memory
from benchmarks.notes import notes, race_epochs
from benchmarks.results import SECTIONS, TARGETS, Results

VERSION_ORDER = ("python", "torch", "lightning", "numpy", "nibabel", "monai", "isal")


def _s(seconds) -> str:
    if seconds is None:
        return "-"
    return f"{1000 * seconds:.0f} ms" if seconds < 1 else (f"{seconds:.2f} s" if seconds < 100 else f"{seconds:.0f} s")


def _x(value) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _met(ok) -> str:
    return "-" if ok is None else ("yes" if ok else "**no**")


def _loads(section: dict) -> str:
    load = section.get("load_average") or {}
    return "/".join(f"{load[k][0]:.2f}" for k in ("before", "after") if load.get(k)) or "-"


def _cores(section: dict) -> str:
    value = section.get("others_cores")
    return "-" if value is None else f"{value:.2f}"


def _row(*cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _preprocessing_rows(p: dict) -> list[str]:
    shape = "x".join(str(n) for n in p["shape"])
    floor_name = f"decompression only ({p['decoder']})"
    memory = p["memory"]
    folder = p["folder"]
    rows = [
        _row(f"MIP of a {shape} int16 .nii.gz ({p['file_mib']:.0f} MiB), wall (CPU)",
             f"{_s(p['ours']['wall_s'])} ({_s(p['ours']['cpu_s'])})",
             f"{floor_name}: {_s(p['floor']['wall_s'])} ({_s(p['floor']['cpu_s'])})",
             _x(p["ours_vs_floor"]), f"<= {TARGETS['floor']}x", _met(p["ours_vs_floor"] <= TARGETS["floor"])),
        _row("same MIP", _s(p["ours"]["wall_s"]), f"stdlib zlib decompression only: {_s(p['floor_zlib']['wall_s'])}",
             _x(p["ours_vs_floor_zlib"]), "-", "-"),
        _row("naive MIP: get_fdata() float64, np.max, min-max uint8", _s(p["naive"]["wall_s"]), f"ours: {_s(p['ours']['wall_s'])}",
             _x(p["naive_vs_ours"]) + " slower", f">= {TARGETS['naive']}x", _met(p["naive_vs_ours"] >= TARGETS["naive"])),
        _row("MIP peak memory (rise over the process after imports)", f"{memory['ours']['rise_mib']:.0f} MiB",
             f"raw int16 volume: {p['raw_mib']:.0f} MiB", _x(p["ours_memory_vs_raw"]), f"<= {TARGETS['memory']}x",
             _met(p["ours_memory_vs_raw"] <= TARGETS["memory"])),
        _row("naive MIP peak memory", f"{memory['naive']['rise_mib']:.0f} MiB", f"raw volume: {p['raw_mib']:.0f} MiB",
             _x(p["naive_memory_vs_raw"]), "-", "-"),
    ]
    if len(folder) > 1:
        first, last = folder[0], folder[-1]
        rows.append(_row(
            f"folder preprocessing ({last['cases']} cases, MIP + mask + PNG cache), {last['workers']} workers",
            f"{last['cases_per_s']:.2f} cases/s", f"1 worker: {first['cases_per_s']:.2f} cases/s",
            _x(p["folder_scaling"]), f"all {p['cores']} cores used", _met(last["workers"] >= p["cores"]),
        ))
    return rows


def _training_rows(t: dict) -> list[str]:
    loop = t["loop"]
    ours, bf16, reference = loop["ours fp32"], loop["ours bf16-mixed"], loop.get("monai fp32")
    target = t["target_dice"]
    rows = [
        _row(f"training loop, ours fp32 ({t['image_size']} px, batch {t['batch_size']}, {t['threads']} threads)",
             f"{ours['images_per_s']:.1f} images/s",
             f"MONAI UNet fp32: {reference['images_per_s']:.1f} images/s" if reference else "MONAI not installed",
             _x(t["ours_vs_reference_images_per_s"]), f">= {TARGETS['reference']}x",
             _met(None if reference is None else t["ours_vs_reference_images_per_s"] >= TARGETS["reference"])),
        *_time_to_target_rows(t, ours, reference),
        _row("training loop, ours bf16-mixed", f"{bf16['images_per_s']:.1f} images/s", f"ours fp32: {ours['images_per_s']:.1f} images/s",
             _x(t["bf16_vs_fp32_images_per_s"]), "-", "-"),
        _row(f"time to val/dice >= {target}, ours bf16-mixed", _reach(bf16), f"ours fp32: {_reach(ours)}", "-", "-", "-"),
    ]
    runs = t.get("default_run")
    if runs:
        ours_run, classic_run = runs["ours"], runs["unet_classic"]
        rows.append(_row(
            "default `python train.py` (early stopping, best checkpoint), training wall time and test Dice",
            f"{_s(ours_run['train_seconds'])}, test Dice {ours_run['test_dice']:.4f}",
            f"model=unet_classic: {_s(classic_run['train_seconds'])}, test Dice {classic_run['test_dice']:.4f}",
            _x(t["default_run_time_vs_classic"]),
            f"<= {TARGETS['default_run']:.2f}x, Dice not lower (by more than {TARGETS['same_dice']})",
            _met(_at_most(t["default_run_time_vs_classic"], TARGETS["default_run"])
                 and ours_run["test_dice"] >= classic_run["test_dice"] - TARGETS["same_dice"]),
        ))
    return rows


def _time_to_target_rows(t: dict, ours: dict, reference: dict | None) -> list[str]:
    """Ours against MONAI to the target: the loop's one run, and the medians over seeds that carry
    the target when the race ran (older results have only the one run, which carried it then)."""
    label, race = f"time to val/dice >= {t['target_dice']}, ours fp32", t.get("race")
    versus = f"MONAI UNet fp32: {_reach(reference)}" if reference else "-"
    ratio, limit = t["ours_vs_reference_time_to_target"], TARGETS["time_to_target"]
    if not race:
        return [_row(label, _reach(ours), versus, _x(ratio), f"<= {limit}x", _met(_at_most(ratio, limit)))]
    median_ratio = t["ours_vs_reference_median_time_to_target"]
    mine, theirs = race["ours fp32"], race["monai fp32"]
    return [
        _row(f"{label}, seed {mine['seeds'][0]} (one run)", _reach(ours), versus, _x(ratio), "-", "-"),
        _row(f"{label}, median of {len(mine['seeds'])} seeds", _median_reach(mine), f"MONAI UNet fp32: {_median_reach(theirs)}",
             _x(median_ratio), f"<= {limit}x", _met(_at_most(median_ratio, limit))),
    ]


def _median_reach(racer: dict) -> str:
    median = racer["median_seconds_to_target"]
    return f"{'not reached' if median is None else _s(median)} (epochs {race_epochs(racer)})"


def _at_most(value, limit) -> bool | None:
    return None if value is None else value <= limit


def _candidate_table(t: dict) -> list[str]:
    """Every network raced in the same loop: its size, its speed here, and how soon it reaches the target."""
    lines = [
        f"| Network (training loop, fp32) | Parameters | GFLOP/image | Images/s | Time to val/dice >= {t['target_dice']} | Best val/dice |",
        "|---|---|---|---|---|---|",
    ]
    parameters = t.get("parameters", {})
    for name, summary in t["loop"].items():
        if not name.endswith("fp32"):
            continue
        net = name.removesuffix(" fp32").removesuffix(" channels_last").removesuffix(" contiguous")  # same network, other layout
        count = parameters.get(net)
        lines.append(_row("ours (LeanUNet, default) fp32" if name == "ours fp32" else name,
                          "-" if count is None else f"{count / 1000:.0f} k",
                          "-" if net not in t["gflop_per_image"] else f"{t['gflop_per_image'][net]:.3f}",
                          f"{summary['images_per_s']:.0f}", _reach(summary), f"{summary['best_score'] or 0:.3f}"))
    return lines


def _reach(summary: dict | None) -> str:
    if summary is None:
        return "-"
    if summary["seconds_to_target"] is None:
        return f"not reached in {_s(summary['train_seconds'])} (best {summary['best_score'] or 0:.3f})"
    return f"{_s(summary['seconds_to_target'])}, epoch {summary['epochs_to_target']} (Dice {summary['final_score']:.3f})"


def _inference_rows(i: dict) -> list[str]:
    mip = i["mip_case"]
    rows = [
        _row("MIP prediction per case (project + predict + 3 PNGs)", _s(mip["total"]),
             f"project {_s(mip['project'])}, predict {_s(mip['predict'])}, write {_s(mip['write'])}",
             _x(mip["total"] / TARGETS["mip_case_s"]) + " of target", f"<= {TARGETS['mip_case_s']:.0f} s",
             _met(mip["total"] <= TARGETS["mip_case_s"])),
        _row("MIP prediction peak memory (rise; whole process)", f"{i['mip_case_peak_rise_mib']:.0f} MiB",
             f"process peak {i['mip_case_process_peak_mib']:.0f} MiB", "-", "-", "-"),
        _row("network forward, 1 image", f"{1000 * i['forward']['wall_s']:.0f} ms", "-", "-", "-", "-"),
    ]
    startup = i.get("startup")
    if startup:
        rows += [
            _row("`python scripts/predict.py --help`, fresh process", _s(startup["help_s"]), "-",
                 _x(startup["help_s"] / TARGETS["help_s"]) + " of target", f"<= {TARGETS['help_s']:.0f} s",
                 _met(startup["help_s"] <= TARGETS["help_s"])),
            _row("`python scripts/predict.py` on the volume, MIP checkpoint, whole process", _s(startup["mip_case_s"]),
                 f"in-process: {_s(mip['total'])}", "-", "-", "-"),
        ]
        if startup.get("volume_case_s"):
            rows.append(_row("`python scripts/predict.py` on the volume, 3-D checkpoint, whole process",
                             _s(startup["volume_case_s"]), "-", "-", "-", "-"))
    volume = i.get("volume")
    if volume:
        trained = "" if volume["trained"] else " (untrained network: see notes)"
        stages = ", ".join(f"{k} {_s(volume[k])}" for k in ("read", "infer", "postprocess", "write") if k in volume)
        rows += [
            _row(f"3-D mask of the same volume end to end{trained}", f"{_s(volume['total'])} (CPU {_s(volume['cpu_s'])})", stages,
                 _x(volume["total"] / volume["target_s"]) + " of target", f"<= {volume['target_s']:g} s",
                 _met(volume["total"] <= volume["target_s"])),
            _row("3-D mask peak memory (rise; whole process)", f"{volume['peak_rise_mib']:.0f} MiB",
                 f"process peak {volume['process_peak_mib']:.0f} MiB", "-", "-", "-"),
        ]
    return rows


def _loading_rows(l: dict) -> list[str]:
    rows = []
    for run in l["runs"]:
        share = run["wait_share"]
        rows.append(_row(f"waiting for data, num_workers={run['num_workers']}",
                         f"{100 * share:.1f}% of each step ({run['wait_ms_per_step']:.0f} ms)",
                         f"step {_s(run['step_s'])}, {run['images_per_s']:.1f} images/s", "-",
                         f"< {100 * TARGETS['wait_share']:.0f}%", _met(share < TARGETS["wait_share"])))
    return rows


def _step_table(t: dict) -> list[str]:
    step = t["step"]
    base = step["ours fp32"]["images_per_s"]
    lines = [
        "| Variant (bare training step) | Batch | Threads | Step | Images/s | vs ours fp32 | First step |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(step, key=lambda n: n != "ours fp32"):  # the baseline row first
        s = step[name]
        lines.append(_row(name, s["batch_size"], s["threads"], _s(s["step_s"]), f"{s['images_per_s']:.1f}",
                          _x(s["images_per_s"] / base), _s(s["first_step_s"])))
    flops = ", ".join(f"{name} {value:.2f}" for name, value in t["gflop_per_image"].items())
    lines += ["", f"GFLOP per image (forward + backward): {flops}."]
    return lines


def carry_over(results: Results, previous: Results) -> None:
    """Sections measured by their own script (memory: ``benchmark_memory.py``) stay on the page
    when ``benchmark.py`` measures its sections again."""
    for name, section in previous.sections.items():
        if name not in SECTIONS:
            results.sections.setdefault(name, section)


def markdown(results: Results) -> str:
    """The benchmark page: conditions, the main table, the step-variant table."""
    m, v = results.machine, results.versions
    sections = results.sections
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python scripts/benchmark.py [only=[SECTION,...]] [volume_checkpoint=CKPT]` (options in "
        "conf/benchmark.yaml; 6 to 10 minutes on 2 idle cores; the training reference needs MONAI: `pip install monai`, "
        "the optional extra `bench`). Every ratio compares two figures measured in the same run. Wall times are the "
        "fastest of the repeats; CPU time (all threads of the process) is given where it helps.",
        "",
        f"- Date: {results.date}",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; SIMD: {', '.join(m['simd']) or 'none'}; "
        f"bf16 matrix hardware: {'yes' if m['bf16_hardware'] else 'no'}",
        "- Versions: " + ", ".join(f"{k} {v[k]}" for k in VERSION_ORDER if v.get(k)),
        f"- Load average (1, 5, 15 min): {results.load_before} before, {results.load_after} after; "
        "1-minute load at the start/end of each section: "
        + ", ".join(f"{name} {_loads(sections[name])}" for name in SECTIONS if name in sections),
        "- Cores kept busy by other processes, on average over each section (from /proc/stat minus this run's "
        "own CPU time): " + ", ".join(f"{name} {_cores(sections[name])}" for name in SECTIONS if name in sections),
        "",
        "| Figure | Measured | Compared with | Ratio | Target | Met |",
        "|---|---|---|---|---|---|",
    ]
    if "preprocessing" in sections:
        lines += _preprocessing_rows(sections["preprocessing"])
    if "training" in sections:
        lines += _training_rows(sections["training"])
    if "inference" in sections:
        lines += _inference_rows(sections["inference"])
    if "loading" in sections:
        lines += _loading_rows(sections["loading"])
    if "training" in sections:
        lines += ["", "## Network candidates", ""] + _candidate_table(sections["training"])
        lines += ["", "## Training step variants", ""] + _step_table(sections["training"])
    if "memory" in sections:  # measured on its own: python scripts/benchmark_memory.py
        lines += [""] + memory.markdown(sections["memory"])
    return "\n".join(lines) + "\n"


def read(json_path: Path) -> Results:
    """Results written by :func:`write` (to render them again without measuring)."""
    return Results(**json.loads(Path(json_path).read_text()))


def write(results: Results, output_dir: Path) -> tuple[Path, Path]:
    """Write ``benchmarks.json`` and ``benchmarks.md`` (tables and notes) into ``output_dir``."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = output_dir / "benchmarks.json", output_dir / "benchmarks.md"
    json_path.write_text(json.dumps(asdict(results), indent=2, default=str) + "\n")
    md_path.write_text(markdown(results) + "\n" + notes(results))
    return json_path, md_path
