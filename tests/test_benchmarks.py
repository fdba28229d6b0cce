"""The benchmark's code paths at tiny sizes: every section runs and the report has its structure.

Timings are not checked (they mean nothing at these sizes); the figures' presence and types are.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from benchmarks import report
from benchmarks.common import (
    as_names,
    compose_conf,
    in_fresh_process,
    machine,
    ratio,
    versions,
)
from benchmarks.generalization import markdown as generalization_page
from benchmarks.results import SECTIONS
from benchmarks.suite import Sizes, run_benchmarks
from benchmarks.training import race_summary, race_to_target

from tests.conftest import make_dataset

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("benchmark")
    dataset = make_dataset(tmp / "dataset", n=6, shape=(40, 36, 10))
    return run_benchmarks(tmp / "work", Sizes.tiny(), SECTIONS, dataset_root=str(dataset)), tmp


def test_every_section_reports_its_figures(tiny_results):
    results, _ = tiny_results
    assert set(results.sections) == set(SECTIONS)
    pre = results.sections["preprocessing"]
    for key in ("ours_vs_floor", "ours_vs_floor_zlib", "naive_vs_ours", "ours_memory_vs_raw", "naive_memory_vs_raw"):
        assert isinstance(pre[key], float)
    assert pre["shape"] == [48, 48, 16] and pre["decoder"] in ("isal", "zlib")
    assert [row["cases"] for row in pre["folder"]] == [8]

    training = results.sections["training"]
    assert {"ours fp32", "ours bf16 autocast", "ours channels_last", "ours 1 thread"} <= set(training["step"])
    assert {"ours fp32", "ours bf16-mixed"} <= set(training["loop"])
    ours = training["loop"]["ours fp32"]
    assert ours["images_per_s"] > 0 and 0 <= ours["wait_share"] <= 1 and ours["epochs"] == 1
    assert training["gflop_per_image"]["ours"] > 0
    if "monai fp32" in training["loop"]:  # ours and the reference race once more per seed (tiny: seed 1)
        assert training["race"]["ours fp32"]["seeds"] == training["race"]["monai fp32"]["seeds"] == [42, 1]
        assert len(training["race"]["monai fp32"]["images_per_s"]) == 2
    else:
        assert "race" not in training

    inference = results.sections["inference"]
    assert set(inference["mip_case"]) == {"project", "predict", "write", "total"}
    assert inference["volume"] is None or {"read", "infer", "postprocess", "write", "total"} <= set(inference["volume"])

    assert [run["num_workers"] for run in results.sections["loading"]["runs"]] == [0]


def test_report_holds_the_conditions_and_a_table(tiny_results):
    results, tmp = tiny_results
    json_path, md_path = report.write(results, tmp / "docs")
    text = md_path.read_text()
    for expected in ("Machine:", "cores", "GiB RAM", "python", "torch", "lightning", "numpy", "nibabel", "Load average",
                     "| Figure | Measured | Compared with | Ratio | Target | Met |", "decompression only", "images/s"):
        assert expected in text
    data = json.loads(json_path.read_text())
    assert set(data) >= {"date", "machine", "versions", "load_before", "load_after", "sections"}
    assert "model" not in data["sections"]["training"]  # the trained network stays out of the JSON
    assert report.markdown(report.read(json_path)) == report.markdown(results)  # render= gives the same tables


def test_a_new_run_keeps_the_sections_other_scripts_measured(tiny_results):
    results, _ = tiny_results
    previous = report.read(DOCS / "benchmarks.json")
    assert "memory" in previous.sections and "memory" not in results.sections
    again = report.read(DOCS / "benchmarks.json")
    again.sections = dict(results.sections)
    report.carry_over(again, previous)
    assert again.sections["memory"] == previous.sections["memory"]  # benchmark_memory.py's figures stay
    assert again.sections["training"] is results.sections["training"]  # the new run's own figures win


def test_a_race_counts_a_run_that_missed_the_target_as_the_slowest():
    def runs(*seconds):
        return [{"seconds_to_target": s, "epochs_to_target": None if s is None else int(s) + 1, "images_per_s": 100.0 + i}
                for i, s in enumerate(seconds)]

    summary = race_summary([42, 1, 2], runs(2.0, 1.0, 3.0))
    assert summary == {"seeds": [42, 1, 2], "seconds_to_target": [2.0, 1.0, 3.0], "epochs_to_target": [3, 2, 4],
                       "images_per_s": [100.0, 101.0, 102.0], "median_seconds_to_target": 2.0, "median_images_per_s": 101.0}
    assert race_summary([42, 1, 2], runs(1.0, None, 3.0))["median_seconds_to_target"] == 3.0
    assert race_summary([42, 1], runs(1.0, None))["median_seconds_to_target"] is None  # half missed: no median


def test_without_the_reference_nothing_is_raced(tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a race without MONAI's UNet trained a run")

    monkeypatch.setattr("benchmarks.training.train_with_clock", no_training)
    assert race_to_target(tmp_path, [], {"ours fp32": {}}, 42, (1, 2), 0.95, 60.0) == {}


def test_helpers():
    assert ratio(3.0, 2.0) == 1.5 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None
    assert machine()["cores"] >= 1 and versions()["python"]
    measured = in_fresh_process("json", "dumps", obj=[1, 2])
    assert measured["result"] == "[1, 2]" and measured["rise_mib"] >= 0


def test_config_helpers():
    assert as_names("default") == ["default"] and as_names(256) == ["256"]  # only=default, only=256
    assert as_names(compose_conf("benchmark_synthetic", ["only=[default,256]"]).only) == ["default", "256"]
    assert compose_conf("benchmark", []).only == list(SECTIONS)  # every section by default


def test_generalization_page_is_written_from_its_figures():
    figures = json.loads((DOCS / "generalization.json").read_text())
    assert generalization_page(figures) == (DOCS / "generalization.md").read_text()
