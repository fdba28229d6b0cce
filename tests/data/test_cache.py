"""The MIP cache: exact round trip, keyed by sources and settings, robust to crashes."""

import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from brainseg.data.cache import cache_key, remove_stale_temporaries, write_atomically
from brainseg.data.discovery import CaseRecord
from brainseg.data.preparation import load_item, prepare_dataset
from brainseg.data.projection import MipCache, MipRepresentation, Projection
from tests.conftest import make_dataset, phantom, write_nifti


@pytest.fixture
def record(tmp_path):
    image, mask = phantom()
    return CaseRecord("c1", write_nifti(tmp_path / "i.nii.gz", image), write_nifti(tmp_path / "m.nii.gz", mask))


def _projection():
    hu = np.array([[-1024.0, 0.0], [1500.0, 3071.0]], np.float32)
    return Projection(hu, np.array([[0, 1], [1, 0]], np.uint8), (0.5, 0.75), ["a warning"])


def test_round_trip_is_exact_in_hu_and_binary(tmp_path, record):
    cache = MipCache(tmp_path / "cache")
    key = cache_key(record, {"projection": "mip"})
    cache.store("c1", key, _projection())
    loaded = cache.load("c1", key)
    np.testing.assert_array_equal(loaded.image, _projection().image)
    np.testing.assert_array_equal(loaded.mask, _projection().mask)
    assert loaded.spacing == (0.5, 0.75) and loaded.warnings == ["a warning"]
    on_disk = np.asarray(__import__("PIL.Image").Image.open(cache.mask_path("c1")))
    assert set(np.unique(on_disk)) == {0, 255}  # masks are 0/255 PNGs in their own folder
    assert cache.image_path("c1").parent.name == "images" and cache.mask_path("c1").parent.name == "masks"
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # written atomically


def test_a_cached_spacing_is_the_fresh_one_to_the_last_bit(tmp_path, record):
    """A float32 header spacing (0.8 -> 0.800000011920929) once came back from the cache as 0.8, so
    a run that read the cache scored the baseline differently from the run that filled it."""
    cache = MipCache(tmp_path / "cache")
    key = cache_key(record, {"projection": "mip"})
    spacing = (float(np.float32(0.8)), float(np.float32(2.0 / 3.0)))
    cache.store("c1", key, Projection(_projection().image, None, spacing, []))
    assert cache.load("c1", key).spacing == spacing


def test_a_changed_setting_or_source_file_misses(tmp_path, record):
    cache = MipCache(tmp_path / "cache")
    key = cache_key(record, {"projection": "mip"})
    cache.store("c1", key, _projection())
    assert cache.load("c1", cache_key(record, {"projection": "minip"})) is None
    write_nifti(record.image_path, phantom(seed=5)[0])  # the source changed
    assert cache.load("c1", cache_key(record, {"projection": "mip"})) is None


def test_a_half_written_png_is_a_miss_and_gets_rewritten(tmp_path):
    root = make_dataset(tmp_path / "ds", n=2)
    prepare_dataset(root, tmp_path / "cache", progress=False)
    image_png = tmp_path / "cache" / "images" / "case00.png"
    image_png.write_bytes(image_png.read_bytes()[:100])  # a crash in the middle of a write
    again = prepare_dataset(root, tmp_path / "cache", progress=False)
    assert again.newly_cached == 1 and set(again.items) == {"case00", "case01"}
    assert len(image_png.read_bytes()) > 100


# ---- temporaries that killed writers leave behind ---------------------------------------------

HOST = socket.gethostname()


