"""Writing synthetic cases in the researchers' layout, and whole datasets over a process pool."""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np

from .config import SyntheticConfig, SyntheticMixture
from .generate import SyntheticCase, generate_case

IMAGE_DIR, MASK_DIR = "CTA images", "brain masks"
# Bump when a seed's case changes (2: taller heads in the wide presets; 3: the atlas cavity in half
# the wide presets' cases; 4: no brain in the mask outside a circular reconstruction field): a
# dataset folder made by another version is made again, not trained on as if it were today's.
GENERATOR_VERSION = 4
STAMP = "generator.json"
log = logging.getLogger(__name__)


def made_by_this_generator(root: Path) -> bool:
    """Whether ``root``'s cases came from this :data:`GENERATOR_VERSION` (an empty folder did)."""
    root = Path(root)
    stamp = root / STAMP
    if stamp.is_file():
        return json.loads(stamp.read_text()).get("version") == GENERATOR_VERSION
    return not (root / IMAGE_DIR).is_dir()


def stamp_generator(root: Path) -> None:
    """Record that ``root``'s cases are this generator's."""
    Path(root).mkdir(parents=True, exist_ok=True)
    (Path(root) / STAMP).write_text(json.dumps({"version": GENERATOR_VERSION}) + "\n")


def case_paths(root: Path, case_id: str) -> tuple[Path, Path]:
    """Where ``write_case`` puts a case's image and mask."""
    root = Path(root)
    return root / IMAGE_DIR / f"{case_id}.nii.gz", root / MASK_DIR / f"{case_id}_ROI.nii.gz"


def _save_atomically(image: nib.Nifti1Image, path: Path) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.nii.gz")
    try:
        nib.save(image, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _nifti(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data, affine)
    image.set_sform(affine, code=1)  # scanner
    image.set_qform(affine, code=1)
    image.header.set_xyzt_units("mm", "sec")
    return image


def write_case(case: SyntheticCase, root: Path, case_id: str) -> tuple[Path, Path]:
    """Write ``<root>/CTA images/<id>.nii.gz`` (int16, scl_slope/inter) and ``<root>/brain masks/<id>_ROI.nii.gz``."""
    image_path, mask_path = case_paths(root, case_id)
    image = _nifti(case.image.astype(np.int16, copy=False), case.affine)
    image.header.set_data_dtype(np.int16)
    image.header.set_slope_inter(case.slope, case.intercept)
    _save_atomically(image, image_path)
    mask = _nifti(case.mask.astype(np.uint8, copy=False), case.affine)
    mask.header.set_data_dtype(np.uint8)
    _save_atomically(mask, mask_path)
    return image_path, mask_path


def case_seed(seed: int, index: int) -> int:
    """Seed of case ``index``: depends on (seed, index) only, not on the dataset size."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1, np.uint64)[0] >> 1)


def _make_case(args: tuple[Path, str, int, SyntheticConfig | SyntheticMixture]) -> str:
    root, case_id, seed, config = args
    write_case(generate_case(seed, config), root, case_id)
    return case_id


def synthesize_dataset(
    root: Path,
    n: int,
    seed: int,
    config: SyntheticConfig | SyntheticMixture | None = None,
    workers: int | None = None,
    progress: bool = True,
) -> list[str]:
    """Generate cases ``synth_0000`` ... ``synth_<n-1>`` under ``root``; returns their ids.

    Cases whose image and mask both exist are skipped, so an interrupted run can resume; all are
    made again if an older generator made the folder (:func:`made_by_this_generator`).
    """
    config = config or SyntheticConfig()
    root = Path(root)
    ids = [f"synth_{i:04d}" for i in range(n)]
    current = made_by_this_generator(root)
    if not current:
        log.warning("%s was made by an older synthetic generator: making its cases again", root)
    todo = [(root, cid, case_seed(seed, i), config) for i, cid in enumerate(ids)
            if not current or not all(p.exists() for p in case_paths(root, cid))]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="synthesizing", unit="case")
    if workers == 1:
        for args in todo:
            _make_case(args)
            bar and bar.update()
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in pool.map(_make_case, todo):
                bar and bar.update()
    if bar is not None:
        bar.close()
    stamp_generator(root)
    return ids
