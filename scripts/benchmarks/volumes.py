"""3-D brain masks (``python scripts/benchmark_volumes.py``): accuracy per storage orientation, and end-to-end speed.

* **accuracy**: held-out synthetic anatomies, each written in every storage orientation the
  preset uses, segmented with :func:`brainseg.inference.volume.segment_volume` and scored in 3-D
  (Dice, HD95, volume difference) against the generator's truth, per orientation.
* **speed**: read, infer, post-process and write one volume (a synthetic 512x512x300 by
  default), in a fresh process so that its peak memory is its own.

Numbers measured for the docs are in docs/volumes.md, with the machine they came from.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import in_fresh_process
from brainseg.data.nifti import open_nifti
from brainseg.errors import ConfigError
from brainseg.evaluation.metrics import score_volume
from brainseg.inference.predict import load_predictor
from brainseg.inference.volume import (
    VolumePredictor,
    mask_path,
    save_mask,
    segment_volume,
)
from brainseg.synthetic import SyntheticConfig, case_seed, generate_case, write_case

SPEED_SHAPE = (512, 512, 300)
TARGET = {"dice_min": 0.97, "hd95_mm_max": 3.0}  # in every held-out case


def volume_predictor(ckpt_path: str) -> VolumePredictor:
    """The checkpoint's predictor; a MIP checkpoint is refused with one line."""
    predictor = load_predictor(ckpt_path)
    if not isinstance(predictor, VolumePredictor):
        raise ConfigError(f"{ckpt_path}: a MIP checkpoint; 3-D masks need a slice-mode one (mode=slices)")
    return predictor


def held_out_cases(root: Path, n: int, seed: int, config: SyntheticConfig) -> list[tuple[str, str]]:
    """``n`` new anatomies, each written once per storage orientation; returns (case ID, orientation)."""
    cases = []
    for i in range(n):
        for axcodes in config.orientations:
            case_id = f"heldout{i:02d}_{axcodes}"
            if not (root / "CTA images" / f"{case_id}.nii.gz").exists():
                write_case(generate_case(case_seed(seed, i), replace(config, orientations=(axcodes,))), root, case_id)
            cases.append((case_id, axcodes))
    return cases


def accuracy(ckpt_path: str, cases: int = 3, seed: int = 999, preset: str = "default", data: str | None = None,
             slice_step_mm: float | None = None) -> dict:
    """Score each held-out case (in ``data``, or a new temporary folder); per case and per orientation."""
    model = volume_predictor(ckpt_path)
    config = SyntheticConfig.preset(preset)
    root = Path(data or tempfile.mkdtemp(prefix="heldout-"))
    rows = []
    for case_id, axcodes in held_out_cases(root, cases, seed, config):
        image = root / "CTA images" / f"{case_id}.nii.gz"
        truth = open_nifti(root / "brain masks" / f"{case_id}_ROI.nii.gz")
        result = segment_volume(model, image, slice_step_mm=slice_step_mm)
        scores = score_volume(np.asarray(result.mask.dataobj), truth.read(), truth.affine)
        rows.append({"case": case_id, "orientation": axcodes, **scores, "warnings": result.warnings})
        print(f"{case_id:22s} dice {scores['dice']:.4f}  hd95 {scores['hd95_mm']:5.2f} mm  "
              f"volume {scores['volume_difference_ml']:+6.1f} mL  {'; '.join(result.warnings)}", flush=True)
    summary = {}
    for axcodes in config.orientations:
        subset = [r for r in rows if r["orientation"] == axcodes]
        summary[axcodes] = {
            "dice_min": min(r["dice"] for r in subset),
            "dice_mean": float(np.mean([r["dice"] for r in subset])),
            "hd95_mm_max": max(r["hd95_mm"] for r in subset),
            "hd95_mm_mean": float(np.mean([r["hd95_mm"] for r in subset])),
            "volume_difference_ml_mean_abs": float(np.mean([abs(r["volume_difference_ml"]) for r in subset])),
        }
    print(f"\n{'orientation':12s} {'Dice min':>9s} {'Dice mean':>10s} {'HD95 max':>9s} {'HD95 mean':>10s} {'|dV| mL':>8s}")
    for axcodes, s in summary.items():
        print(f"{axcodes:12s} {s['dice_min']:9.4f} {s['dice_mean']:10.4f} {s['hd95_mm_max']:9.2f} {s['hd95_mm_mean']:10.2f} "
              f"{s['volume_difference_ml_mean_abs']:8.1f}")
    passed = all(s["dice_min"] >= TARGET["dice_min"] and s["hd95_mm_max"] <= TARGET["hd95_mm_max"] for s in summary.values())
    print(f"target (Dice >= {TARGET['dice_min']} and HD95 <= {TARGET['hd95_mm_max']:g} mm in every case): "
          f"{'met' if passed else 'NOT met'}")
    return {"cases": rows, "per_orientation": summary, "target_met": passed}