def _ended_process_id() -> int:
    """The PID of a process that has run and ended (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


# temporary -> (its name, seconds since it was last written, removed?)
TEMPORARIES = {
    "of a writer on this machine that has ended": (".a.png-{ended}@{host}-x1y2.tmp", 5, True),
    "of a writer on this machine that is running (this test)": (".b.png-{running}@{host}-x1y2.tmp", 60, False),
    "of a running process, untouched for two hours (its PID reused)": (".g.png-{running}@{host}-x1y2.tmp", 7200, True),
    "of a writer on another machine, written a minute ago": (".c.png-{running}@other-node-07-x1y2.tmp", 60, False),
    "of a writer on another machine, untouched for two hours": (".d.png-{running}@other-node-07-x1y2.tmp", 7200, True),
    "without its writer in the name (older brainseg), recent": (".e.png-x1y2.tmp", 60, False),
    "without its writer in the name (older brainseg), two hours old": (".f.png-x1y2.tmp", 7200, True),
}


def test_a_temporary_is_removed_when_its_writer_has_ended_or_it_is_an_hour_old(tmp_path):
    ended, now = _ended_process_id(), time.time()
    expected_removed = []
    for name, age_s, removed in TEMPORARIES.values():
        path = tmp_path / "cache" / "images" / name.format(ended=ended, running=os.getpid(), host=HOST)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half a png")
        os.utime(path, (now - age_s, now - age_s))
        if removed:
            expected_removed.append(path)
    finished = tmp_path / "cache" / "images" / "case.png"
    finished.write_bytes(b"a png")
    assert sorted(remove_stale_temporaries(tmp_path / "cache")) == sorted(expected_removed)
    assert sorted(path.name for path in (tmp_path / "cache" / "images").iterdir()) == [
        ".b.png-{}@{}-x1y2.tmp".format(os.getpid(), HOST), ".c.png-{}@other-node-07-x1y2.tmp".format(os.getpid()), ".e.png-x1y2.tmp", "case.png",
    ]


def test_a_temporary_names_its_writer_so_a_later_run_can_tell_whether_it_still_runs(tmp_path, monkeypatch):
    names = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda source, target: names.append(Path(source).name) or real_replace(source, target))
    write_atomically(tmp_path / "case.png", lambda stream: stream.write(b"a png"))
    (name,) = names
    assert name.startswith(f".case.png-{os.getpid()}@{HOST}-") and name.endswith(".tmp")
    assert (tmp_path / "case.png").read_bytes() == b"a png"


def test_a_temporary_removed_before_its_rename_is_written_again(tmp_path, monkeypatch):
    """A cleanup that wrongly took a running writer's temporary for a dead one's costs a rewrite, not the file."""
    real_replace, calls = os.replace, []

    def remove_the_first_temporary(source, target):
        calls.append(source)
        if len(calls) == 1:
            os.unlink(source)
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", remove_the_first_temporary)
    write_atomically(tmp_path / "case.png", lambda stream: stream.write(b"a png"))
    assert len(calls) == 2 and (tmp_path / "case.png").read_bytes() == b"a png"
    assert [path.name for path in tmp_path.iterdir()] == ["case.png"]


def test_preparation_removes_what_killed_writers_left_and_says_so_in_one_line(tmp_path, caplog):
    root = make_dataset(tmp_path / "ds", n=2, shape=(12, 10, 6))
    prepare_dataset(root, tmp_path / "cache", workers=1, progress=False)
    leftovers = [tmp_path / "cache" / folder / f".case00.png-{_ended_process_id()}@{HOST}-abcd.tmp" for folder in ("images", "masks")]
    for leftover in leftovers:
        leftover.write_bytes(b"\x89PNG half")
    caplog.set_level(logging.INFO, logger="brainseg.data.preparation")
    again = prepare_dataset(root, tmp_path / "cache", workers=1, progress=False)
    assert again.newly_cached == 0 and not any(leftover.exists() for leftover in leftovers)
    lines = [record.getMessage() for record in caplog.records if "temporary" in record.getMessage()]
    assert lines == [f"removed 2 temporary file(s) that interrupted writers left in {tmp_path / 'cache'}"]


def test_without_keeping_items_a_case_is_read_back_from_the_cache_when_wanted(tmp_path):
    """What evaluation does, so that its memory stays flat over any number of cases."""
    root = make_dataset(tmp_path / "ds", n=3)
    kept = prepare_dataset(root, tmp_path / "cache", workers=1, progress=False)
    lean = prepare_dataset(root, tmp_path / "cache2", workers=1, progress=False, keep_items=False)
    assert set(lean.items) == set(lean.records) == set(kept.items) and set(lean.items.values()) == {None}
    for case_id, record in lean.records.items():
        item = load_item(record, MipRepresentation(), tmp_path / "cache2")
        np.testing.assert_array_equal(item.image, kept.items[case_id].image)
        assert item.spacing == kept.items[case_id].spacing
