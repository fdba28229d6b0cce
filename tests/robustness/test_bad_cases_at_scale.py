"""Nothing lost at scale: a dataset where a third of the cases are broken, prepared by worker
processes, gives every good case and names every bad file once, under both representations;
``on_bad_case=fail`` lists them all in one error, and ``scripts/preprocess.py`` exits 1 with that
list and no traceback. Prediction and evaluation go on past the bad cases.

The issue's scenario: 63 cases, 21 of them broken in the ways real exports are (damaged headers,
truncated files, complex or RGB voxels, a NaN intercept, bad masks), 24 x 20 x 8 voxels each.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from brainseg.data import preparation
from brainseg.data.preparation import prepare_dataset
from brainseg.data.projection import MipRepresentation
from brainseg.data.slices import SliceRepresentation
from brainseg.errors import BadDatasetError
from brainseg.evaluation.evaluate import evaluate
from brainseg.inference.predict import predict
from tests.conftest import compose_config, phantom, write_nifti
from tests.robustness.corpus import AFFINE, SHAPE, write_case
from tests.robustness.mutants import (
    DATA_TYPES,
    SCL_SLOPE,
    patch,
    read_raw,
    write_raw,
    write_typed,
)
from tests.robustness.test_bad_inputs import best_checkpoint

ROOT = Path(__file__).resolve().parents[2]
REPRESENTATIONS = {"mip": MipRepresentation(), "slices": SliceRepresentation(2.0)}


def _damaged_header(image, mask):
    raw = read_raw(image)
    raw[344:348] = b"\x00\x13\x37\x00"  # the magic number, as a bad transfer or a hex editor leaves it
    write_raw(image, raw)
    return image


def _truncated(image, mask):
    data = image.read_bytes()
    image.write_bytes(data[: len(data) * 2 // 3])
    return image


def _complex_voxels(image, mask):
    write_typed(image, phantom(SHAPE)[0], DATA_TYPES[32], 32)
    return image


def _rgb_voxels(image, mask):
    write_typed(image, phantom(SHAPE)[0], DATA_TYPES[128], 128)
    return image


def _nan_intercept(image, mask):
    patch(image, SCL_SLOPE, "ff", 1.0, float("nan"))
    return image


def _labelled_mask(image, mask):
    brain = phantom(SHAPE)[1]
    brain[:, :, SHAPE[2] // 2 :] *= 2  # label 2 in the upper half: a structure label left in the export
    return write_nifti(mask, brain, AFFINE)


def _empty_mask(image, mask):
    return write_nifti(mask, np.zeros(SHAPE, np.uint8), AFFINE)


# how a case is broken -> (breaks its image or mask and returns the file, the problem its error must state)
BREAKS = {
    "damaged_header": (_damaged_header, r"not a readable NIfTI file \(no NIfTI-1 or NIfTI-2 magic number in the header\)"),
    "truncated": (_truncated, r"unreadable data|file is truncated"),
    "complex_voxels": (_complex_voxels, r"voxels of type complex64 are not numbers brainseg reads"),
    "rgb_voxels": (_rgb_voxels, r"voxels of type RGB are not numbers brainseg reads"),
    "nan_intercept": (_nan_intercept, r"Valid slope but invalid intercept nan"),
    "labelled_mask": (_labelled_mask, r"mask is not binary: values \{0, 1, 2\}"),
    "empty_mask": (_empty_mask, r"mask is empty \(no brain voxels\)"),
}


def make_broken_dataset(root: Path, n: int) -> tuple[list[str], dict[str, str]]:
    """``n`` cases, every third one broken (cycling through :data:`BREAKS`): the good case IDs, and
    each broken file with the problem its error must state."""
    good, broken = [], {}
    for index in range(n):
        image, mask = write_case(root, f"case{index:02d}", seed=index % 5)
        if index % 3 == 2:
            writer, problem = list(BREAKS.values())[(index // 3) % len(BREAKS)]
            broken[str(writer(image, mask))] = problem
        else:
            good.append(f"case{index:02d}")
    return good, broken


def assert_each_named_once(text: str, broken: dict[str, str]) -> None:
    """Each broken file is named on exactly one line of ``text``, which states its problem."""
    for file, problem in broken.items():
        lines = [line for line in text.splitlines() if file in line]
        assert len(lines) == 1 and re.search(problem, lines[0]), (file, lines)


def cached_cases(cache: Path) -> set[str]:
    return {path.name.split(".")[0] for path in cache.rglob("*") if path.suffix in (".png", ".npz") and path.parent.name not in ("masks", "extra")}


class RecordingPool(ProcessPoolExecutor):
    sizes: list[int] = []

    def __init__(self, max_workers, **kwargs):
        RecordingPool.sizes.append(max_workers)
        super().__init__(max_workers, **kwargs)


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(REPRESENTATIONS))
def test_worker_processes_prepare_every_good_case_and_name_every_bad_file_once(mode, tmp_path, monkeypatch, caplog, capfd):
    good, broken = make_broken_dataset(tmp_path / "ds", n=12)
    monkeypatch.setattr(preparation, "MIN_CASES_PER_WORKER", 1)  # a pool of 2 even for 12 cases
    monkeypatch.setattr(preparation, "ProcessPoolExecutor", RecordingPool)
    RecordingPool.sizes = []
    caplog.set_level(logging.WARNING)
    cache = tmp_path / "cache"

    prepared = prepare_dataset(tmp_path / "ds", cache, REPRESENTATIONS[mode], on_bad_case="skip", workers=2, progress=False)
    assert sorted(prepared.items) == good and cached_cases(cache) == set(good)
    assert prepared.skipped.keys() == broken.keys()
    assert_each_named_once(caplog.text, broken)

    with pytest.raises(BadDatasetError) as error:  # the good cases come from the cache now, the bad ones are read again
        prepare_dataset(tmp_path / "ds", cache, REPRESENTATIONS[mode], on_bad_case="fail", workers=2, progress=False)
    assert error.value.bad_files.keys() == broken.keys()
    assert str(error.value).splitlines()[0] == f"{len(broken)} bad file(s) under data.on_bad_case=fail:"
    assert_each_named_once(str(error.value), broken)

    assert RecordingPool.sizes == [2, 2]
    assert "Traceback" not in capfd.readouterr().err + caplog.text
    assert not list(cache.rglob("*.tmp"))


# ---- the scenario: scripts/preprocess.py over 63 cases, 21 broken ----------------------

N_CASES = 63


@pytest.fixture(scope="module")
def scale_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale") / "ds"
    good, broken = make_broken_dataset(root, N_CASES)
    return root, good, broken


@pytest.fixture(scope="module")
def preprocess_runs(scale_dataset, tmp_path_factory):
    """``scripts/preprocess.py`` under each policy and mode, all four at once, 2 workers each."""
    root, _, _ = scale_dataset
    tmp = tmp_path_factory.mktemp("preprocess_runs")
    assert N_CASES // preparation.MIN_CASES_PER_WORKER >= 2  # enough cases for a pool of 2
    processes = {}
    for mode in REPRESENTATIONS:
        for policy in ("skip", "fail"):
            command = [
                sys.executable, str(ROOT / "scripts" / "preprocess.py"), "data=folder", f"data.root={root}", f"mode={mode}",
                f"data.on_bad_case={policy}", "data.preprocess_workers=2", f"data.cache_dir={tmp / mode / policy / 'cache'}",
                f"hydra.run.dir={tmp / mode / policy / 'run'}",
            ]
            processes[mode, policy] = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for key, process in processes.items():
        stdout, stderr = process.communicate(timeout=600)
        results[key] = (process.returncode, stdout, stderr, tmp / key[0] / key[1])
    return results


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(REPRESENTATIONS))
def test_preprocess_py_under_skip_caches_every_good_case_and_names_every_bad_file_once(mode, scale_dataset, preprocess_runs):
    _, good, broken = scale_dataset
    returncode, stdout, stderr, folder = preprocess_runs[mode, "skip"]
    assert returncode == 0, stderr[-3000:]
    assert "Traceback" not in stderr
    summary = json.loads((folder / "run" / "preprocess_summary.json").read_text())
    assert summary["cases_ready"] == len(good) == 42 and summary["skipped"].keys() == broken.keys()
    assert_each_named_once("\n".join(line for line in stdout.splitlines() if line.startswith("  skipped")), broken)
    assert cached_cases(folder / "cache") == set(good)
    assert not list((folder / "cache").rglob("*.tmp"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(REPRESENTATIONS))
def test_preprocess_py_under_fail_exits_1_with_one_error_listing_the_bad_files(mode, scale_dataset, preprocess_runs):
    _, _, broken = scale_dataset
    returncode, _, stderr, folder = preprocess_runs[mode, "fail"]
    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    error = stderr[stderr.index("error: ") :].splitlines()
    assert error[0] == f"error: {len(broken)} bad file(s) under data.on_bad_case=fail:"
    assert len(error) == 1 + len(broken)
    assert_each_named_once("\n".join(error[1:]), broken)
    assert not (folder / "run" / "preprocess_summary.json").exists()


# ---- prediction and evaluation go on past the bad cases ----------------------------------------


@pytest.mark.slow
def test_mip_prediction_and_evaluation_go_on_past_the_bad_cases(scale_dataset, trained_run, tmp_path):
    root, good, broken = scale_dataset
    checkpoint = best_checkpoint(trained_run)
    out = tmp_path / "predicted"
    failures = predict(compose_config([f"ckpt_path={checkpoint}", f"input={root}", f"output={out}"], tmp_path, "predict"))
    bad_images = {file: problem for file, problem in broken.items() if "CTA images" in file}
    assert len(failures) == len(bad_images)  # prediction reads no mask: a case with a bad mask is predicted
    assert_each_named_once("\n".join(failures), bad_images)
    predicted = {path.name.removesuffix("_mask.png") for path in out.glob("*_mask.png")}
    assert predicted == {f"case{i:02d}" for i in range(N_CASES)} - {Path(file).name.split(".")[0] for file in bad_images}

    overrides = [f"ckpt_path={checkpoint}", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}", "data.preprocess_workers=2"]
    cfg = compose_config(overrides, tmp_path / "evaluate", "evaluate")
    evaluate(cfg)
    scored = [line.split(",")[0] for line in (Path(cfg.paths.output_dir) / "per_case.csv").read_text().splitlines()[1:]]
    assert scored == good
    assert json.loads((Path(cfg.paths.output_dir) / "data_report.json").read_text())["skipped"].keys() == broken.keys()


@pytest.mark.slow
def test_volume_prediction_and_evaluation_go_on_past_the_bad_cases(scale_dataset, tmp_path):
    root, good, broken = scale_dataset
    checkpoint = ROOT / "tests" / "fixtures" / "slices_unet_v0.ckpt"
    out = tmp_path / "predicted"
    overrides = [f"ckpt_path={checkpoint}", f"input={root}", f"output={out}", "volumes.brain_mip=false"]
    failures = predict(compose_config(overrides, tmp_path, "predict"))
    bad_images = {file: problem for file, problem in broken.items() if "CTA images" in file}
    assert_each_named_once("\n".join(failures), bad_images)
    assert len(list(out.glob("*_brainmask.nii.gz"))) == N_CASES - len(bad_images)

    cfg = compose_config([f"ckpt_path={checkpoint}", f"data.root={root}"], tmp_path / "evaluate", "evaluate")
    evaluate(cfg)  # each volume is scored on its own grid: a bad case is a row with its error
    with open(Path(cfg.paths.output_dir) / "per_case.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    errors = {row["case_id"]: row["error"] for row in rows if row["error"]}
    assert len(rows) == N_CASES and set(errors) == {f"case{i:02d}" for i in range(N_CASES)} - set(good)
    assert_each_named_once("\n".join(errors.values()), broken)
