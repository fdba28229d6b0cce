"""Training speed: ours against MONAI's ``UNet`` in the same loop, and what makes ours fast here.

The figures:

* **Loop**: the default training (``python train.py``'s config, quiet: no logger, checkpoint or
  picture callbacks) until ``val/dice`` reaches the target: images per second of the training
  loop, wall time and epochs to the target, final Dice. Variants: ours fp32 (the default
  network, :class:`~brainseg.models.LeanUNet`, in the NHWC layout), ours ``bf16-mixed``, MONAI's
  ``UNet`` with the same channels, strides 2 and ``num_res_units=0`` plugged into our
  :class:`SegmentationModule` as ``net`` (the reference, in the NCHW layout its users train it in;
  once more in ours), and the :data:`CANDIDATES`: ours in NCHW, the earlier default network
  (``model=unet_classic``) and other lean designs.
* **Race over seeds**: ours and MONAI's reference to the target once more for each of the
  ``race_seeds`` (the loop's run is the config's seed). Which epoch first reaches the target
  moves by several with the seed alone, so the time-to-target ratio is held to the medians of
  these runs, not to one pair.
* **Default run**: the whole default ``python train.py`` (early stopping, best checkpoint, test
  split; no logger or progress bar), with the default network and with ``model=unet_classic``:
  the training wall time each needs and the test Dice each ends with.
* **Step**: one forward, loss, backward and AdamW step on a fixed batch, repeated, for the knobs
  that could make it faster: bf16 autocast, ``channels_last``, thread count, batch size,
  ``torch.compile`` (whose compile time is reported apart).

GFLOP per image (forward + backward) say how much work each network does; images per second
divided by them say how well each runs on this CPU.
"""

from __future__ import annotations

import statistics
from contextlib import contextmanager
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from benchmarks.clock import StepClock
from benchmarks.common import compose_conf, ratio, time_call

# The default run without what only writes files or draws: same data, model, loss, optimizer, schedule.
QUIET = [
    "~logger",
    "callbacks=none",
    "+trainer.enable_checkpointing=false",
    "+trainer.enable_progress_bar=false",
    "+trainer.enable_model_summary=false",
]


# Networks raced to the target in the same loop as ours and MONAI's: overrides of the default config.
CANDIDATES = {
    "ours contiguous fp32": ["model.channels_last=false"],  # the default network in the NCHW layout
    "unet_classic fp32": ["model=unet_classic"],  # the default network before LeanUNet
    "lean residual fp32": ["model.net.num_res_units=1"],
    "lean wide fp32": ["model.net.channels=[16,32,64,128]"],
    "lean 3 levels fp32": ["model.net.channels=[8,16,32]"],
    "lean top_stride 4 fp32": ["model.net.top_stride=4"],  # the top level at a quarter of the side
    # the same with 16 channels in 3 levels: the deepest level as deep and as wide as ours
    "lean top_stride 4 16ch fp32": ["model.net.top_stride=4", "model.net.channels=[16,32,64]"],
}
# The default run as a user runs it, with a CSV logger instead of TensorBoard and no progress bar.
UNLOGGED = ["logger=csv", "callbacks.progress_bar=null", "+trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false"]


@contextmanager
def torch_threads(count: int | None):
    """Run the block with ``count`` intra-op threads (``None``: leave torch's choice)."""
    previous = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def compose_training(workdir: Path, name: str, overrides: list[str], quiet: bool = True) -> DictConfig:
    """The real training config with ``overrides``, quiet (or only unlogged), its run folder under ``workdir``."""
    cfg = compose_conf("train", [*(QUIET if quiet else UNLOGGED), *overrides])
    with open_dict(cfg):
        cfg.paths.output_dir = str(workdir / "runs" / name)
        cfg.paths.data_dir = str(workdir / "data")
    return cfg


def monai_unet(net: DictConfig) -> dict:
    """Config of MONAI's UNet matching ours: same channels, one stride-2 step per level, no residual units."""
    channels = [int(c) for c in net.channels]
    return {
        "_target_": "monai.networks.nets.UNet",
        "spatial_dims": 2,
        "in_channels": int(net.in_channels),
        "out_channels": int(net.out_channels),
        "channels": channels,
        "strides": [2] * (len(channels) - 1),
        "num_res_units": 0,
        "norm": "batch",
    }


