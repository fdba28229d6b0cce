"""Each benchmark entry point run as a user runs it: ``python scripts/<name>.py key=value ...``
in a fresh folder, at sizes that only check the code paths; its files must appear there, and
nothing else (no Hydra run folder or log file)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import compose_config, make_dataset

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *overrides: str, cwd: Path, expect_ok: bool = True) -> subprocess.CompletedProcess:
    """``python scripts/<name>.py <overrides>`` in ``cwd``, with this checkout's brainseg and benchmarks."""
    path = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "scripts"), os.environ.get("PYTHONPATH")) if p)
    completed = subprocess.run([sys.executable, str(ROOT / "scripts" / f"{name}.py"), *overrides], cwd=cwd,
                               env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, timeout=600)
    if expect_ok:
        assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


def test_benchmark_writes_the_page_and_its_figures(tmp_path):
    run_script("benchmark", "tiny=true", cwd=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "outputs"]  # docs/ and the workdir, nothing else
    data = json.loads((tmp_path / "docs" / "benchmarks.json").read_text())
    assert set(data["sections"]) == {"preprocessing", "training", "inference", "loading"}
    loop = data["sections"]["training"]["loop"]
    for variant in ("ours fp32", *(["monai fp32"] if data["versions"]["monai"] else [])):
        assert {"seconds_to_target", "images_per_s", "best_score"} <= set(loop[variant])
    page = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert page.startswith("# Benchmarks") and "## Notes" in page


def test_benchmark_renders_the_docs_page_again_from_its_figures(tmp_path):
    run_script("benchmark", f"render={ROOT / 'docs' / 'benchmarks.json'}", "output=again", cwd=tmp_path)
    assert (tmp_path / "again" / "benchmarks.md").read_text() == (ROOT / "docs" / "benchmarks.md").read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # nothing measured, no workdir


def test_benchmark_names_the_sections_it_knows(tmp_path):
    completed = run_script("benchmark", "only=[preprocessing,speed]", cwd=tmp_path, expect_ok=False)
    assert completed.returncode == 1 and "unknown section(s) ['speed']" in completed.stderr
    assert list(tmp_path.iterdir()) == []


def test_benchmark_synthetic_prints_a_row_per_workload(tmp_path):
    out = run_script("benchmark_synthetic", "cases=1", "only=default", cwd=tmp_path).stdout
    assert "default preset (1 cases)" in out and "peak RSS MB" in out
    assert list(tmp_path.iterdir()) == []


def test_render_gallery_draws_a_row_per_case(tmp_path):
    from PIL import Image

    run_script("render_gallery", "default_cases=2", "realistic_cases=0", "out=pictures/gallery.png", cwd=tmp_path)
    assert Image.open(tmp_path / "pictures" / "gallery.png").size == (800, 400)  # 4 panels of 200 px, 2 rows
    assert [p.name for p in tmp_path.iterdir()] == ["pictures"]


@pytest.mark.slow
def test_benchmark_generalization_writes_the_matrix_and_the_worst_cases(trained_run, slice_checkpoint, tmp_path):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    run_script("benchmark_generalization", f"ckpt_path={checkpoint}", f"volume_ckpt_path={slice_checkpoint}", "n_cases=3",
               "preset=default", "workers=1", cwd=tmp_path)
    report = json.loads((tmp_path / "docs" / "generalization.json").read_text())
    rows = {(row["group"], row["value"]): row for row in report["matrix"]}
    assert rows[("all cases", "all")]["cases"] == 3
    assert sum(row["cases"] for (group, _), row in rows.items() if group == "field of view") == 3  # every case in one row of a group
    assert all(0 <= row["mip_dice_mean"] <= 1 and 0 <= row["volume_footprint_dice_mean"] <= 1 for row in rows.values())
    page = (tmp_path / "docs" / "generalization.md").read_text()
    assert "| all cases | all | 3 |" in page and "generalization_worst_volume.png" in page
    assert (tmp_path / "docs" / "generalization_worst_mip.png").is_file()
    records = json.loads((tmp_path / "data" / "synthetic" / "default-seed1000-n3" / "cases.json").read_text())
    assert sorted(records) == ["synth_0000", "synth_0001", "synth_0002"] and "fov_kind" in records["synth_0000"]


@pytest.fixture(scope="module")
def slice_checkpoint(tmp_path_factory) -> Path:
    """A tiny 2.5-D slice model trained for 1 epoch on phantoms (what the volume benchmarks need)."""
    from brainseg.training.train import train

    tmp = tmp_path_factory.mktemp("slice_run")
    dataset = make_dataset(tmp / "dataset", n=6, shape=(40, 36, 10))
    cfg = compose_config([
        "data=folder", f"data.root={dataset}", f"data.cache_dir={tmp / 'cache'}", "mode=slices",
        "data.spacing_mm=1.0", "data.in_channels=3", "data.crop_size=32", "data.batch_size=8",
        "model.net.channels=[4,8]", "trainer.max_epochs=1", "logger=csv", "callbacks.validation_panel=null",
        "callbacks.progress_bar=null", "test=false",
    ], tmp)
    train(cfg)
    return Path(cfg.paths.output_dir) / "checkpoints" / "last.ckpt"


