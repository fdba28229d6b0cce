"""One benchmark run: every section in one process, one after the other, with the machine's state.

Sections run in the order preprocessing, training, inference, loading: inference reuses the
volume of the preprocessing section and the network the training section trained.
:func:`benchmark` is ``python scripts/benchmark.py``: run, then write docs/benchmarks.{md,json}.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks import report
from benchmarks.common import (
    as_names,
    cpu_counters,
    load_average,
    machine,
    now,
    others_cores,
    versions,
)
from benchmarks.results import SECTIONS, Results
from brainseg.errors import ConfigError


@dataclass(frozen=True)
class Sizes:
    """How big and how long: the full benchmark by default, :meth:`tiny` for the smoke test."""

    volume_shape: tuple[int, int, int] = (512, 512, 300)  # the realistic CTA of issue 7
    repeats: int = 3  # timed repetitions of each preprocessing and inference figure
    folder_workers: tuple[int, ...] | None = None  # None: 1 and all cores
    training_overrides: tuple[str, ...] = ()  # on top of the default `python train.py` config
    synthetic_cases: int | None = None  # None: the default synthetic dataset's size
    target_dice: float = 0.95  # val/dice to reach
    race_seeds: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)  # ours and MONAI to the target once more per seed (medians)
    max_seconds: float = 300.0  # cap per training run
    steps: int = 8  # timed steps per step-throughput variant
    compile: bool = True  # include torch.compile (slow to compile)
    batch_sizes: tuple[int, ...] = (16, 32)  # extra batch sizes for the step figure
    loading_epochs: int = 4
    worker_counts: tuple[int, ...] = (0, 2)  # DataLoader workers compared
    volume_repeats: int = 2
    fresh_processes: bool = True  # peak memory in fresh processes (False: in-process, for smoke tests)
    threads: int | None = None  # torch threads for the whole run; None: torch's default (all cores)

    @classmethod
    def tiny(cls) -> "Sizes":
        """Every code path in seconds: a 48x48x16 volume, 32-px images, a two-level U-Net, 1-2 epochs."""
        return cls(
            volume_shape=(48, 48, 16),
            repeats=1,
            folder_workers=(1,),
            synthetic_cases=8,
            training_overrides=("data.image_size=32", "data.batch_size=4", "model.net.channels=[4,8]", "trainer.max_epochs=1"),
            max_seconds=60.0,
            race_seeds=(1,),
            steps=1,
            compile=False,
            batch_sizes=(),
            loading_epochs=1,
            worker_counts=(0,),
            volume_repeats=1,
            fresh_processes=False,
            threads=1,  # tiny steps on a busy machine: a second thread only waits for the first
        )


def benchmark(cfg) -> Path:
    """Measure the ``cfg.only`` sections (or read ``cfg.render`` again), write benchmarks.md and
    benchmarks.json into ``cfg.output`` and print the page; returns the page's path.
    The keys are those of conf/benchmark.yaml."""
    only = as_names(cfg.only)
    if set(only) - set(SECTIONS):
        raise ConfigError(f"only: unknown section(s) {sorted(set(only) - set(SECTIONS))}; the sections are {list(SECTIONS)}")
    if cfg.render:
        results = report.read(Path(cfg.render))
    else:
        sizes = Sizes.tiny() if cfg.tiny else Sizes()
        results = run_benchmarks(Path(cfg.workdir), sizes, tuple(only), cfg.volume_checkpoint, cfg.dataset)
        if (Path(cfg.output) / "benchmarks.json").is_file():
            report.carry_over(results, report.read(Path(cfg.output) / "benchmarks.json"))
    json_path, md_path = report.write(results, Path(cfg.output))
    print(md_path.read_text())
    print(f"written: {md_path}, {json_path}")
    return md_path


def run_benchmarks(workdir: Path, sizes: Sizes = Sizes(), only: tuple[str, ...] = SECTIONS,
                   volume_checkpoint: str | None = None, dataset_root: str | None = None) -> Results:
    """Run the ``only`` sections in ``workdir`` (the volume, datasets and caches are kept there
    between runs). ``dataset_root`` trains on that folder instead of the default synthetic data."""
    from benchmarks import training

    workdir = Path(workdir)
    results = Results(now(), machine(), versions(), asdict(sizes), load_average())
    overrides = list(sizes.training_overrides)
    if dataset_root is not None:
        overrides = ["data=folder", f"data.root={dataset_root}", *overrides]
    elif sizes.synthetic_cases is not None:
        overrides = [f"data.synthetic.n_cases={sizes.synthetic_cases}", *overrides]
    with training.torch_threads(sizes.threads):
        _run_sections(results, workdir, sizes, only, overrides, volume_checkpoint)
    results.load_after = load_average()
    return results


def _run_sections(results: Results, workdir: Path, sizes: Sizes, only, overrides: list[str], volume_checkpoint) -> None:
    from benchmarks import inference, loading, preprocessing, training

    volume = preprocessing.make_volume(workdir / "volume", sizes.volume_shape)
    trained = {}

    def run_training() -> dict:
        section = training.run(workdir, overrides, sizes.target_dice, sizes.max_seconds, sizes.steps, sizes.compile,
                               sizes.batch_sizes, sizes.race_seeds)
        trained["net"] = section.pop("model").net  # our fp32 network, trained: the inference section runs it
        return section

    def run_inference() -> dict:
        cfg = training.compose_training(workdir, "probe", overrides)
        return inference.run(
            volume, int(cfg.data.image_size), list(cfg.data.hu_window), list(cfg.data.get("extra_projections") or []),
            list(cfg.model.net.channels), trained.get("net"),
            sizes.repeats, volume_checkpoint, sizes.volume_repeats, sizes.fresh_processes,
        )

    runners = {
        "preprocessing": lambda: preprocessing.run(
            workdir, sizes.volume_shape, sizes.repeats, sizes.folder_workers, sizes.fresh_processes
        ),
        "training": run_training,
        "inference": run_inference,
        "loading": lambda: loading.run(workdir, overrides, sizes.loading_epochs, sizes.worker_counts),
    }
    for name in SECTIONS:
        if name in only:
            logging.getLogger(__name__).info("benchmark: %s", name)
            before, counters = load_average(), cpu_counters()
            results.sections[name] = runners[name]()
            results.sections[name]["load_average"] = {"before": before, "after": load_average()}
            results.sections[name]["others_cores"] = others_cores(counters, cpu_counters())
