"""Fuzzing the readers: 301 seeded mutants of a good tiny case (tests/robustness/mutants.py), each
read as its header says or refused in one line naming its file, never a traceback or a hang.

Two levels, each step under a time limit (past it, a hang fails the test). Each mutant alone: what
both representations make of it, checked against the rules of docs/robustness.md and, for the MIP,
against what nibabel itself reads. Then the whole folder, for each mode, through what the scripts
run: preprocessing under skip and under fail (worker processes), one training epoch, prediction
and evaluation: every mutant is taken or refused as it was alone, the good cases always go
through, and nothing half-written is left. (The command line's one-line errors and exit status
over bad cases are tests/robustness/test_bad_cases_at_scale.py's.)
"""

from __future__ import annotations

import csv
import json
import re
import signal
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.preparation import _prepare_case
from brainseg.data.preprocess import preprocess
from brainseg.data.projection import MipRepresentation, ras_to_display
from brainseg.data.slices import SliceRepresentation
from brainseg.errors import BadCaseError, BadDatasetError
from brainseg.evaluation.evaluate import evaluate
from brainseg.inference.predict import predict
from brainseg.training.train import train
from tests.conftest import compose_config
from tests.robustness.mutants import Mutant, make_mutants, write_good_case

REPRESENTATIONS = {"mip": MipRepresentation(), "slices": SliceRepresentation(2.0)}
GOOD_CASES = ("good_000", "good_001", "good_002")
SECONDS_PER_CASE = 20  # a mutant taking longer than this to read is a hang
AFFINE_REFUSED = r"affine is missing, not finite or singular"
IMPLAUSIBLE = r"voxel size \(.*\) mm is implausible"
MASK_GRID = r"mask affine differs from the image's"

# (kind, change pattern, what must happen): 'read', or the pattern of the refusal; first match wins.
# Random header bytes may go either way; the rest is what docs/robustness.md promises.
RULES = [
    ("truncated", r"", r"^(file is truncated|unreadable data)"),
    ("pixdim", r"pixdim\[0\]", "read"),  # qfac other than -1 is taken as 1
    ("pixdim", r"= (0|-0.8), sform_code = 0", "read"),  # nibabel: zero -> 1 mm, negative -> its size (a warning)
    ("pixdim", r"= (nan|inf|1e-30), sform_code = 0", AFFINE_REFUSED),
    ("pixdim", r"sform_code = 0", IMPLAUSIBLE),
    ("pixdim", r"", "read"),  # the sform is the affine; pixdim is not read
    ("scaling", r"scl_inter = (nan|inf)", r"not a readable NIfTI file \(Valid slope but invalid intercept (nan|inf)\)"),
    ("scaling", r"", "read"),  # slope 0, NaN or Inf: no scaling; otherwise the values the header gives
    ("affine", r"huge", IMPLAUSIBLE),
    ("affine", r"quatern_b 5", r"not a readable NIfTI file \(w2 should be positive"),
    ("affine", r"NaN|Inf|zero|singular", AFFINE_REFUSED),
    ("affine", r"^image: sform (sheared|axes)", MASK_GRID),  # the image's alone: the mask is on another grid
    ("affine", r"", "read"),  # invalid codes are 0; sheared and permuted pairs are read as they are
    ("dtype", r"datatype (1536|2048)", r"not a readable NIfTI file \(data code \d+ not supported\)"),
    ("dtype", r"complex|'R'", r"voxels of type (complex\d+|RGBA?) are not numbers brainseg reads"),
    ("dtype", r"", "read"),
    ("dim0", r"dim\[0\] = (-1|8)", r"dim\[0\] = (-1|8) is not a number of dimensions"),
    ("dim0", r"dim\[0\] = [012]$", r"expected a 3-D volume, got [012]-D"),
    ("dim0", r"", "read"),  # 4 to 7 with every extra dimension 1
    ("single_slice", r"", "read"),
    ("mask_values", r"label|fractional \{0, 0.5|probabilities", r"mask is not binary"),
    ("mask_values", r"", "read"),  # one non-zero value, however odd: binarized (a warning unless it is 1)
]


def expected_outcome(mutant: Mutant) -> str | None:
    """'read', a refusal pattern, or ``None`` (either) for random header bytes."""
    for kind, change, outcome in RULES:
        if mutant.kind == kind and re.search(change, mutant.change):
            return outcome
    return None