def speed_volume(path: Path) -> Path:
    """A synthetic 512x512x300 head CTA (int16, gzip), generated once."""
    if not path.exists():
        config = replace(SyntheticConfig.realistic(), shape_in_plane=SPEED_SHAPE[:2], slice_count=(SPEED_SHAPE[2],) * 2,
                         fov_kinds=(("head", 1.0),), orientations=("LPS",))
        case = generate_case(7, config)
        image_path, _ = write_case(case, path.parent, path.name.removesuffix(".nii.gz"))
        image_path.rename(path)
    return path


def time_segmentation(ckpt_path: str, image: str, threads: int, repeats: int, batch_size: int,
                      slice_step_mm: float | None) -> dict:
    """Segment ``image`` and write its mask ``repeats`` times; seconds per stage of each run.
    Run by :func:`speed` in a fresh process, so the peak memory is this volume's alone."""
    import torch

    torch.set_num_threads(threads)
    model = volume_predictor(ckpt_path)
    output = Path(tempfile.mkdtemp(prefix="speed-"))
    runs = []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        result = segment_volume(model, image, slice_step_mm=slice_step_mm, batch_size=batch_size)
        written = time.perf_counter()
        save_mask(result, mask_path(output, "speed"))
        total = time.perf_counter() - start
        # CPU seconds over wall seconds: below the thread count when other processes share the cores
        runs.append({**result.timings, "write": time.perf_counter() - written, "total": total, "cpu": time.process_time() - cpu})
    return {"runs": runs, "threads": threads, "volume_ml": result.volume_ml}


def speed(ckpt_path: str, image: str | None = None, threads: int = 2, repeats: int = 3, batch_size: int = 16,
          slice_step_mm: float | None = None) -> dict:
    """Time :func:`time_segmentation` in a fresh process on ``image`` (default: the generated 512x512x300 volume)."""
    image = speed_volume(Path(image or Path(tempfile.gettempdir()) / "brainseg_speed_512x512x300.nii.gz"))
    measured = in_fresh_process(__name__, "time_segmentation", timeout_s=None, ckpt_path=str(ckpt_path), image=str(image),
                                threads=threads, repeats=repeats, batch_size=batch_size, slice_step_mm=slice_step_mm)
    result = {**measured["result"], "peak_rss_mib": measured["peak_mib"]}
    for run in result["runs"]:
        print("  ".join(f"{k} {v:.2f}s" for k, v in run.items()))
    print(f"{image.name}: median {statistics.median(run['total'] for run in result['runs']):.2f} s end to end on "
          f"{threads} threads, peak memory {result['peak_rss_mib']:.0f} MiB")
    return result


def benchmark_volumes(cfg) -> dict:
    """Run ``cfg.task`` (accuracy or speed) and write its results to ``cfg.output`` (JSON) if given.
    The keys are those of conf/benchmark_volumes.yaml."""
    if cfg.task == "accuracy":
        result = accuracy(cfg.ckpt_path, slice_step_mm=cfg.slice_step_mm, **cfg.accuracy)
    elif cfg.task == "speed":
        result = speed(cfg.ckpt_path, slice_step_mm=cfg.slice_step_mm, **cfg.speed)
    else:
        raise ConfigError(f"task: {cfg.task!r} is not a benchmark; use accuracy or speed")
    if cfg.output:
        Path(cfg.output).parent.mkdir(parents=True, exist_ok=True)
        Path(cfg.output).write_text(json.dumps(result, indent=2) + "\n")
    return result
