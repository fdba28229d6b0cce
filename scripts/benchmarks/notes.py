"""The notes under the benchmark tables: what each figure means and, where a target is missed,
the measured limit that prevents it. Written from the figures of the same run, so they never
drift from the table."""

from __future__ import annotations

from benchmarks.results import SECTIONS, Results

BUSY_CORES = 0.2  # cores used by other processes above which a section's timings are flagged


def _preprocessing(p: dict) -> list[str]:
    floor = p["floor"]
    gib_s = p["raw_mib"] / 1024 / floor["wall_s"]
    lines = [
        f"- **MIP preprocessing** streams 16 MB slabs along the slowest storage axis in the stored dtype and "
        f"keeps one running maximum, so its cost is the decompression: {p['ours_vs_floor']:.2f}x the time of only "
        f"inflating the file with {p['decoder']} ({gib_s:.2f} GiB/s of voxels), {p['ours_vs_floor_zlib']:.2f}x the "
        f"stdlib zlib inflate, {p['naive_vs_ours']:.1f}x faster than the naive float64 way. A gzip stream inflates "
        "serially, so one file cannot use more than one core; a folder uses all of them (one case per worker).",
    ]
    if p["decoder"] == "zlib":
        lines.append("- `pip install isal` (ISA-L inflate) makes the decompression, hence the MIP, about twice as fast.")
    if len(p["folder"]) > 1:
        one, many = p["folder"][0], p["folder"][-1]
        overhead = many["wall_s"] - one["wall_s"] / many["workers"]
        lines.append(
            f"- **Folder preprocessing** runs one worker process per core: {many['workers']} workers take "
            f"{many['wall_s']:.1f} s for {many['cases']} cases where a perfect split of the 1-worker time would take "
            f"{one['wall_s'] / many['workers']:.1f} s. The {overhead:.1f} s difference is fixed per run (starting the "
            "worker processes and their imports, the main process collecting results), so the speed-up grows "
            f"towards {many['workers']}x with the folder: {p['folder_scaling']:.2f}x on this {many['cases']}-case one."
        )
    return lines


