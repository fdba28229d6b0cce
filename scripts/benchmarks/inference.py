"""Inference: a case's MIP prediction and a volume's 3-D mask, latency and peak memory.

* **MIP, per case**: what ``scripts/predict.py`` does for one NIfTI case
  (:mod:`brainseg.inference.mip`): project, fit and normalize, run the network, map back, write
  the three PNGs; each stage timed. The network forward alone is timed too.
* **Volume, end to end**: :func:`brainseg.inference.volume.segment_volume` plus :func:`save_mask` on the
  same 512x512x300 file (read, infer, post-process, write), in a fresh process so its peak
  memory is its own. Without a slice-mode checkpoint the network is untrained: the compute is
  the same, but post-processing works on a meaningless mask (flagged in the report).
"""

from __future__ import annotations

import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.common import CONF_DIR, measured, repeat, time_call
from benchmarks.results import TARGETS
from benchmarks.training import torch_threads
from brainseg.checkpoint import save_network
from brainseg.data.preprocessing import Preprocessing
from brainseg.inference.inputs import InputCase, project_input
from brainseg.inference.mip import MipPredictor, case_pictures, write_pngs
from brainseg.models import LeanUNet

SCRIPTS = CONF_DIR.parent / "scripts"


def mip_preprocessing(image_size: int, hu_window: list[float], extra_projections: list[str]) -> dict:
    """The preprocessing a MIP checkpoint of the default DataModule carries, as a plain dict
    (it crosses into a fresh process)."""
    return Preprocessing("mip", tuple(hu_window), image_size, extra_projections=tuple(extra_projections)).to_dict()


def predict_mip_case(path: str, output_dir: str, preprocessing: dict, channels: list[int], net: torch.nn.Module | None = None) -> dict:
    """Predict one case as ``scripts/predict.py`` does; seconds per stage."""
    preprocessing = Preprocessing.from_dict(preprocessing)
    predictor = MipPredictor(net if net is not None else LeanUNet(preprocessing.in_channels, 1, channels), preprocessing)
    window = predictor.preprocessing.hu_window
    seconds = {}
    projection, timing = time_call(project_input, InputCase("case", Path(path)), window, preprocessing.extra_projections)
    seconds["project"] = timing.wall_s
    prediction, timing = time_call(predictor.predict, projection)
    seconds["predict"] = timing.wall_s
    pictures = case_pictures(projection.image, prediction, window)
    _, timing = time_call(write_pngs, {Path(output_dir) / f"case_{name}.png": array for name, array in pictures.items()})
    seconds["write"] = timing.wall_s
    seconds["total"] = sum(seconds.values())
    return seconds


def forward_latency(net: torch.nn.Module, in_channels: int, image_size: int, repeats: int = 10) -> dict:
    """Seconds of one eval-mode forward pass on a ``(1, C, size, size)`` input."""
    image = torch.randn(1, in_channels, image_size, image_size)
    net = net.eval()
    with torch.inference_mode():
        net(image)  # warm-up
        return repeat(net, repeats, image)


def segment_volume_case(path: str, output_dir: str, checkpoint: str | None = None, channels: list[int] | None = None,
                        threads: int | None = None) -> dict:
    """Segment one volume end to end and write its mask; seconds per stage (``segment_volume``'s own)."""
    from benchmarks.volumes import volume_predictor
    from brainseg.inference.volume import (
        VolumePredictor,
        mask_path,
        save_mask,
        segment_volume,
    )

    if checkpoint:
        model = volume_predictor(checkpoint)
    else:  # the 3-D recipe's network (experiment=brain_volumes), untrained
        preprocessing = Preprocessing("slices", (-100.0, 1000.0), 128, spacing_mm=2.0, context_slices=1)
        model = VolumePredictor(LeanUNet(3, 1, channels or [8, 16, 32, 64, 128]).eval(), preprocessing)
    with torch_threads(threads):
        result, timing = time_call(segment_volume, model, path)
        _, written = time_call(save_mask, result, mask_path(output_dir, "benchmark"))
    return {
        **{name: float(value) for name, value in result.timings.items()},
        "write": written.wall_s,
        "total": timing.wall_s + written.wall_s,
        "cpu_s": timing.cpu_s + written.cpu_s,
        "volume_ml": result.volume_ml,
        "trained": bool(checkpoint),
        "net": dict(getattr(model.net, "config", {})),
        "network": type(model.net).__name__,
    }


def run(volume_path: Path, image_size: int, hu_window: list[float], extra_projections: list[str], channels: list[int],
        net: torch.nn.Module | None = None, repeats: int = 3, volume_checkpoint: str | None = None, volume_repeats: int = 2,
        fresh: bool = True) -> dict:
    """Every inference figure, measured now (see the module docstring); ``fresh=False`` measures
    memory in this process (smoke tests)."""
    preprocessing = mip_preprocessing(image_size, hu_window, extra_projections)
    in_channels = 1 + len(extra_projections)
    network = net if net is not None else LeanUNet(in_channels, 1, channels)
    output = tempfile.mkdtemp(prefix="brainseg-benchmark-")
    runs = [predict_mip_case(str(volume_path), output, preprocessing, channels, network) for _ in range(max(1, repeats))]
    mip = {stage: statistics.median(r[stage] for r in runs) for stage in runs[0]}
    memory = measured(__name__, "predict_mip_case", fresh, path=str(volume_path), output_dir=output,
                              preprocessing=preprocessing, channels=list(channels))
    result = {
        "mip_case": mip,
        "mip_case_peak_rise_mib": memory["rise_mib"],
        "mip_case_process_peak_mib": memory["peak_mib"],
        "forward": forward_latency(network, in_channels, image_size),
        "volume": None,
    }
    if importlib.util.find_spec("brainseg.inference.volume") is not None:
        volumes = [
            measured(__name__, "segment_volume_case", fresh, path=str(volume_path), output_dir=output,
                     checkpoint=volume_checkpoint)
            for _ in range(max(1, volume_repeats))
        ]
        best = min(volumes, key=lambda v: v["result"]["total"])
        result["volume"] = {
            **best["result"],
            "peak_rise_mib": max(v["rise_mib"] for v in volumes),
            "process_peak_mib": max(v["peak_mib"] for v in volumes),
            "target_s": TARGETS["volume_s"],
        }
    mip_checkpoint = save_network(network, Preprocessing.from_dict(preprocessing), Path(output) / "mip.ckpt")
    result["startup"] = {
        "help_s": process_seconds(["--help"], repeats),
        "mip_case_s": process_seconds([f"ckpt_path={mip_checkpoint}", f"input={volume_path}", f"output={output}/cli"], repeats),
        "volume_case_s": process_seconds([f"ckpt_path={volume_checkpoint}", f"input={volume_path}", f"output={output}/cli",
                                          "volumes.brain_mip=false"], repeats) if volume_checkpoint else None,
    }
    return result


def process_seconds(arguments: list[str], repeats: int = 3) -> float:
    """Wall seconds of ``python scripts/predict.py ARGUMENTS`` in a fresh process, the fastest of ``repeats``:
    what a pipeline that calls predict once per case pays each time, start-up included."""
    command = [sys.executable, str(SCRIPTS / "predict.py"), *arguments, f"hydra.run.dir={tempfile.mkdtemp()}"]
    return min(time_call(subprocess.run, command, capture_output=True, check=True)[1].wall_s for _ in range(max(1, repeats)))