@contextmanager
def time_limit(seconds: int, what: str):
    def hang(*_):
        raise TimeoutError(f"{what} took over {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """The dataset folder: every mutant, plus three good cases; and each case's files."""
    root = tmp_path_factory.mktemp("fuzz") / "ds"
    mutants = {mutant.case_id: mutant for mutant in make_mutants(root, seed=0)}
    for case_id in GOOD_CASES:
        write_good_case(root, case_id)
    discovery = discover_cases(root)
    assert not discovery.problems
    return root, mutants, {record.case_id: record for record in discovery.cases}


@pytest.fixture(scope="module")
def outcomes(fuzzed, tmp_path_factory):
    """mode -> case ID -> (item, error, the image's error): each case prepared alone in this process
    under a time limit, and its image alone, as prediction reads it (no mask)."""
    _, _, records = fuzzed
    cache = tmp_path_factory.mktemp("fuzz_cache")
    results = {}
    for mode, representation in REPRESENTATIONS.items():
        results[mode] = {}
        for case_id, record in records.items():
            with time_limit(SECONDS_PER_CASE, f"preparing {case_id} ({mode})"):
                _, item, error = _prepare_case(record, representation, str(cache / mode), 1e-3, 10**9)
                image_alone = CaseRecord(case_id, record.image_path)
                image_error = _prepare_case(image_alone, representation, str(cache / f"{mode}_images"), 1e-3, 10**9)[2]
            results[mode][case_id] = (item, error, image_error)
    assert not list(cache.rglob("*.tmp"))
    return results


@pytest.mark.slow
def test_the_fuzzer_makes_over_300_mutants_of_every_kind_the_issue_names(fuzzed):
    _, mutants, _ = fuzzed
    kinds = Counter(mutant.kind for mutant in mutants.values())
    assert sum(kinds.values()) >= 300
    assert set(kinds) == {"header_bytes", "truncated", "pixdim", "scaling", "affine", "dtype", "dim0", "single_slice", "mask_values"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(REPRESENTATIONS))
def test_every_mutant_is_read_or_refused_in_one_line_naming_its_file(mode, fuzzed, outcomes):
    root, mutants, records = fuzzed
    for case_id in GOOD_CASES:
        assert outcomes[mode][case_id][1:] == (None, None), outcomes[mode][case_id]
    for case_id, mutant in mutants.items():
        item, error, _ = outcomes[mode][case_id]
        files = {str(file) for file in mutant.files} | {str(records[case_id].mask_path)}  # a grid refusal names the mask
        expected = expected_outcome(mutant)
        if error is not None:
            assert isinstance(error, BadCaseError) and "\n" not in str(error), (case_id, error)
            assert error.path in files and str(error) == f"{error.path}: {error.problem}", (case_id, error)
            assert expected != "read", f"{case_id} ({mutant.change}) was refused: {error.problem}"
            if expected is not None:
                assert re.search(expected, error.problem), f"{case_id} ({mutant.change}): {error.problem!r} !~ {expected!r}"
            continue
        assert expected in ("read", None), f"{case_id} ({mutant.change}) was read, expected a refusal matching {expected!r}"
        pixels = item.image if mode == "mip" else item.hu
        assert np.isfinite(pixels).all() and pixels.ndim == (2 if mode == "mip" else 3), case_id
        assert item.mask.shape == pixels.shape and set(np.unique(item.mask)) <= {0, 1}, case_id
        assert all("\n" not in warning and warning.startswith(str(root)) for warning in item.warnings), (case_id, item.warnings)


def nibabel_mip(file: Path) -> tuple[np.ndarray, str]:
    """What nibabel reads, maximum along the third storage axis, in display orientation; and the axis codes."""
    image = nib.load(file)
    values = np.asarray(image.get_fdata(dtype=np.float64)).reshape(image.shape[:3])
    return ras_to_display(values.max(axis=2)), "".join(nib.aff2axcodes(image.affine))


@pytest.mark.slow
def test_a_mutant_read_as_an_mip_holds_what_nibabel_reads_from_it(fuzzed, outcomes):
    """Scaling, data types, odd fields: the MIP of each read mutant stored in RAS order equals the
    maximum of nibabel's own scaled values in whole HU, within the 16-bit range the cache holds (a
    fuzzed intercept of 130000 saturates at 32767 HU, fresh as cached), and its mask the union of
    nibabel's non-zero voxels."""
    _, mutants, records = fuzzed
    compared = Counter()
    for case_id, mutant in mutants.items():
        item, error, _ = outcomes["mip"][case_id]
        record = records[case_id]
        if error is not None:
            continue
        hu, axcodes = nibabel_mip(record.image_path)
        if axcodes != "RAS":
            continue  # other orientations: tests/data/test_projection.py
        expected = np.clip(np.rint(hu), -32768, 32767).astype(np.float32)
        np.testing.assert_array_equal(item.image, expected, err_msg=f"{case_id} ({mutant.change})")
        mask = nib.load(record.mask_path)
        union = ras_to_display((np.asarray(mask.get_fdata()).reshape(mask.shape[:3]) != 0).any(axis=2))
        np.testing.assert_array_equal(item.mask, union.astype(np.uint8), err_msg=f"{case_id} ({mutant.change})")
        compared[mutant.kind] += 1
    assert compared["scaling"] >= 15 and compared["dtype"] >= 15 and sum(compared.values()) >= 140, compared


# ---- the whole folder through preprocessing, training, prediction and evaluation --------------

STAGE_SECONDS = 600  # far more than any stage takes on two busy cores: past it, something hangs


def run_stage(name: str, function, cfg):
    """``function(cfg)`` under a time limit; returns what it returns, or the expected error it raised."""
    with time_limit(STAGE_SECONDS, name):
        try:
            return function(cfg)
        except (BadCaseError, BadDatasetError) as error:
            return error


@pytest.fixture(scope="module", params=list(REPRESENTATIONS))
def pipeline(request, fuzzed, tmp_path_factory):
    """One mode's stages over the fuzzed folder, each as its script runs it (Hydra's config, the same
    function): preprocess under skip and under fail (2 worker processes), one epoch of training,
    prediction and evaluation with that checkpoint. Prediction runs on a flat folder of the images
    that were mutated and the good ones (masks are not its input); vessel pictures are left out."""
    mode, (root, mutants, records) = request.param, fuzzed
    tmp = tmp_path_factory.mktemp(f"fuzz_{mode}")
    images = tmp / "images"
    images.mkdir()
    for case_id in [*GOOD_CASES, *(case_id for case_id, mutant in mutants.items() if not mutant.change.startswith("mask:"))]:
        (images / records[case_id].image_path.name).symlink_to(records[case_id].image_path)
    data = ["data=folder", f"data.root={root}", f"mode={mode}", f"data.cache_dir={tmp / 'cache'}", "data.preprocess_workers=2"]
    size = "data.image_size=32" if mode == "mip" else "data.crop_size=32"
    stages = {
        "preprocess_skip": (preprocess, compose_config([*data, "data.on_bad_case=skip"], tmp / "skip", "preprocess")),
        "preprocess_fail": (preprocess, compose_config([*data, "data.on_bad_case=fail"], tmp / "fail", "preprocess")),
        "train": (train, compose_config([*data, size, "data.batch_size=32", "model.net.channels=[4,8]", "trainer.max_epochs=1", "logger=csv",
                                         "callbacks.validation_panel=null", "callbacks.progress_bar=null"], tmp / "train")),
    }
    results = {name: run_stage(name, function, cfg) for name, (function, cfg) in stages.items()}
    checkpoint = tmp / "train" / "run" / "checkpoints" / "last.ckpt"
    later = {
        "predict": (predict, compose_config([f"ckpt_path={checkpoint}", f"input={images}", f"output={tmp / 'predicted'}", "volumes.brain_mip=false"],
                                            tmp / "predict", "predict")),
        "evaluate": (evaluate, compose_config([f"ckpt_path={checkpoint}", f"data.root={root}", f"data.cache_dir={tmp / 'cache'}",
                                               "data.preprocess_workers=2", "report.n_cases=1"], tmp / "evaluate", "evaluate")),
    }
    results |= {name: run_stage(name, function, cfg) for name, (function, cfg) in later.items()}
    return mode, tmp, images, results


@pytest.mark.slow
def test_preprocessing_training_prediction_and_evaluation_take_each_mutant_or_refuse_it_in_one_line(pipeline, outcomes):
    mode, tmp, images, results = pipeline
    refused = {error.path: error.problem for _, error, _ in outcomes[mode].values() if error is not None}
    read = sorted(case_id for case_id, (item, _, _) in outcomes[mode].items() if item is not None)

    summary = results["preprocess_skip"]  # what worker processes find is what this process found alone
    assert summary["skipped"] == refused and summary["cases_ready"] == len(read)
    failed = results["preprocess_fail"]
    assert isinstance(failed, BadDatasetError) and failed.bad_files == refused

    metrics = results["train"]  # one epoch on every case that was read, odd ones included
    assert isinstance(metrics, dict), metrics
    assert json.loads((tmp / "train" / "run" / "data_report.json").read_text())["skipped"] == refused
    assert sorted(sum(json.loads((tmp / "train" / "run" / "split.json").read_text()).values(), [])) == read

    failures = results["predict"]  # an image that cannot be read alone fails alone, in one line
    unreadable = {case_id: image_error for case_id, (_, _, image_error) in outcomes[mode].items() if image_error is not None}
    assert sorted(failures) == sorted(f"{images / Path(error.path).name}: {error.problem}" for error in unreadable.values())
    rows = list(csv.DictReader(open(tmp / "predicted" / "predictions.csv")))
    predicted = {row["case_id"] for row in rows if row["status"] in ("ok", "warning")}
    assert {row["case_id"] for row in rows if row["status"] == "failed"} == set(unreadable)  # listed with their reason
    assert predicted == {path.name.split(".")[0] for path in images.iterdir()} - set(unreadable)

    metrics = results["evaluate"]  # every case that was read is scored; a refused one is listed, not scored
    assert isinstance(metrics, dict), metrics
    rows = list(csv.DictReader(open(tmp / "evaluate" / "run" / "per_case.csv")))
    assert sorted(row["case_id"] for row in rows if not row.get("error")) == read

    assert not [path for path in tmp.rglob("*") if path.name.endswith(".tmp")]  # nothing half-written
    for png in tmp.rglob("*.png"):
        with Image.open(png) as picture:
            picture.load()