@pytest.mark.slow
def test_benchmark_volumes_speed_times_a_volume_in_a_fresh_process(slice_checkpoint, tmp_path):
    image = make_dataset(tmp_path / "dataset", n=1, shape=(40, 36, 10)) / "CTA images" / "case00.nii.gz"
    out = run_script("benchmark_volumes", "task=speed", f"ckpt_path={slice_checkpoint}", f"speed.image={image}",
                     "speed.repeats=2", "speed.threads=1", "output=speed.json", cwd=tmp_path).stdout
    result = json.loads((tmp_path / "speed.json").read_text())
    assert len(result["runs"]) == 2 and {"infer", "write", "total"} <= set(result["runs"][0])
    assert result["peak_rss_mib"] > 0 and "end to end on 1 threads" in out


@pytest.mark.slow
def test_benchmark_volumes_accuracy_scores_every_orientation(slice_checkpoint, tmp_path):
    run_script("benchmark_volumes", f"ckpt_path={slice_checkpoint}", "accuracy.cases=1", "accuracy.data=heldout",
               "output=accuracy.json", cwd=tmp_path)
    result = json.loads((tmp_path / "accuracy.json").read_text())
    assert set(result["per_orientation"]) == {"LPS", "LPI", "RAS", "RAI", "LAS", "RPI", "PLS"}
    assert len(result["cases"]) == 7 and isinstance(result["target_met"], bool)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.json", "heldout"]


def _ellipsoid_brain(tmp_path: Path, semi=(70.0, 90.0, 60.0)) -> tuple[Path, Path]:
    """Gray and white matter maps (0-255, as nilearn ships them) of an ellipsoidal brain, 2 mm voxels, RAS."""
    import nibabel as nib
    import numpy as np

    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    affine[:3, 3] = -100.0
    x, y, z = np.meshgrid(*[np.arange(100) * 2.0 - 100.0] * 3, indexing="ij")
    r = np.sqrt((x / semi[0]) ** 2 + (y / semi[1]) ** 2 + (z / semi[2]) ** 2)
    paths = tmp_path / "gm.nii.gz", tmp_path / "wm.nii.gz"
    for path, tissue in zip(paths, ((r <= 1) & (r > 0.85), r <= 0.85)):
        nib.save(nib.Nifti1Image((tissue * 255).astype(np.uint8), affine), path)
    return paths


def test_atlas_measure_compares_a_brain_with_the_synthetic_one_in_proportions(tmp_path):
    gray, white = _ellipsoid_brain(tmp_path)
    completed = run_script("measure_atlas", f"gray_matter={gray}", f"white_matter={white}", cwd=tmp_path)
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:] for line in completed.stdout.splitlines()[2:]}
    assert float(rows["length_mm"][0]) == pytest.approx(180, abs=3)  # the ellipsoid's 2 x 90 mm
    assert float(rows["width / length"][0]) == pytest.approx(140 / 180, abs=0.02)
    # The generator's brain, measured the same way: the outline of a real one, but lower (docs/synthetic_data.md).
    assert float(rows["width / length"][1]) == pytest.approx(0.80, abs=0.02)
    assert float(rows["height to cerebellum (posterior fossa) / length"][1]) == pytest.approx(0.68, abs=0.02)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gm.nii.gz", "wm.nii.gz"]


def test_cavity_prior_is_made_from_atlas_maps_into_the_anatomy_frame(tmp_path):
    from brainseg.synthetic.cavity_prior import load_prior

    gray, white = _ellipsoid_brain(tmp_path)
    run_script("make_cavity_prior", f"gray_matter={gray}", f"white_matter={white}", "output=prior.npz", cwd=tmp_path)
    prior = load_prior.__wrapped__(tmp_path / "prior.npz")  # not the cached shipped one
    (x0, y0, z0), (x1, y1, z1) = prior.box
    assert y1 - y0 == pytest.approx(168, abs=3)  # scaled to the analytic cavity's length
    assert (x1 - x0) / (y1 - y0) == pytest.approx(140 / 180, abs=0.03)  # the ellipsoid's proportions kept
    assert (x0 + x1) / 2 == pytest.approx(0, abs=1.5) and (y0 + y1) / 2 == pytest.approx(0, abs=1.5)
    assert prior.distance(0.0, 0.0, (z0 + z1) / 2) < -50 and prior.distance(0.0, 0.0, z1 + 5) > 3
    assert "McGill" in str(np.load(tmp_path / "prior.npz")["notice"])


@pytest.mark.skipif(importlib.util.find_spec("nilearn") is not None, reason="nilearn is installed: the atlas is found")
def test_atlas_measure_says_where_the_atlas_comes_from_when_it_has_none(tmp_path):
    completed = run_script("measure_atlas", "gray_matter=null", f"white_matter={tmp_path}/missing.nii.gz", cwd=tmp_path,
                           expect_ok=False)
    assert completed.returncode != 0
    assert "nilearn" in completed.stderr.strip().splitlines()[-1]
