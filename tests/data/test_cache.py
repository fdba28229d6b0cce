"""The MIP cache: exact round trip, keyed by sources and settings, robust to crashes."""

import numpy as np
import pytest

from brainseg.data.cache import cache_key
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
