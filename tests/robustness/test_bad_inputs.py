"""Every bad input of the corpus gets a one-line error naming the file and the problem, in training,
evaluation and prediction; ``data.on_bad_case=fail`` stops, ``skip`` leaves the case out with a
warning and lists it in the run folder; nothing partial is left in the cache or the outputs.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from brainseg.data.cases import open_case
from brainseg.data.discovery import CaseRecord
from brainseg.data.mip_datamodule import MipDataModule
from brainseg.data.nifti import open_nifti
from brainseg.data.projection import project_case
from brainseg.errors import BadCaseError, BadDatasetError
from brainseg.evaluation.evaluate import evaluate
from brainseg.inference.predict import predict
from tests.conftest import compose_config
from tests.robustness.corpus import (
    ENTRIES,
    GOOD_CASES,
    RUNNING_AS_ROOT,
    check_unreadable,
    make_corpus,
)

ROOT = Path(__file__).resolve().parents[2]
PREDICT_OUTPUTS = ("mask", "prob", "overlay")


def best_checkpoint(run: Path) -> Path:
    return Path(json.loads((run / "metrics.json").read_text())["best_checkpoint"])


def assert_nothing_partial(folder: Path) -> None:
    """No temporary file, and every PNG under ``folder`` decodes completely."""
    assert not [path for path in folder.rglob("*") if path.name.endswith(".tmp")]
    for png in folder.rglob("*.png"):
        with Image.open(png) as image:
            image.load()


def cached_cases(cache: Path) -> set[str]:
    return {png.stem for png in cache.glob("mip*/images/*.png")}


def assert_one_line_per_file(text: str, entry) -> None:
    """``text`` has, for each file of ``entry``, a line naming it and stating its problem."""
    for file in entry.files:
        lines = [line for line in text.splitlines() if str(file) in line]
        assert lines, f"{entry.name}: {file} is not named in:\n{text}"
        assert any(re.search(entry.problem, line) for line in lines), f"{entry.name}: {lines} do not match {entry.problem!r}"


# ---- training: the DataModule, once per entry ----------------------------------------------------


@pytest.mark.parametrize("name", list(ENTRIES))
def test_training_data_fails_or_skips_each_bad_input_with_its_reason(name, tmp_path, monkeypatch, caplog):
    corpus = make_corpus(tmp_path / "ds", names=[name])
    check_unreadable(monkeypatch, corpus)
    entry, cache, run = corpus[name], tmp_path / "cache", tmp_path / "run"
    options = dict(root=str(tmp_path / "ds"), cache_dir=str(cache), image_size=32, run_dir=str(run), preprocess_workers=1)

    with pytest.raises(BadDatasetError) as error:
        MipDataModule(on_bad_case="fail", **options).prepare_data()
    assert_one_line_per_file(str(error.value), entry)

    caplog.set_level(logging.WARNING)
    datamodule = MipDataModule(on_bad_case="skip", **options)
    datamodule.prepare_data()
    datamodule.setup("fit")
    assert_one_line_per_file(caplog.text, entry)  # the warning
    report = json.loads((run / "data_report.json").read_text())  # the list in the run folder
    for file in entry.files:
        assert re.search(entry.problem, report["skipped"][str(file)])
    used = {case.case_id for cases in datamodule.cases.values() for case in cases}
    assert used == set(GOOD_CASES[:3])
    assert cached_cases(cache) == set(GOOD_CASES[:3])  # nothing cached for the bad case
    assert_nothing_partial(cache)


def test_the_unreadable_case_is_real_or_simulated(tmp_path, monkeypatch):
    """chmod 000 stops everyone but root; as root the corpus simulates it (see corpus.deny_reading)."""
    corpus = make_corpus(tmp_path / "ds", names=["unreadable"], n_good=0)
    (image,) = corpus["unreadable"].files
    assert image.stat().st_mode & 0o777 == 0
    if RUNNING_AS_ROOT:
        open_nifti(image)  # root reads it anyway, so tests simulate the refusal
        check_unreadable(monkeypatch, corpus)
    with pytest.raises(BadCaseError, match="permission denied"):
        open_nifti(image)


def test_a_huge_header_is_refused_before_anything_is_allocated(tmp_path):
    import tracemalloc

    corpus = make_corpus(tmp_path / "ds", names=["huge_header"], n_good=0)
    (image,) = corpus["huge_header"].files
    record = CaseRecord("huge_header", image, tmp_path / "ds" / "brain masks" / "huge_header_ROI.nii.gz")
    tracemalloc.start()
    try:
        with pytest.raises(BadCaseError, match=corpus["huge_header"].problem):
            project_case(open_case(record))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 2**20  # the declared volume is 16 GiB


# ---- evaluation and prediction: the whole corpus at once -----------------------------------------


@pytest.fixture
def corpus_root(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "ds")
    check_unreadable(monkeypatch, corpus)
    return tmp_path / "ds", corpus


def _evaluate_config(trained_run, root, tmp_path, policy):
    overrides = [f"ckpt_path={best_checkpoint(trained_run)}", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
                 f"data.on_bad_case={policy}", "data.preprocess_workers=1", "report.n_cases=1"]
    return compose_config(overrides, tmp_path / policy, "evaluate")


def test_evaluation_fails_listing_every_bad_file_and_writes_nothing(trained_run, corpus_root, tmp_path):
    root, corpus = corpus_root
    cfg = _evaluate_config(trained_run, root, tmp_path, "fail")
    with pytest.raises(BadDatasetError) as error:
        evaluate(cfg)
    for entry in corpus.values():
        assert_one_line_per_file(str(error.value), entry)
    output = Path(cfg.paths.output_dir)
    assert not any((output / name).exists() for name in ("per_case.csv", "metrics.json", "report.html"))
    assert cached_cases(tmp_path / "cache") <= set(GOOD_CASES)
    assert_nothing_partial(tmp_path / "cache")


def test_evaluation_skips_every_bad_file_with_a_warning_and_lists_it(trained_run, corpus_root, tmp_path, caplog):
    root, corpus = corpus_root
    cfg = _evaluate_config(trained_run, root, tmp_path, "skip")
    caplog.set_level(logging.WARNING)
    evaluate(cfg)
    output = Path(cfg.paths.output_dir)
    scored = [line.split(",")[0] for line in (output / "per_case.csv").read_text().splitlines()[1:]]
    assert scored == list(GOOD_CASES[:3])
    report = json.loads((output / "data_report.json").read_text())
    for entry in corpus.values():
        assert_one_line_per_file(caplog.text, entry)
        for file in entry.files:
            assert re.search(entry.problem, report["skipped"][str(file)])
    assert cached_cases(tmp_path / "cache") == set(GOOD_CASES[:3])
    assert_nothing_partial(tmp_path / "cache")


def test_prediction_lists_every_bad_image_and_writes_nothing_for_it(trained_run, corpus_root, tmp_path):
    root, corpus = corpus_root
    out = tmp_path / "out"
    cfg = compose_config([f"ckpt_path={best_checkpoint(trained_run)}", f"input={root}", f"output={out}"], tmp_path, "predict")
    failures = predict(cfg)
    assert all("\n" not in line for line in failures)
    bad_images = [entry for entry in corpus.values() if entry.image_level]
    assert len(failures) == sum(len(entry.files) for entry in bad_images)
    for entry in bad_images:
        assert_one_line_per_file("\n".join(failures), entry)
        assert not list(out.glob(f"{entry.name}_*"))
    # prediction reads no mask: a case whose only fault is its mask (or a missing mask) is predicted
    for name in [*GOOD_CASES[:3], *(entry.name for entry in corpus.values() if not entry.image_level and entry.name != "mask_without_image")]:
        assert all((out / f"{name}_{picture}.png").is_file() for picture in PREDICT_OUTPUTS), name
    assert_nothing_partial(out)


def test_prediction_on_a_flat_folder_refuses_both_files_of_a_duplicate_case_id(trained_run, tmp_path):
    corpus = make_corpus(tmp_path / "ds", names=["duplicate_ids"], n_good=1)
    flat = tmp_path / "flat"
    flat.mkdir()
    for file in corpus["duplicate_ids"].files:
        (flat / file.name).write_bytes(file.read_bytes())
    out = tmp_path / "out"
    cfg = compose_config([f"ckpt_path={best_checkpoint(trained_run)}", f"input={flat}", f"output={out}"], tmp_path, "predict")
    failures = predict(cfg)
    assert sorted(Path(line.split(": ")[0]).name for line in failures) == ["duplicate_ids.nii", "duplicate_ids.nii.gz"]
    assert all("duplicate case ID 'duplicate_ids'" in line for line in failures)
    assert not list(out.glob("duplicate_ids_*"))


# ---- training from the command line: the whole corpus under fail and under skip ------------------


@pytest.fixture(scope="module")
def train_runs(tmp_path_factory):
    """``python train.py`` on the corpus under each policy, both processes at once (they wait on I/O
    and imports as much as on the CPU). As root the chmod-000 case would simply be read, so it is
    left out here; the DataModule test above covers it with a simulated refusal."""
    tmp = tmp_path_factory.mktemp("train_corpus")
    names = [name for name in ENTRIES if not (RUNNING_AS_ROOT and name == "unreadable")]
    corpus = make_corpus(tmp / "ds", names=names)
    processes = {}
    for policy in ("fail", "skip"):
        command = [
            sys.executable, str(ROOT / "train.py"), "data=folder", f"data.root={tmp / 'ds'}", f"data.on_bad_case={policy}",
            f"data.cache_dir={tmp / policy / 'cache'}", "data.preprocess_workers=1", "data.image_size=32",
            "data.batch_size=2", "model.net.channels=[4,8]", "trainer.max_epochs=1", "logger=csv",
            "callbacks.validation_panel=null", "callbacks.progress_bar=null", f"hydra.run.dir={tmp / policy / 'run'}",
        ]
        processes[policy] = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for policy, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[policy] = (process.returncode, stdout, stderr, tmp / policy)
    return corpus, results


@pytest.mark.slow
def test_train_py_under_fail_exits_1_naming_every_bad_file_and_leaves_no_run_behind(train_runs):
    corpus, results = train_runs
    returncode, _, stderr, folder = results["fail"]
    assert returncode == 1, stderr[-3000:]
    assert "Traceback" not in stderr
    assert f"error: {sum(len(entry.files) for entry in corpus.values()) + 1} bad file(s)" in stderr  # + the duplicate's orphan mask
    for entry in corpus.values():
        assert_one_line_per_file(stderr, entry)
    assert not (folder / "run" / "metrics.json").exists() and not (folder / "run" / "checkpoints").exists()
    assert cached_cases(folder / "cache") <= set(GOOD_CASES)
    assert_nothing_partial(folder / "cache")


@pytest.mark.slow
def test_train_py_under_skip_trains_on_the_good_cases_and_lists_the_bad_ones_in_the_run(train_runs):
    corpus, results = train_runs
    returncode, _, stderr, folder = results["skip"]
    assert returncode == 0, stderr[-3000:]
    run = folder / "run"
    report = json.loads((run / "data_report.json").read_text())
    split = json.loads((run / "split.json").read_text())
    assert sorted(sum(split.values(), [])) == list(GOOD_CASES[:3])
    log = (run / "train.log").read_text()
    for entry in corpus.values():
        assert_one_line_per_file(log, entry)  # the warnings
        for file in entry.files:
            assert re.search(entry.problem, report["skipped"][str(file)])
    assert (run / "metrics.json").is_file()
    assert cached_cases(folder / "cache") == set(GOOD_CASES[:3])
    assert_nothing_partial(folder / "cache")
