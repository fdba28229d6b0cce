"""Preprocessing split over jobs: `data.shard`/`data.num_shards` jobs fill one shared cache with
exactly what a single run writes, and training still sees every case."""

import csv
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainseg.data.mip_datamodule import MipDataModule
from tests.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]


def run_preprocess(tmp_path: Path, *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "scripts" / "preprocess.py"), *overrides, f"paths.root_dir={tmp_path}"]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def cache_content(cache: Path) -> dict[str, tuple[np.ndarray, dict]]:
    """Every PNG of a cache, by relative path: pixels and text chunks (key, spacing, warnings)."""
    content = {}
    for path in sorted(cache.rglob("*.png")):
        with Image.open(path) as image:
            content[str(path.relative_to(cache))] = (np.asarray(image), dict(image.text))
    return content


@pytest.mark.slow
def test_two_shards_fill_one_cache_exactly_like_a_single_run(tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=5, shape=(24, 20, 8))
    sharded = run_preprocess(
        tmp_path, "-m", "data.shard=0,1", "data.num_shards=2", f"data.root={dataset}",
        f"data.cache_dir={tmp_path / 'sharded'}", f"hydra.sweep.dir={tmp_path / 'sweep'}",
    )
    single = run_preprocess(tmp_path, f"data.root={dataset}", f"data.cache_dir={tmp_path / 'single'}", f"hydra.run.dir={tmp_path / 'run'}")
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]

    union, reference = cache_content(tmp_path / "sharded"), cache_content(tmp_path / "single")
    assert sorted(union) == sorted(reference) and len(reference) == 30  # 5 x (image, mask, 4 extra projections), no temporary files
    for name, (pixels, text) in reference.items():
        assert np.array_equal(union[name][0], pixels), name
        assert union[name][1] == text, name  # same cache key, so training reuses either

    with open(tmp_path / "sweep" / "sweep_summary.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(row["data.shard"], row["shard"], row["cases_ready"], row["status"]) for row in rows] == [("0", "0/2", "3", "ok"), ("1", "1/2", "2", "ok")]


def test_a_sharded_prepare_data_projects_its_shard_and_setup_still_uses_every_case(tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=5, shape=(24, 20, 8))
    datamodule = MipDataModule(root=str(dataset), cache_dir=str(tmp_path / "cache"), image_size=32, shard=1, num_shards=2)
    datamodule.prepare_data()
    assert sorted(datamodule.prepared.items) == ["case01", "case03"]
    datamodule.setup("fit")
    assert sum(len(cases) for cases in datamodule.cases.values()) == 5


@pytest.mark.parametrize("shard, num_shards", [(2, 2), (-1, 2), (0, 0)])
def test_a_shard_outside_the_shards_is_refused_at_once(tmp_path, shard, num_shards):
    with pytest.raises(ValueError, match="data.shard"):
        MipDataModule(root=str(tmp_path), shard=shard, num_shards=num_shards)
