"""Errors cross process boundaries intact: every error brainseg raises, and everything a preparation
worker sends back, comes out of ``pickle`` with its type, message and attributes unchanged. A worker
process's errors travel that way, and one that did not would break the pool and lose the error."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from brainseg import errors
from brainseg.data.discovery import CaseRecord
from brainseg.data.preparation import _prepare_case, call_intact, run_cases
from brainseg.data.projection import MipRepresentation
from brainseg.data.slices import SliceRepresentation
from tests.conftest import phantom, write_nifti

AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])

# one instance of every error in brainseg/errors.py, as the pipeline raises it
EXAMPLES = {
    errors.ConfigError: errors.ConfigError("optimizer.lr must be > 0, got -1"),
    errors.BadCaseError: errors.BadCaseError("/data/CTA images/a.nii.gz", "file is truncated (fewer voxels than the header declares)"),
    errors.BadCheckpointError: errors.BadCheckpointError("/runs/x/best.ckpt", "no 'state_dict' in the checkpoint"),
    errors.BadDatasetError: errors.BadDatasetError({"/data/a.nii.gz": "file is empty (0 bytes)", "/data/b_ROI.nii.gz": "mask is empty (no brain voxels)"}),
    errors.WorkerError: errors.WorkerError("KeyError", "'spacing'", 'Traceback (most recent call last):\n  File "x.py"...', "CaseRecord('a')"),
}


def round_trip(value):
    return pickle.loads(pickle.dumps(value))


def test_every_error_of_brainseg_errors_has_an_example_here():
    defined = {cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, Exception) and cls.__module__ == errors.__name__}
    assert defined == set(EXAMPLES)


@pytest.mark.parametrize("error", list(EXAMPLES.values()), ids=lambda error: type(error).__name__)
def test_an_error_comes_out_of_pickle_with_its_type_message_and_attributes(error):
    copy = round_trip(error)
    assert type(copy) is type(error)
    assert str(copy) == str(error) and copy.args == error.args
    assert vars(copy) == vars(error)  # path and problem, bad_files, the worker's traceback...


def test_a_bad_dataset_error_lists_each_bad_file_on_its_own_line():
    assert str(EXAMPLES[errors.BadDatasetError]).splitlines() == [
        "2 bad file(s) under data.on_bad_case=fail:",
        "  /data/a.nii.gz: file is empty (0 bytes)",
        "  /data/b_ROI.nii.gz: mask is empty (no brain voxels)",
    ]


@pytest.fixture
def cases(tmp_path):
    """A good case and a case whose image is cut short."""
    image, mask = phantom((24, 20, 8))
    records = {}
    for name in ("good", "cut"):
        image_path = write_nifti(tmp_path / "CTA images" / f"{name}.nii.gz", image, AFFINE)
        mask_path = write_nifti(tmp_path / "brain masks" / f"{name}_ROI.nii.gz", mask, AFFINE)
        records[name] = CaseRecord(name, image_path, mask_path)
    data = records["cut"].image_path.read_bytes()
    records["cut"].image_path.write_bytes(data[: len(data) // 2])
    return records


@pytest.mark.parametrize("representation", [MipRepresentation(), SliceRepresentation(2.0)], ids=["mip", "slices"])
def test_what_a_worker_sends_back_comes_out_of_pickle_unchanged(cases, tmp_path, representation):
    for name, record in cases.items():
        result = _prepare_case(record, representation, str(tmp_path / "cache"), 1e-3, 10**9)
        (record_copy, item_copy, error_copy), (_, item, error) = round_trip(result), result
        assert record_copy == record
        if name == "good":
            assert error is None and error_copy is None
            for attribute, value in vars(item).items():
                if isinstance(value, np.ndarray):
                    np.testing.assert_array_equal(getattr(item_copy, attribute), value)
                else:
                    assert getattr(item_copy, attribute) == value
        else:
            assert item is None and item_copy is None
            assert (type(error_copy), error_copy.path, error_copy.problem) == (errors.BadCaseError, str(record.image_path), error.problem)


class RebuiltDifferently(ValueError):
    """An exception whose constructor does not take its ``args``: ``pickle`` cannot rebuild it."""

    def __init__(self, path, problem):
        super().__init__(f"{path}: {problem}")


def raise_rebuilt_differently(index: int) -> int:
    if index == 3:
        raise RebuiltDifferently("case03.nii.gz", "a bug in a worker")
    return index


def test_an_error_that_does_not_pickle_is_sent_back_as_a_worker_error_with_its_traceback():
    with pytest.raises(errors.WorkerError) as caught:
        call_intact(raise_rebuilt_differently, 3)
    error = round_trip(caught.value)
    assert (error.kind, error.message, error.task) == ("RebuiltDifferently", "case03.nii.gz: a bug in a worker", "3")
    assert "raise_rebuilt_differently" in error.traceback and "The worker's traceback" in str(error)
    with pytest.raises(KeyError):  # an error that pickles crosses as itself
        call_intact({}.__getitem__, "spacing")


@pytest.mark.slow
def test_a_worker_process_raising_an_error_that_does_not_pickle_leaves_the_pool_with_that_error(monkeypatch):
    monkeypatch.setattr("brainseg.data.preparation.MIN_CASES_PER_WORKER", 1)  # a pool even for 6 calls
    with pytest.raises(errors.WorkerError, match="RebuiltDifferently: case03.nii.gz: a bug in a worker"):
        list(run_cases(raise_rebuilt_differently, [(index,) for index in range(6)], workers=2))
