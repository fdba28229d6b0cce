"""Benchmark 3-D brain masks: accuracy per storage orientation, and end-to-end speed.

    # accuracy: held-out synthetic cases, each stored in every orientation the generator uses
    python scripts/benchmark_volumes.py accuracy --checkpoint CKPT [--cases 3] [--output DIR]
    # speed: read, infer, post-process and write one 512x512x300 volume
    python scripts/benchmark_volumes.py speed --checkpoint CKPT [--threads 2] [--repeats 3]

Results are printed as a table and written as JSON (``--output``). Numbers measured for the
docs are in docs/volumes.md, with the machine they came from.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from brainseg.data.nifti import open_nifti
from brainseg.evaluation.metrics import score_volume
from brainseg.inference.volume import SliceModel, mask_path, save_mask, segment_volume
from brainseg.synthetic import SyntheticConfig, case_seed, generate_case, write_case

SPEED_SHAPE = (512, 512, 300)


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


def accuracy(args) -> dict:
    model = SliceModel.from_checkpoint(args.checkpoint)
    config = SyntheticConfig.preset(args.preset)
    root = Path(args.data or tempfile.mkdtemp(prefix="heldout-"))
    rows = []
    for case_id, axcodes in held_out_cases(root, args.cases, args.seed, config):
        image = root / "CTA images" / f"{case_id}.nii.gz"
        truth = open_nifti(root / "brain masks" / f"{case_id}_ROI.nii.gz")
        result = segment_volume(model, image, slice_step_mm=args.slice_step_mm)
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
    passed = all(s["dice_min"] >= 0.97 and s["hd95_mm_max"] <= 3.0 for s in summary.values())
    print(f"target (Dice >= 0.97 and HD95 <= 3 mm in every case): {'met' if passed else 'NOT met'}")
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


def time_one(args) -> dict:
    """Worker (a fresh process, so peak memory is this volume's alone): segment and write, timed."""
    import torch

    torch.set_num_threads(args.threads)
    model = SliceModel.from_checkpoint(args.checkpoint)
    output = Path(tempfile.mkdtemp(prefix="speed-"))
    runs = []
    for _ in range(args.repeats):
        start, cpu = time.perf_counter(), time.process_time()
        result = segment_volume(model, args.image, slice_step_mm=args.slice_step_mm, batch_size=args.batch_size)
        written = time.perf_counter()
        save_mask(result, mask_path(output, "speed"))
        total = time.perf_counter() - start
        # CPU seconds over wall seconds: below the thread count when other processes share the cores
        runs.append({**result.timings, "write": time.perf_counter() - written, "total": total, "cpu": time.process_time() - cpu})
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"runs": runs, "peak_rss_mib": peak_mib, "threads": args.threads, "volume_ml": result.volume_ml}


def speed(args) -> dict:
    image = speed_volume(Path(args.image or Path(tempfile.gettempdir()) / "brainseg_speed_512x512x300.nii.gz"))
    command = [sys.executable, __file__, "_time", "--checkpoint", args.checkpoint, "--image", str(image),
               "--threads", str(args.threads), "--repeats", str(args.repeats), "--batch-size", str(args.batch_size)]
    if args.slice_step_mm is not None:
        command += ["--slice-step-mm", str(args.slice_step_mm)]
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout.splitlines()[-1])
    totals = [run["total"] for run in result["runs"]]
    for run in result["runs"]:
        print("  ".join(f"{k} {v:.2f}s" for k, v in run.items()))
    print(f"{SPEED_SHAPE}: median {statistics.median(totals):.2f} s end to end on {args.threads} threads, "
          f"peak memory {result['peak_rss_mib']:.0f} MiB")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=["accuracy", "speed", "_time"])
    parser.add_argument("--checkpoint", required=True, help="a checkpoint trained with data.mode=slices")
    parser.add_argument("--output", help="JSON file for the results")
    parser.add_argument("--cases", type=int, default=3, help="accuracy: held-out anatomies (each in every orientation)")
    parser.add_argument("--seed", type=int, default=999, help="accuracy: seed of the held-out anatomies")
    parser.add_argument("--preset", default="default", help="accuracy: synthetic preset (default, realistic, wide)")
    parser.add_argument("--data", help="accuracy: folder for the held-out cases (reused when present)")
    parser.add_argument("--image", help="speed: the volume to time (default: a generated 512x512x300 one)")
    parser.add_argument("--threads", type=int, default=2, help="speed: torch threads")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--slice-step-mm", type=float, default=None, help="infer slices this far apart, interpolate between")
    args = parser.parse_args()
    if args.task == "_time":
        print(json.dumps(time_one(args)))
        return
    result = accuracy(args) if args.task == "accuracy" else speed(args)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
