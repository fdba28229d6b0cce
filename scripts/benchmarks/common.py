"""What every benchmark shares: the machine and versions, timers, and peak memory in a fresh process.

Timings are wall seconds (``time.perf_counter``) with CPU seconds of this process beside them
(``time.process_time``): on a shared machine the CPU time moves less when others load the
cores. Peak memory is measured in a fresh Python process: after its imports the child resets
the kernel's resident-memory high-water mark, runs one function, and reports how far the mark
rose above the memory it started with.
"""

from __future__ import annotations

import datetime as _datetime
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"  # the entry points' configs


@dataclass(frozen=True)
class Timing:
    """Seconds one call took: wall clock and this process's CPU (all its threads)."""

    wall_s: float
    cpu_s: float


def time_call(function, *args, **kwargs) -> tuple[object, Timing]:
    """``function(*args, **kwargs)`` and how long it took."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args, **kwargs)
    return result, Timing(time.perf_counter() - wall, time.process_time() - cpu)


def repeat(function, repeats: int, *args, **kwargs) -> dict:
    """Time ``repeats`` calls; the fastest wall time is the figure (the least disturbed run),
    the median beside it. Returns ``{wall_s, cpu_s, wall_median_s, repeats}``."""
    timings = [time_call(function, *args, **kwargs)[1] for _ in range(max(1, repeats))]
    best = min(timings, key=lambda t: t.wall_s)
    return {
        "wall_s": best.wall_s,
        "cpu_s": best.cpu_s,
        "wall_median_s": statistics.median(t.wall_s for t in timings),
        "repeats": len(timings),
    }


def ratio(value: float | None, reference: float | None) -> float | None:
    """``value / reference``, or None when either is missing or the reference is 0."""
    if value is None or reference is None or reference == 0:
        return None
    return float(value) / float(reference)


def machine() -> dict:
    """CPU model, cores, RAM, the SIMD features that decide fp32 vs bf16 speed, and the load."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and ":" in line:
                model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and ":" in line:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 0
    simd = [name for name in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if name in flags]
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": round(ram / 2**30, 1),
        "simd": simd,
        "bf16_hardware": bool({"avx512_bf16", "amx_bf16"} & flags),
        "os": platform.platform(),
    }


def load_average() -> list[float]:
    """1-, 5- and 15-minute load averages (other work competing for the cores)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else []


def cpu_counters() -> tuple[float, float, float]:
    """(wall s, CPU s the whole machine has been busy, CPU s of this process and its finished children)."""
    busy = 0.0
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        pass
    own = os.times()
    return time.perf_counter(), busy, own.user + own.system + own.children_user + own.children_system


def others_cores(start: tuple[float, float, float], end: tuple[float, float, float]) -> float | None:
    """Cores other processes kept busy on average between two :func:`cpu_counters` readings
    (what the load average cannot say: it counts this benchmark's own threads too)."""
    wall = end[0] - start[0]
    if wall <= 0 or end[1] == 0:
        return None
    return max(0.0, ((end[1] - start[1]) - (end[2] - start[2])) / wall)


def versions() -> dict:
    """Versions of Python and the libraries the figures depend on (None: not installed)."""
    from importlib import metadata

    found = {"python": platform.python_version()}
    for name, distribution in [("torch", "torch"), ("lightning", "pytorch-lightning"), ("numpy", "numpy"),
                               ("nibabel", "nibabel"), ("monai", "monai"), ("isal", "isal")]:
        try:
            found[name] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def compose_conf(name: str, overrides: list[str]):
    """``conf/<name>.yaml`` with ``overrides``, as its entry point would compose it.

    Inside a running entry point Hydra is already set up on ``conf/`` and cannot be set up a
    second time, so the entry point's own setup composes it.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        return compose(config_name=name, overrides=overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=name, overrides=overrides)


def as_names(value) -> list[str]:
    """A config key that takes one name or a list (``only=default`` or ``only=[default,256]``), as strings."""
    from omegaconf import ListConfig

    return [str(item) for item in value] if isinstance(value, (list, tuple, ListConfig)) else [str(value)]


def now() -> str:
    """Local date and time, to the minute."""
    return _datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


# ---- peak memory in a fresh process --------------------------------------------------------


def reset_peak_mib() -> float:
    """Resident MiB now, with the kernel's high-water mark (VmHWM) reset to it (Linux).

    ``ru_maxrss`` cannot be used: a child process inherits its parent's high-water mark.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    return _status_mib("VmRSS")


def peak_mib() -> float:
    """Highest resident MiB since :func:`reset_peak_mib` (or since the process started)."""
    return _status_mib("VmHWM")


def rss_mib() -> float:
    """Resident MiB now."""
    return _status_mib("VmRSS")


def _status_mib(field: str) -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the best there is


_CHILD = """
import importlib, json, sys
from benchmarks.common import measured
module, function, arguments = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
importlib.import_module(module)
print(json.dumps(measured(module, function, fresh=False, **arguments)))
"""


def _with_benchmarks_on_path() -> str:
    """PYTHONPATH for a child process that imports this package (it lives outside the library)."""
    here = str(Path(__file__).resolve().parents[1])
    return os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)


def in_fresh_process(module: str, function: str, timeout_s: float = 900, env: dict | None = None, **arguments) -> dict:
    """Run ``module.function(**arguments)`` in a new Python process; its result (JSON-able),
    wall/CPU seconds, and resident memory: after imports (``baseline_mib``), at the peak
    (``peak_mib``) and the rise the call caused (``rise_mib``)."""
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, module, function, json.dumps(arguments)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONPATH": _with_benchmarks_on_path(), **(env or {})},
    )
    if completed.returncode != 0:
        tail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"{module}.{function} failed in its own process: {tail[0]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def measured(module: str, function: str, fresh: bool = True, **arguments) -> dict:
    """:func:`in_fresh_process`, or with ``fresh=False`` the same call and report in this process
    (quick, for smoke tests; its peak then also counts memory freed but not returned to the OS)."""
    if fresh:
        return in_fresh_process(module, function, **arguments)
    target = getattr(importlib.import_module(module), function)
    baseline = reset_peak_mib()
    result, timing = time_call(target, **arguments)
    peak = peak_mib()
    return {"result": result, "wall_s": timing.wall_s, "cpu_s": timing.cpu_s,
            "baseline_mib": baseline, "peak_mib": peak, "rise_mib": max(0.0, peak - baseline)}