def train_with_clock(
    workdir: Path,
    name: str,
    overrides: list[str],
    target_dice: float | None = None,
    max_seconds: float | None = None,
    reference: bool = False,
    threads: int | None = None,
    return_model: bool = False,
    default_run: bool = False,
):
    """Train the composed config with a :class:`StepClock`; its summary (and the module if asked).

    ``reference=True`` swaps the network for MONAI's UNet (:func:`monai_unet`). ``default_run=True``
    keeps the default callbacks (early stopping, checkpoints, validation panel) and tests the best
    checkpoint afterwards, as ``python train.py`` does: the summary gains ``test_dice``.
    """
    from brainseg.training.train import build

    cfg = compose_training(workdir, name, overrides, quiet=not default_run)
    with open_dict(cfg):
        if reference:
            cfg.model.net = OmegaConf.create(monai_unet(cfg.model.net))
        cfg.callbacks = cfg.get("callbacks") or {}
        cfg.callbacks.step_clock = {
            "_target_": "benchmarks.clock.StepClock",
            "target_dice": target_dice,
            "max_seconds": max_seconds,
        }
    datamodule, model, trainer = build(cfg)
    clock = next(callback for callback in trainer.callbacks if isinstance(callback, StepClock))
    with torch_threads(threads):
        trainer.fit(model, datamodule=datamodule)
        tested = trainer.test(model, datamodule=datamodule, ckpt_path="best", verbose=False) if default_run else [{}]
    summary = {
        "network": str(cfg.model.net._target_).rsplit(".", 1)[-1],
        "precision": str(cfg.trainer.precision),
        "batch_size": int(cfg.data.batch_size),
        "image_size": int(cfg.data.image_size),
        "threads": threads or torch.get_num_threads(),
        "target_dice": target_dice,
        **clock.summary(),
        **({"test_dice": float(tested[0]["test/dice"])} if default_run else {}),
    }
    return (summary, model) if return_model else summary


def gflop_per_image(net: torch.nn.Module, in_channels: int, image_size: int) -> float:
    """Forward + backward GFLOP for one image (convolutions and matrix products)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        net(torch.randn(2, in_channels, image_size, image_size)).sum().backward()
    net.zero_grad(set_to_none=True)
    return counter.get_total_flops() / 2 / 1e9


@contextmanager
def _no_compile_cache(active: bool):
    """Time a first compilation, as a new user pays it, not a hit in inductor's on-disk cache."""
    if not active:
        yield
        return
    import torch._inductor.config as inductor

    previous, inductor.force_disable_caches = inductor.force_disable_caches, True
    try:
        yield
    finally:
        inductor.force_disable_caches = previous


def step_throughput(
    net: torch.nn.Module,
    batch_size: int,
    image_size: int,
    steps: int = 8,
    bf16: bool = False,
    channels_last: bool = False,
    threads: int | None = None,
    compile: bool = False,
    budget_s: float = 10.0,
) -> dict:
    """Images per second of a bare training step (forward, BCE, backward, AdamW) on a fixed batch.

    The median of ``steps`` timed steps is the figure (fewer, at least 2, once they took
    ``budget_s``: slow variants need no more); the first step is reported apart
    (``first_step_s``: includes ``torch.compile``'s compilation when asked).
    """
    torch.manual_seed(0)
    in_channels = next(net.parameters()).shape[1]
    image = torch.randn(batch_size, in_channels, image_size, image_size)
    target = (torch.rand(batch_size, 1, image_size, image_size) > 0.5).float()
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        image = image.contiguous(memory_format=torch.channels_last)
    model = torch.compile(net) if compile else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(image)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with torch_threads(threads), _no_compile_cache(compile):
        _, first = time_call(step)
        step()  # warm-up: allocator and oneDNN primitive caches
        timings = []
        while len(timings) < max(1, steps) and (len(timings) < 2 or sum(t.wall_s for t in timings) < budget_s):
            timings.append(time_call(step)[1])
    wall = statistics.median(t.wall_s for t in timings)
    cpu = statistics.median(t.cpu_s for t in timings)
    return {
        "batch_size": batch_size,
        "bf16": bf16,
        "channels_last": channels_last,
        "threads": threads or torch.get_num_threads(),
        "compile": compile,
        "steps": len(timings),
        "step_s": wall,
        "step_cpu_s": cpu,
        "images_per_s": batch_size / wall,
        "first_step_s": first.wall_s,
    }


