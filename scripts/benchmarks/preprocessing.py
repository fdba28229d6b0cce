"""MIP preprocessing against its limits: decompression floor, the naive way, raw volume size, cores.

* **Floor**: only decompressing the ``.nii.gz`` into one reused 16 MB buffer, with the fastest
  inflate installed (ISA-L when ``isal`` is, else zlib). Nothing that reads every voxel of a
  gzip file can be faster; stdlib zlib is timed too, for reference.
* **Ours**: :func:`brainseg.data.projection.project_image` (streamed slabs, stored dtype).
* **Naive**: ``nib.load(path).get_fdata()`` (float64), ``np.max`` along S, min-max to uint8.
* **Memory**: the rise of resident memory in a fresh process, against the raw int16 volume.
* **Cores**: a folder of cases through :func:`prepare_dataset` with 1 worker and with all cores.
"""

from __future__ import annotations

import os
import shutil
import zlib
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmarks.common import MIB, measured, ratio, repeat, time_call
from brainseg.data import nifti
from brainseg.data.preparation import MIN_CASES_PER_WORKER, prepare_dataset
from brainseg.data.projection import project_image
from brainseg.synthetic import SyntheticConfig, case_paths, generate_case, write_case

CHUNK_BYTES = 16 * MIB  # what the floor decompresses at a time (iter_slabs' slab size)


def make_volume(path: Path, shape: tuple[int, int, int], seed: int = 0) -> Path:
    """A synthetic head CTA of exactly ``shape`` (int16 .nii.gz, scanner-like noise) and its
    mask, written once in the dataset layout; returns the image path."""
    image_path, mask_path = case_paths(path, "case000")
    if image_path.exists() and mask_path.exists():
        return image_path
    side, _, slices = shape
    config = replace(
        SyntheticConfig.realistic(),
        shape_in_plane=(side, side),
        slice_count=(slices, slices),
        slice_spacing_mm=(0.7, 0.7),
        slice_thickness_ratio=(1.0, 1.0),
        fov_kinds=(("head", 1.0),),
        orientations=("LPS",),
    )
    write_case(generate_case(seed, config), path, "case000")
    return image_path


def decompress(path: str, decoder: str = "fastest") -> int:
    """Inflate the whole file into one reused buffer; returns the decompressed byte count."""
    buffer, total = bytearray(CHUNK_BYTES), 0
    if decoder == "fastest" and nifti.fast_gzip is not None:
        with nifti.fast_gzip.open(path, "rb") as stream:
            while count := stream.readinto(buffer):
                total += count
        return total
    inflater = zlib.decompressobj(wbits=31)  # gzip header, stdlib zlib
    with open(path, "rb", buffering=0) as raw:
        while chunk := inflater.unconsumed_tail or raw.read(MIB):
            total += len(inflater.decompress(chunk, CHUNK_BYTES))
    return total


def project_ours(path: str) -> list[int]:
    """brainseg's MIP of the image; returns its shape."""
    image, _ = project_image(nifti.open_nifti(path))
    return list(image.shape)


def project_naive(path: str) -> list[int]:
    """What one writes without thinking about memory: float64 volume, max, min-max to uint8."""
    volume = nib.load(path).get_fdata()
    mip = volume.max(axis=2)
    scaled = ((mip - mip.min()) / max(float(mip.max() - mip.min()), 1e-12) * 255).astype(np.uint8)
    return list(scaled.shape)


def link_folder(source_root: Path, folder: Path, n_cases: int) -> Path:
    """A dataset of ``n_cases`` cases that are hard links (or copies) of the one in ``source_root``."""
    image, mask = case_paths(source_root, "case000")
    for index in range(n_cases):
        for source, target in zip((image, mask), case_paths(folder, f"case{index:03d}")):
            if target.exists():
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)
    return folder


def folder_throughput(folder: Path, cache_dir: Path, workers: int) -> dict:
    """Cases per second for projecting and caching every case of ``folder`` with ``workers`` processes."""
    shutil.rmtree(cache_dir, ignore_errors=True)
    prepared, timing = time_call(prepare_dataset, folder, cache_dir, workers=workers, progress=False)
    n = len(prepared.items)
    return {"workers": workers, "cases": n, "wall_s": timing.wall_s, "cases_per_s": n / timing.wall_s}


def run(workdir: Path, shape: tuple[int, int, int], repeats: int = 3, folder_workers: tuple[int, ...] | None = None,
        fresh: bool = True) -> dict:
    """Every preprocessing figure, measured now, as a dict (see the module docstring).

    ``folder_workers``: worker counts for the folder figure; defaults to 1 and all cores.
    ``fresh``: measure memory in fresh processes (``False``: in this one, for smoke tests).
    """
    image = make_volume(workdir / "volume", shape)
    raw_mib = float(np.prod(shape)) * 2 / MIB  # int16
    decoder = "isal" if nifti.fast_gzip is not None else "zlib"
    path = str(image)
    decompress(path)  # the first read brings the file into the page cache: all runs then read from memory

    floor = repeat(decompress, repeats, path)
    floor_zlib = repeat(decompress, repeats, path, "zlib") if decoder != "zlib" else floor
    ours = repeat(project_ours, repeats, path)
    naive = repeat(project_naive, max(1, repeats - 1), path)

    memory = {
        name: measured(__name__, function, fresh, path=path)
        for name, function in [("floor", "decompress"), ("ours", "project_ours"), ("naive", "project_naive")]
    }

    cores = os.cpu_count() or 1
    counts = sorted(folder_workers or {1, cores})
    # prepare_dataset gives each worker at least MIN_CASES_PER_WORKER cases
    folder = link_folder(image.parents[1], workdir / "folder", MIN_CASES_PER_WORKER * max(counts))
    folders = [folder_throughput(folder, workdir / f"cache-{n}", n) for n in counts]
    scaling = ratio(folders[-1]["cases_per_s"], folders[0]["cases_per_s"])
    return {
        "shape": list(shape),
        "raw_mib": raw_mib,
        "file_mib": image.stat().st_size / MIB,
        "decoder": decoder,
        "floor": floor,
        "floor_zlib": floor_zlib,
        "ours": ours,
        "naive": naive,
        "ours_vs_floor": ratio(ours["wall_s"], floor["wall_s"]),
        "ours_vs_floor_cpu": ratio(ours["cpu_s"], floor["cpu_s"]),
        "ours_vs_floor_zlib": ratio(ours["wall_s"], floor_zlib["wall_s"]),
        "naive_vs_ours": ratio(naive["wall_s"], ours["wall_s"]),
        "memory": memory,
        "ours_memory_vs_raw": ratio(memory["ours"]["rise_mib"], raw_mib),
        "naive_memory_vs_raw": ratio(memory["naive"]["rise_mib"], raw_mib),
        "folder": folders,
        "folder_scaling": scaling,
        "cores": cores,
    }
