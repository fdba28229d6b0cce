"""Memory over many cases (``python scripts/benchmark_memory.py``): does a long predict or evaluate grow?

For each mode (a MIP checkpoint and a slice checkpoint) and each task (``predict()`` and
``evaluate()``, as ``scripts/predict.py`` and ``scripts/evaluate.py`` run them), the task runs in
a fresh process over a folder of ``small`` cases and, in another, over ``large`` cases. The
figures are each process's peak resident memory (VmHWM, the whole process: Python, torch and
the task), their ratio, and in the large run the resident memory after every case (its growth
per case, fitted over the cases after the small count, is what a leak would show).

The cases are ``distinct`` synthetic heads (:mod:`brainseg.synthetic`, default preset), each
hard-linked under many names: cheap on disk and to make, and every case is still read,
projected or segmented, scored and written as if new. The networks are small LeanUNets
(``channels``) that segment the head, set by hand (:func:`make_checkpoint`): what is measured is
whether memory grows with the cases, not a trained network's accuracy.
"""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

from benchmarks.common import (
    compose_conf,
    in_fresh_process,
    load_average,
    now,
    peak_mib,
    rss_mib,
)

MODES = ("mip", "slices")
TASKS = ("predict", "evaluate")
PER_CASE_CALL = {("predict", "mip"): "run", ("predict", "slices"): "run",
                 ("evaluate", "mip"): "predict", ("evaluate", "slices"): "segment"}  # called once per case
TARGET_RATIO = 1.10  # peak after the large run / peak after the small run


def make_folder(root: Path, cases: int, distinct: int, synthetic: dict | None = None, seed: int = 7) -> Path:
    """``cases`` cases in the 'cta' layout, hard links to ``distinct`` synthetic heads (default preset,
    with the ``synthetic`` fields of :class:`SyntheticConfig` changed); reused when present."""
    from brainseg.synthetic import (
        SyntheticConfig,
        case_paths,
        case_seed,
        generate_case,
        write_case,
    )

    changes = {name: tuple(value) if isinstance(value, (list, tuple)) else value for name, value in (synthetic or {}).items()}
    config = replace(SyntheticConfig.preset("default"), **changes)
    digest = hashlib.sha1(repr(sorted(changes.items())).encode()).hexdigest()[:8]
    source = Path(root).parent / f"distinct-seed{seed}-{digest}"
    sources = []
    for index in range(distinct):
        if not case_paths(source, f"head{index}")[0].exists():
            write_case(generate_case(case_seed(seed, index), config), source, f"head{index}")
        sources.append(case_paths(source, f"head{index}"))
    for index in range(cases):
        for source_path, target in zip(sources[index % distinct], case_paths(root, f"case{index:03d}")):
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.link(source_path, target)
    return Path(root)


def make_checkpoint(path: Path, mode: str, channels: list[int]) -> Path:
    """A LeanUNet checkpoint of ``mode`` (the default config's preprocessing) whose output is the head.

    The network is untrained but for its last layer, set by hand to read the input image alone:
    every pixel above about -50 HU (soft tissue, bone) is "brain". Its masks have the size and
    shape of a head, so post-processing and scoring work as on real masks, not on noise (which
    is far slower to score and unlike anything a trained network gives). The checkpoint holds what
    :mod:`brainseg.checkpoint` reads (no Lightning state).
    """
    import torch

    from brainseg.checkpoint import save_network
    from brainseg.data.preprocessing import Preprocessing
    from brainseg.models.lean_unet import LeanUNet

    torch.manual_seed(0)
    if mode == "mip":
        preprocessing = Preprocessing("mip", (-100.0, 1900.0), 128)
    else:
        preprocessing = Preprocessing("slices", (-100.0, 1000.0), 128, spacing_mm=2.0)
    net = LeanUNet(1, 1, list(channels))
    with torch.no_grad():  # head: logits of the 4 sub-pixels from the 4 space-to-depth image channels
        net.head.weight.zero_()
        for subpixel in range(4):
            net.head.weight[subpixel, channels[0] + subpixel, 1, 1] = 100.0
        low, high = preprocessing.hu_window
        net.head.bias.fill_(-100.0 * (-50.0 - low) / (high - low))
    return save_network(net, preprocessing, path)


def trace(task: str, mode: str, ckpt_path: str, folder: str, output: str, threads: int = 2) -> dict:
    """Run ``task`` over ``folder`` in this process; resident and peak MiB before each case and at the end.

    Run by :func:`measure` in a fresh process. The predictor's per-case call is wrapped to read
    the memory; nothing else changes. (A MIP evaluation calls it again for the few cases its
    report shows: they add the last readings before the end.)
    """
    import torch

    from brainseg.evaluation import evaluate as evaluating
    from brainseg.inference import predict as predicting

    torch.set_num_threads(threads)
    rss, peaks = [], []
    module = predicting if task == "predict" else evaluating
    load = predicting.load_predictors  # predict and evaluate both load through brainseg.inference.predict

    def load_instrumented(*args, **kwargs):
        predictor = load(*args, **kwargs)
        call = getattr(predictor, PER_CASE_CALL[(task, mode)])

        def per_case(*call_args, **call_kwargs):
            rss.append(rss_mib())
            peaks.append(peak_mib())
            return call(*call_args, **call_kwargs)

        setattr(predictor, PER_CASE_CALL[(task, mode)], per_case)  # on the instance: isinstance() still holds
        return predictor

    overrides = [f"ckpt_path={ckpt_path}"]
    if task == "predict":
        cfg = compose_conf("predict", [*overrides, f"input={folder}", f"output={output}"])
    else:
        cfg = compose_conf("evaluate", [*overrides, f"data.root={folder}", f"paths.output_dir={output}",
                                        f"data.cache_dir={output}/cache", "data.preprocess_workers=1"])
    start = time.perf_counter()
    with mock.patch.object(predicting, "load_predictors", load_instrumented):
        getattr(module, task)(cfg)
    rss.append(rss_mib())
    peaks.append(peak_mib())
    return {"rss_mib": rss, "peak_mib": peaks, "seconds": time.perf_counter() - start}