def _training(t: dict, machine: dict) -> list[str]:
    lines = []
    flops = t["gflop_per_image"]
    loop = t["loop"]
    reference = loop.get("monai fp32")
    if reference and "monai" in flops:
        ours_rate = loop["ours fp32"]["images_per_s"] * flops["ours"]
        monai_rate = reference["images_per_s"] * flops["monai"]
        lines.append(
            f"- **Training against MONAI's UNet** (same channels, strides 2, `num_res_units=0`, in our module and loop): "
            f"ours (`LeanUNet`: a strided convolution into every level, the top level at half resolution, one "
            f"convolution per decoder level, a sub-pixel head) does {flops['ours']:.3f} GFLOP per image (forward + "
            f"backward), MONAI's {flops['monai']:.3f}: {flops['ours'] / flops['monai']:.2f}x the work, run at "
            f"{ours_rate:.0f} and {monai_rate:.0f} GFLOP/s. Ours trains at "
            f"{t['ours_vs_reference_images_per_s']:.2f}x MONAI's images/s and reaches the target in "
            + (f"{t['ours_vs_reference_time_to_target']:.2f}x its time"
               + (f" (one run each, seed {t['race']['ours fp32']['seeds'][0]})" if t.get("race") else "")
               if t["ours_vs_reference_time_to_target"] else
               "- (one of them did not reach it)")
            + (", each in the memory layout it trains in by default: ours NHWC (`model.channels_last`), MONAI's NCHW."
               if "monai channels_last fp32" in loop else ".")
        )
        race = t.get("race")
        if race:
            mine, theirs = race["ours fp32"], race["monai fp32"]
            median_ratio = t["ours_vs_reference_median_time_to_target"]
            reached = [e for racer in (mine, theirs) for e in racer["epochs_to_target"] if e is not None]
            lines.append(
                f"- **Time to the target over seeds**: ours and MONAI's UNet, each trained once per seed "
                f"({', '.join(map(str, mine['seeds']))}), first reached val/dice {t['target_dice']} at epochs "
                f"{race_epochs(mine)} and {race_epochs(theirs)}"
                + (f": the seed alone moves it between epoch {min(reached)} and {max(reached)}, so one pair of runs "
                   "cannot rank the two" if reached else "")
                + f". Median time to the target: ours {_seconds(mine)}, MONAI's {_seconds(theirs)}"
                + (f": {median_ratio:.2f}x." if median_ratio else ".")
                + f" Median images/s: {mine['median_images_per_s']:.0f} and {theirs['median_images_per_s']:.0f}."
            )
        nhwc = loop.get("monai channels_last fp32")
        if nhwc and nhwc.get("images_per_s"):
            ours, nchw = loop["ours fp32"], loop.get("ours contiguous fp32")
            same_layout = (f" and reaches the target in {ours['seconds_to_target'] / nhwc['seconds_to_target']:.2f}x its time"
                           if ours["seconds_to_target"] and nhwc["seconds_to_target"] else "")
            lines.append(
                f"- **Memory layout**: ours trains at {ours['images_per_s']:.0f} images/s in NHWC"
                + (f" and {nchw['images_per_s']:.0f} in NCHW" if nchw else "")
                + f", MONAI's UNet at {nhwc['images_per_s']:.0f} in NHWC and {reference['images_per_s']:.0f} in NCHW. "
                f"In the same layout ours trains at {ours['images_per_s'] / nhwc['images_per_s']:.2f}x MONAI's images/s"
                f"{same_layout}."
            )
    lines.append(
        "- **Where ours' step went** (torch profiler, bare step, 2026-12-02): batch normalization of the two 8-channel "
        "layers at half the side took a seventh of it. PyTorch's NHWC batch normalization on the CPU runs forward and "
        "backward 4x slower than its NCHW one at 8 channels (2.3 ms against 0.55 ms for 8x8x64x64), at par from 16 "
        "channels on. `LayoutAwareBatchNorm2d` trains such layers in NCHW: the step went from 19.9 to 17.0 ms (MONAI's "
        "UNet: 15-16 ms in NCHW)."
    )
    lines.append(
        "- **The head, the optimizer and the allocator** (bare step, 2 threads, another machine's day, 2026-12-02): the "
        "head's 3x3 convolution over the features and the image's 2x2 blocks spent a tenth of the step copying the "
        "image into blocks, concatenating them to the features and computing a gradient for the image. It now runs "
        "the image's part as a 6x6 convolution with stride 2 on the pixels, the same weights in the pixels' places: "
        "22.8 -> 20.6 ms, same logits and gradients to float rounding (MONAI's UNet: 20.1 ms); trained the default way "
        "it ended with test Dice 0.9863, 0.9872, 0.9853, 0.9855, 0.9858 (seeds 42, 1, 2, 3, 4; mean 0.9860) against "
        "0.9871, 0.9859, 0.9835, 0.9861, 0.9853 (0.9856), and with mean Dice on the 100 wide generalization cases "
        "0.9841, 0.9847, 0.9836, 0.9853, 0.9852 (0.9846) against 0.9844, 0.9851, 0.9829, 0.9853, 0.9855 (0.9846), "
        "worst wide case 0.942-0.954 against 0.944-0.957. Tried and left alone: fused Adam/AdamW (one kernel "
        "for every parameter: 20.6 -> 19.2 ms, MONAI's 20.1 -> 18.8 ms) ended lower on every seed tried (test "
        "0.9842, 0.9810, 0.9858, wide 0.9815, 0.9804, 0.9841), for reasons not found: its update equals the loop's "
        "to 1e-7 when parameter and gradient share a memory layout (where they do not, torch 2.13's fused CPU "
        "kernel mixes up elements); glibc's `mallopt` keeping freed blocks for the next step gave the bare step "
        "10% in a fresh process and nothing in the training loop, where glibc's adaptive threshold already keeps them; "
        "logging Dice and IoU once per epoch instead of handing Lightning the metric objects in every step: 3% more "
        "images/s, not worth a second way of logging."
    )
    lines.append(
        "- **Batch-norm momentum** (`model.net.norm_momentum`: 0.3 in the default, torch's 0.1 before 2026-12-02): with "
        "14 batches an epoch, running statistics at 0.1 still hold a quarter of their starting values after the first "
        "epoch, and validation, which uses them, lags the weights (val/dice 0.21, then 0.05, after the first two epochs "
        "of seed 3). The default reached the target at epochs 3, 1, 3, 4, 3 (seeds 42, 1, 2, 3, 4) with 0.1 and at 2, "
        "1, 2, 2, 2 with 0.3. The whole default run over the same seeds: test Dice mean 0.9839 against 0.9837, mean "
        "Dice on the 100 wide generalization cases 0.9827 against 0.9822, worst wide case 0.940-0.950 against "
        "0.935-0.954."
    )
    lines.append(
        "- **Epoch budget** (`trainer.max_epochs`: 100 in the default, 60 before 2026-12-02): the cosine schedule "
        "over 100 epochs ends with test Dice 0.9871, 0.9859, 0.9835, 0.9861, 0.9853 (seeds 42, 1, 2, 3, 4; mean "
        "0.9856) against 0.9849, 0.9858, 0.9798, 0.9842, 0.9849 (0.9839) over 60, and on the 100 wide generalization "
        "cases with mean Dice 0.9846 against 0.9827, worst case 0.944-0.957 against 0.940-0.950: every seed gained on "
        "both, for 1.5x the training time (53 s against 36 s a run, whole process)."
    )
    classic = loop.get("unet_classic fp32")
    if classic and "unet_classic" in flops:
        lines.append(
            f"- **The earlier default network** (`model=unet_classic`: two 3x3 convolutions per level, the top one at "
            f"full resolution) does {flops['unet_classic']:.2f} GFLOP per image, {flops['unet_classic'] / flops['ours']:.0f}x "
            f"ours, and trains at {classic['images_per_s']:.0f} images/s against ours {loop['ours fp32']['images_per_s']:.0f}. "
            "Every candidate ran the same loop on the same data with the same seed; the table of candidates lists them."
        )
    quarter = loop.get("lean top_stride 4 fp32")
    if quarter and quarter.get("images_per_s"):
        lines.append(
            f"- **The top level at a quarter of the side** (`model.net.top_stride=4`) trains at "
            f"{quarter['images_per_s'] / loop['ours fp32']['images_per_s']:.2f}x ours' images/s in this loop. It is not the "
            "default: trained the default way on the same data it loses Dice, on the test split and on the wide "
            "generalization cases: 0.9824 and 0.9732 against 0.9836 and 0.9787 (generator version 2), 0.9784 and 0.9732 "
            "against 0.9817 and 0.9773 (version 3; with a residual unit per deep level 0.9815 and 0.9703), one run each, "
            "2026-12."
        )
    quarter_wide = loop.get("lean top_stride 4 16ch fp32")
    if quarter_wide and quarter_wide.get("images_per_s"):
        lines.append(
            "- **A quarter of the side with 16 channels** (`model.net.top_stride=4 model.net.channels=[16,32,64]`: "
            "3 levels, the deepest as deep and as wide as ours) trains at "
            f"{quarter_wide['images_per_s'] / loop['ours fp32']['images_per_s']:.2f}x ours' images/s in this loop. Trained "
            "the default way (generator version 4, five input channels, both with 60 epochs and torch's batch-norm "
            "momentum 0.1; seeds 42, 1, 2, 3, 4, one run each, 2026-12-02) it "
            "ends with test Dice 0.9822, 0.9834, 0.9838, 0.9839, 0.9836 (mean 0.9834) against ours' 0.9846, 0.9836, "
            "0.9806, 0.9850, 0.9846 (0.9837); on the 100 wide generalization cases with mean Dice 0.9811 against 0.9822 "
            "(lower for 4 seeds of 5) and a worst case of 0.944-0.951 against 0.935-0.954; in 0.83x ours' time (whole "
            "process, median 29.1 s against 35.2 s). With today's defaults (100 epochs, momentum 0.3, seed 42, "
            "2026-12-02) it loses on both again: test Dice 0.9849 against 0.9871, wide mean 0.9834 against 0.9844, and "
            "0.9843 and 0.9807 with a residual unit at the deepest level. It is not the default: the default may not "
            "lose wide Dice for speed."
        )
    runs = t.get("default_run")
    if runs:
        ours_run, classic_run = runs["ours"], runs["unet_classic"]
        lines.append(
            f"- **The whole default run** (`python train.py`: 100 epochs at most, early stopping, the best checkpoint "
            f"tested) trains in {ours_run['train_seconds']:.1f} s to test Dice {ours_run['test_dice']:.4f} "
            f"({ours_run['epochs']} epochs); with `model=unet_classic` it takes {classic_run['train_seconds']:.1f} s to "
            f"test Dice {classic_run['test_dice']:.4f} ({classic_run['epochs']} epochs): "
            f"{t['default_run_time_vs_classic']:.2f}x the time. Process start-up and data preparation (a few seconds, "
            "the same for both) are not included."
        )
    bf16 = t["bf16_vs_fp32_images_per_s"]
    hardware = "has" if machine["bf16_hardware"] else "has no"
    lines.append(
        f"- **bf16-mixed** runs {bf16:.2f}x the fp32 speed here: this CPU {hardware} bf16 matrix hardware "
        f"(SIMD: {', '.join(machine['simd']) or 'none'}; bf16 is fast with AVX512_BF16 or AMX, and on GPUs), so "
        + ("it is the faster choice on this machine." if bf16 > 1.1 else "the default precision stays `32-true`.")
    )
    step = t["step"]
    base = step["ours fp32"]
    knobs = []
    for name, s in step.items():
        if name.startswith("ours") and name != "ours fp32":
            knobs.append(f"{name.removeprefix('ours ')} {s['images_per_s'] / base['images_per_s']:.2f}x")
    lines.append("- **Step variants** against ours fp32 (images/s): " + ", ".join(knobs) + ".")
    compiled = step.get("ours torch.compile")
    if compiled:
        lines.append(
            f"- **torch.compile**: the first step takes {compiled['first_step_s']:.0f} s (compilation), then steps run "
            f"{compiled['images_per_s'] / base['images_per_s']:.2f}x eager speed: "
            + ("worth it for long runs only." if compiled["images_per_s"] > 1.1 * base["images_per_s"] else
               "no gain on this CPU, so it is not used.")
        )
    return lines


