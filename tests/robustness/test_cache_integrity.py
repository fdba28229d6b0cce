"""The MIP cache after crashes and races: a half-written file is a miss and is regenerated; a
writer killed mid-write leaves the final name untouched and its temporary is removed by the next
run; two processes filling one cache at once both finish and leave the bytes one run would."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from brainseg.data.preparation import prepare_dataset
from brainseg.data.projection import MipCache
from tests.conftest import make_dataset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def prepared(tmp_path):
    """A 3-case dataset and its filled cache."""
    root = make_dataset(tmp_path / "ds", n=3, shape=(24, 20, 8))
    reference = prepare_dataset(root, tmp_path / "cache", workers=1, progress=False)
    return root, tmp_path / "cache", reference


def assert_same_projections(prepared_dataset, reference) -> None:
    assert prepared_dataset.items.keys() == reference.items.keys()
    for case_id, projection in reference.items.items():
        np.testing.assert_array_equal(prepared_dataset.items[case_id].image, projection.image)
        np.testing.assert_array_equal(prepared_dataset.items[case_id].mask, projection.mask)


def assert_complete(cache: Path) -> None:
    assert not list(cache.rglob("*.tmp"))
    for png in cache.rglob("*.png"):
        with Image.open(png) as image:
            image.load()


@pytest.mark.parametrize(
    "damage",
    [
        "image cut in half",
        "mask cut in half",
        "image zero bytes",
        "image missing, mask written",  # a crash between the mask's write and the image's
    ],
)
def test_a_half_written_cache_file_is_a_miss_and_is_regenerated(prepared, damage):
    root, cache, reference = prepared
    store = MipCache(cache)
    png = store.mask_path("case01") if damage.startswith("mask") else store.image_path("case01")
    if "half" in damage:
        png.write_bytes(png.read_bytes()[: len(png.read_bytes()) // 2])
    elif "zero" in damage:
        png.write_bytes(b"")
    else:
        png.unlink()
    again = prepare_dataset(root, cache, workers=1, progress=False)
    assert again.newly_cached == 1 and not again.skipped
    assert_same_projections(again, reference)
    assert_complete(cache)


def test_a_write_interrupted_by_an_exception_leaves_neither_a_partial_file_nor_a_temporary(prepared, monkeypatch):
    root, cache, reference = prepared
    MipCache(cache).image_path("case01").unlink()

    def crash(self, stream, *args, **kwargs):
        stream.write(b"\x89PNG\r\n\x1a\n half a png")
        raise KeyboardInterrupt  # Ctrl-C in the middle of the write

    monkeypatch.setattr(Image.Image, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        prepare_dataset(root, cache, workers=1, progress=False)
    monkeypatch.undo()
    assert not MipCache(cache).image_path("case01").exists()
    assert_complete(cache)
    assert_same_projections(prepare_dataset(root, cache, workers=1, progress=False), reference)


KILLED_WRITER = """
import sys, time
from pathlib import Path
from PIL import Image
from brainseg.data.preparation import prepare_dataset

save, calls = Image.Image.save, []

def save_then_hang(self, stream, *args, **kwargs):
    calls.append(1)
    if len(calls) == 1:  # the mask is written first, whole
        return save(self, stream, *args, **kwargs)
    stream.write(b"\\x89PNG\\r\\n\\x1a\\n half a png")
    stream.flush()
    Path(sys.argv[3]).touch()
    time.sleep(600)  # killed here, in the middle of writing the image

Image.Image.save = save_then_hang
prepare_dataset(sys.argv[1], sys.argv[2], workers=1, progress=False)
"""


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_the_old_file_and_the_next_run_regenerates(prepared, tmp_path):
    root, cache, reference = prepared
    image_png = MipCache(cache).image_path("case01")
    image_png.write_bytes(image_png.read_bytes()[:100])  # stale and broken: the writer must replace it
    before = image_png.read_bytes()
    marker = tmp_path / "writing"
    process = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root), str(cache), str(marker)], cwd=ROOT)
    deadline = time.monotonic() + 120
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.kill()  # SIGKILL: no cleanup runs
    process.wait()
    assert marker.exists(), "the writer never started writing the image"
    assert image_png.read_bytes() == before  # the final name never holds a half-written file
    (leftover,) = cache.rglob("*.tmp")  # what SIGKILL leaves: a hidden temporary naming its writer, never read
    assert leftover.name.startswith(f".case01.png-{process.pid}@")
    again = prepare_dataset(root, cache, workers=1, progress=False)
    assert again.newly_cached == 1
    assert_same_projections(again, reference)
    assert_complete(cache)  # the next run removed the leftover: its writer is gone
    with Image.open(image_png) as image:
        image.load()


CONCURRENT_PREPARER = """
import sys, time
from pathlib import Path
from brainseg.data.preparation import prepare_dataset

go = Path(sys.argv[3])
Path(sys.argv[5]).touch()  # imports done
while not go.exists():
    time.sleep(0.01)
prepared = prepare_dataset(sys.argv[1], sys.argv[2], workers=1, progress=False)
assert len(prepared.items) == int(sys.argv[4]) and not prepared.skipped, prepared.summary()
print(prepared.newly_cached)
"""


def file_bytes(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.mark.slow
def test_two_processes_preparing_one_cache_at_once_leave_the_bytes_of_one_run(tmp_path):
    """Each run removes what killed writers left, never what the other run is writing."""
    n = 16
    root = make_dataset(tmp_path / "ds", n=n, shape=(24, 20, 8))
    reference = prepare_dataset(root, tmp_path / "reference", workers=1, progress=False)
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    leftover = tmp_path / "cache" / "images" / f".case03.png-{killed.pid}@{socket.gethostname()}-k1ll.tmp"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\x89PNG half a png")
    go = tmp_path / "go"
    ready = [tmp_path / f"ready{i}" for i in range(2)]
    processes = [
        subprocess.Popen([sys.executable, "-c", CONCURRENT_PREPARER, str(root), str(tmp_path / "cache"), str(go), str(n), str(mark)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for mark in ready
    ]
    deadline = time.monotonic() + 120
    while not all(mark.exists() for mark in ready) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()  # both start preparing together
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert sum(int(out.split()[-1]) for out, _ in outputs) >= n  # every case was written at least once
    assert_complete(tmp_path / "cache")  # the leftover is gone, and neither run left one
    assert file_bytes(tmp_path / "cache") == file_bytes(tmp_path / "reference")
    again = prepare_dataset(root, tmp_path / "cache", workers=1, progress=False)
    assert again.newly_cached == 0  # every file is complete and carries the right key
    assert_same_projections(again, reference)