def _nets(cfg: DictConfig, overrides: list[str]) -> dict:
    """Builders of our network (as configured, and with half the channels: what a smaller model would
    gain), of the :data:`CANDIDATES`, and of the MONAI reference, if MONAI is installed."""
    from hydra.utils import instantiate

    half = [max(1, int(c) // 2) for c in cfg.model.net.channels]
    builders = {"ours": lambda: instantiate(cfg.model.net), "ours half channels": lambda: instantiate(cfg.model.net, channels=half)}
    for name, extra in CANDIDATES.items():  # each candidate's network, as its loop builds it (ours in NCHW is ours)
        net = compose_conf("train", [*overrides, *extra]).model.net
        if net != cfg.model.net:
            builders[name.removesuffix(" fp32")] = lambda net=net: instantiate(net)
    try:
        import monai  # noqa: F401

        builders["monai"] = lambda: instantiate(OmegaConf.create(monai_unet(cfg.model.net)))
    except ImportError:
        pass
    return builders


# The two networks raced over seeds: the loop's name -> (run name, overrides, MONAI's network).
RACERS = {"ours fp32": ("ours-fp32", [], False), "monai fp32": ("monai-fp32", ["model.channels_last=false"], True)}


def race_summary(seeds: list[int], runs: list[dict]) -> dict:
    """One racer's runs (clock summaries, in the order of ``seeds``): seconds and epochs to the
    target (None: not reached), images/s, and their medians. A run that did not reach the target
    counts as slower than every run that did, so the median is None when half of them or more did not."""
    seconds = [run["seconds_to_target"] for run in runs]
    median = statistics.median(float("inf") if value is None else value for value in seconds)
    return {
        "seeds": list(seeds),
        "seconds_to_target": seconds,
        "epochs_to_target": [run["epochs_to_target"] for run in runs],
        "images_per_s": [run["images_per_s"] for run in runs],
        "median_seconds_to_target": None if median == float("inf") else median,
        "median_images_per_s": statistics.median(run["images_per_s"] for run in runs),
    }


def race_to_target(
    workdir: Path, overrides: list[str], loop: dict, seed: int, race_seeds: tuple[int, ...],
    target_dice: float, max_seconds: float,
) -> dict:
    """Ours and MONAI's reference to the target once more per seed in ``race_seeds``: a
    :func:`race_summary` per racer, the loop's run (``seed``) first. Empty without MONAI (no reference)."""
    if not race_seeds or any(name not in loop for name in RACERS):  # before any run: none is wasted
        return {}
    race = {}
    for name, (slug, extra, reference) in RACERS.items():
        runs = [loop[name]] + [
            train_with_clock(workdir, f"{slug}-seed{s}", [*overrides, *extra, f"seed={s}"], target_dice, max_seconds,
                             reference=reference)
            for s in race_seeds
        ]
        race[name] = race_summary([seed, *race_seeds], runs)
    return race


def run(
    workdir: Path,
    overrides: list[str],
    target_dice: float = 0.95,
    max_seconds: float = 300.0,
    steps: int = 8,
    compile: bool = True,
    batch_sizes: tuple[int, ...] = (16, 32),
    race_seeds: tuple[int, ...] = (),
) -> dict:
    """Every training figure, measured now (see the module docstring); also returns ``model``,
    our fp32 network trained to the target, for the inference benchmark."""
    cfg = compose_training(workdir, "probe", overrides)
    image_size, batch, in_channels = int(cfg.data.image_size), int(cfg.data.batch_size), int(cfg.model.net.in_channels)
    builders = _nets(cfg, overrides)
    cores = torch.get_num_threads()

    flops = {name: gflop_per_image(build(), in_channels, image_size) for name, build in builders.items()}
    parameters = {name: sum(p.numel() for p in build().parameters()) for name, build in builders.items()}
    variants = {
        "ours fp32": dict(net="ours"),
        "ours bf16 autocast": dict(net="ours", bf16=True),
        "ours channels_last": dict(net="ours", channels_last=True),
        "ours 1 thread": dict(net="ours", threads=1),
        **{f"ours batch {n}": dict(net="ours", batch_size=n) for n in batch_sizes},
        "ours half channels": dict(net="ours half channels"),
        **({"monai fp32": dict(net="monai"), "monai bf16 autocast": dict(net="monai", bf16=True)} if "monai" in builders else {}),
        **({"ours torch.compile": dict(net="ours", compile=True)} if compile else {}),
    }
    # The loops first: they carry the headline figures; compilation (slow) comes last.
    loop = {}
    slug, extra, _ = RACERS["ours fp32"]  # the racers' first runs: the race's other seeds train them the same way
    summary, model = train_with_clock(workdir, slug, [*overrides, *extra], target_dice, max_seconds, return_model=True)
    loop["ours fp32"] = summary
    # A variant that has not reached the target by 1.5x our fp32 time cannot be the faster one.
    cap = min(max_seconds, 1.5 * (summary["seconds_to_target"] or summary["train_seconds"] or max_seconds))
    loop["ours bf16-mixed"] = train_with_clock(
        workdir, "ours-bf16", [*overrides, "trainer.precision=bf16-mixed"], target_dice, cap
    )
    if "monai" in builders:  # the reference as MONAI's users run it (NCHW), and in our NHWC layout
        slug, extra, _ = RACERS["monai fp32"]
        loop["monai fp32"] = train_with_clock(workdir, slug, [*overrides, *extra], target_dice, max_seconds, reference=True)
        loop["monai channels_last fp32"] = train_with_clock(
            workdir, "monai-channels-last", [*overrides, "model.channels_last=true"], target_dice, max_seconds, reference=True
        )
    for name, extra in CANDIDATES.items():
        loop[name] = train_with_clock(workdir, name.replace(" ", "-"), [*overrides, *extra], target_dice, max_seconds)
    race = race_to_target(workdir, overrides, loop, int(cfg.seed), race_seeds, target_dice, max_seconds)
    default_runs = {
        name: train_with_clock(workdir, f"default-{name}", [*overrides, *extra], default_run=True)
        for name, extra in (("ours", []), ("unet_classic", ["model=unet_classic"]))
    }

    step = {}
    for name, options in variants.items():
        options = dict(options)
        net = builders[options.pop("net")]()
        step[name] = step_throughput(net, options.pop("batch_size", batch), image_size, steps, **options)

    reference = loop.get("monai fp32", {})
    return {
        "image_size": image_size,
        "batch_size": batch,
        "threads": cores,
        "target_dice": target_dice,
        "gflop_per_image": flops,
        "parameters": parameters,
        "step": step,
        "loop": loop,
        "default_run": default_runs,
        "default_run_time_vs_classic": ratio(default_runs["ours"]["train_seconds"], default_runs["unet_classic"]["train_seconds"]),
        "ours_vs_reference_images_per_s": ratio(loop["ours fp32"]["images_per_s"], reference.get("images_per_s")),
        "ours_vs_reference_time_to_target": ratio(loop["ours fp32"]["seconds_to_target"], reference.get("seconds_to_target")),
        **({"race": race, "ours_vs_reference_median_time_to_target": ratio(
            race["ours fp32"]["median_seconds_to_target"], race["monai fp32"]["median_seconds_to_target"])}
           if race else {}),
        "bf16_vs_fp32_images_per_s": ratio(loop["ours bf16-mixed"]["images_per_s"], loop["ours fp32"]["images_per_s"]),
        "model": model,
    }