def _inference(i: dict) -> list[str]:
    volume = i.get("volume")
    if not volume:
        return ["- **3-D mode**: `brainseg.inference.volume` is not installed in this checkout; no volume figure."]
    net = volume.get("net") or {}
    lines = [f"- **3-D mask**: slice model {volume.get('network', 'LeanUNet')}, channels {net.get('channels')}, {net.get('in_channels')} slice(s) per "
             "input, read, inferred slice by slice, post-processed and written with `brainseg.inference.volume`; its timings per "
             "stage are its own."]
    if not volume["trained"]:
        lines.append(
            "- **3-D mask**: measured with an untrained network of the default size (no slice-mode checkpoint was "
            "given; `volume_checkpoint=CKPT` uses one). Reading and network time are those of a trained model; "
            "post-processing and writing depend on the mask, so they may differ."
        )
    if volume["total"] >= volume["target_s"]:
        slowest = max(("read", "infer", "postprocess", "write"), key=lambda k: volume.get(k, 0))
        lines.append(f"- The volume target is missed; the largest stage is `{slowest}` ({volume[slowest]:.1f} s).")
    return lines


def _loading(l: dict) -> list[str]:
    runs = {run["num_workers"]: run for run in l["runs"]}
    text = ", ".join(f"{100 * run['wait_share']:.1f}% with num_workers={n}" for n, run in runs.items())
    line = (f"- **Data loading**: MIPs are held in memory and augmented on the fly, a batch at a time (each sample's "
            "random numbers from its own generator, one sampling grid for the batch: the samples of one by one, bit for "
            f"bit, in two thirds of the time); waiting for the next batch takes "
            f"{text} (first epoch left out: worker start-up).")
    if 0 in runs and 2 in runs:
        faster = runs[2]["images_per_s"] / runs[0]["images_per_s"]
        line += (f" Two workers give {faster:.2f}x the images/s of none" +
                 (": on 2 cores they compete with the training threads, so the default stays 0." if faster < 1.05 else "."))
    return [line]


def notes(results: Results) -> str:
    """Markdown notes for the sections present in ``results``."""
    s = results.sections
    lines = ["## Notes", ""]
    busy = [f"{name} ({s[name]['others_cores']:.2f} cores)" for name in SECTIONS
            if name in s and (s[name].get("others_cores") or 0) > BUSY_CORES]
    if busy:
        lines.append(f"- Other processes kept cores busy during: {', '.join(busy)}. "
                     "Multi-threaded torch figures suffer most (a thread that loses its core stalls the other); "
                     "single-threaded and CPU-time figures are the steadier ones.")
    if "preprocessing" in s:
        lines += _preprocessing(s["preprocessing"])
    if "training" in s:
        lines += _training(s["training"], results.machine)
    if "inference" in s:
        lines += _inference(s["inference"])
    if "loading" in s:
        lines += _loading(s["loading"])
    return "\n".join(lines) + "\n"


def race_epochs(racer: dict) -> str:
    """A racer's epochs to the target in seed order, '-' where it did not reach it."""
    return ", ".join("-" if epoch is None else str(epoch) for epoch in racer["epochs_to_target"])


def _seconds(racer: dict) -> str:
    median = racer["median_seconds_to_target"]
    return "not reached" if median is None else f"{median:.2f} s"