def growth_per_case(rss: list[float], start: int) -> float:
    """MiB per case: least-squares slope of resident memory after case ``start`` on."""
    import numpy as np

    values = np.asarray(rss[start:], dtype=float)
    if len(values) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(values)), values, 1)[0])


def measure(workdir: Path, small: int, large: int, distinct: int, channels: list[int], threads: int = 2,
            modes=MODES, tasks=TASKS, synthetic: dict | None = None) -> dict:
    """Every (mode, task): peak MiB over ``small`` and over ``large`` cases, each in a fresh process."""
    workdir = Path(workdir)
    folders = {n: make_folder(workdir / f"cases{n}", n, distinct, synthetic) for n in (small, large)}
    section = {"date": now(), "small": small, "large": large, "distinct": distinct, "channels": list(channels), "threads": threads,
               "target_ratio": TARGET_RATIO, "load_average": {"before": load_average()}, "runs": {}}
    for mode in modes:
        checkpoint = make_checkpoint(workdir / f"untrained_{mode}.ckpt", mode, channels)
        for task in tasks:
            peaks, figures = {}, {}
            for n, folder in folders.items():
                output = workdir / "runs" / f"{task}_{mode}_{n}"
                measured = in_fresh_process(__name__, "trace", timeout_s=None, task=task, mode=mode, ckpt_path=str(checkpoint),
                                            folder=str(folder), output=str(output), threads=threads)
                peaks[n], figures[n] = measured["peak_mib"], measured["result"]
            rss = figures[large]["rss_mib"]
            section["runs"][f"{task} {mode}"] = {
                "peak_small_mib": peaks[small],
                "peak_large_mib": peaks[large],
                "ratio": peaks[large] / peaks[small],
                "met": peaks[large] <= TARGET_RATIO * peaks[small],
                "growth_kib_per_case": 1024 * growth_per_case(rss, small),
                "seconds_per_case": figures[large]["seconds"] / large,
                "rss_large_mib": [round(value, 1) for value in rss],
            }
            run = section["runs"][f"{task} {mode}"]
            print(f"{task:8s} {mode:6s} peak {peaks[small]:6.0f} MiB after {small} cases, {peaks[large]:6.0f} MiB after {large} "
                  f"({run['ratio']:.3f}x); growth {run['growth_kib_per_case']:+.1f} KiB/case; {run['seconds_per_case']:.2f} s/case",
                  flush=True)
    section["load_average"]["after"] = load_average()
    return section


def markdown(section: dict) -> list[str]:
    """The benchmark page's memory section."""
    small, large = section["small"], section["large"]
    lines = [
        "## Memory over many cases",
        "",
        f"Generated by `python scripts/benchmark_memory.py` ({section['date']}; {section['threads']} torch threads; load "
        f"{'/'.join(str(section['load_average'][k][0]) for k in ('before', 'after'))}). Each task runs as its script does, "
        f"in a fresh process, over {small} and over {large} cases ({section['distinct']} synthetic heads of the default "
        f"preset, hard-linked; a LeanUNet with channels {section['channels']} set by hand to segment the head); peak "
        "resident memory of the whole "
        "process (Python, torch and the task). Growth: slope of "
        f"the resident memory after each case of the {large}-case run, from case {small} on.",
        "",
        f"| Task, mode | Peak after {small} cases | Peak after {large} cases | Ratio | Target | Met | Growth per case | Time per case |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, run in section["runs"].items():
        lines.append(f"| {name} | {run['peak_small_mib']:.0f} MiB | {run['peak_large_mib']:.0f} MiB | {run['ratio']:.3f}x | "
                     f"<= {section['target_ratio']:.2f}x | {'yes' if run['met'] else '**no**'} | "
                     f"{run['growth_kib_per_case']:+.1f} KiB | {1000 * run['seconds_per_case']:.0f} ms |")
    return lines


def benchmark_memory(cfg) -> dict:
    """Measure, print, and with ``cfg.output`` add the section to ``<output>/benchmarks.json`` and
    render ``benchmarks.md`` again (the other sections' figures stay as they are). Keys: conf/benchmark_memory.yaml."""
    from omegaconf import OmegaConf

    from benchmarks import report

    synthetic = OmegaConf.to_container(cfg.synthetic) if cfg.get("synthetic") else None
    section = measure(Path(cfg.workdir), int(cfg.small), int(cfg.large), int(cfg.distinct), list(cfg.channels),
                      int(cfg.threads), tuple(cfg.modes), tuple(cfg.tasks), synthetic)
    if cfg.output:
        json_path = Path(cfg.output) / "benchmarks.json"
        results = report.read(json_path)
        results.sections["memory"] = section
        print(f"written: {', '.join(str(path) for path in report.write(results, Path(cfg.output)))}")
    return section
