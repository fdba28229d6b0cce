"""Preparing a dataset: bad cases are skipped with a reason, or stop the run under 'fail'."""

import numpy as np
import pytest

from brainseg.data.discovery import CaseRecord
from brainseg.data.preparation import prepare_dataset, select_shard
from brainseg.errors import BadDatasetError
from tests.conftest import make_dataset, phantom, write_nifti


def _dataset_with_bad_cases(root):
    make_dataset(root, n=2)
    image, mask = phantom()
    write_nifti(root / "CTA images" / "empty.nii.gz", image)
    write_nifti(root / "brain masks" / "empty_ROI.nii.gz", np.zeros_like(mask))
    (root / "CTA images" / "broken.nii.gz").write_bytes(b"")
    write_nifti(root / "brain masks" / "broken_ROI.nii.gz", mask)
    return root


def test_skip_leaves_bad_cases_out_with_one_line_reasons(tmp_path):
    prepared = prepare_dataset(_dataset_with_bad_cases(tmp_path / "ds"), tmp_path / "cache", progress=False)
    assert sorted(prepared.items) == ["case00", "case01"]
    reasons = {path.rsplit("/", 1)[-1]: reason for path, reason in prepared.skipped.items()}
    assert reasons == {"empty_ROI.nii.gz": "mask is empty (no brain voxels)", "broken.nii.gz": "file is empty (0 bytes)"}
    assert not (tmp_path / "cache" / "images" / "empty.png").exists()  # nothing cached for a bad case


def test_fail_stops_and_lists_every_bad_file(tmp_path):
    with pytest.raises(BadDatasetError) as error:
        prepare_dataset(_dataset_with_bad_cases(tmp_path / "ds"), tmp_path / "cache", on_bad_case="fail", progress=False)
    message = str(error.value)
    assert "2 bad file(s)" in message and "empty_ROI.nii.gz: mask is empty" in message and "broken.nii.gz" in message


def test_worker_processes_give_the_same_result_as_one_process(tmp_path):
    root = make_dataset(tmp_path / "ds", n=16, shape=(12, 10, 6))
    serial = prepare_dataset(root, tmp_path / "a", workers=1, progress=False)
    parallel = prepare_dataset(root, tmp_path / "b", workers=2, progress=False)
    assert serial.items.keys() == parallel.items.keys()
    for case_id, projection in serial.items.items():
        np.testing.assert_array_equal(projection.image, parallel.items[case_id].image)


def test_shards_are_disjoint_and_cover_every_case(tmp_path):
    cases = [CaseRecord(f"c{i}", tmp_path / f"c{i}.nii.gz") for i in range(7)]
    shards = [select_shard(cases, k, 3) for k in range(3)]
    assert sorted(r.case_id for shard in shards for r in shard) == [f"c{i}" for i in range(7)]
    with pytest.raises(ValueError, match="shard must be in"):
        select_shard(cases, 3, 3)
