"""K-fold runs: the config check refuses a fold outside the folds in one line, before any work."""

import pytest

from brainseg.errors import ConfigError
from brainseg.training.config import check_config
from tests.conftest import compose_config


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.num_folds=5", "data.fold=5"], "data.fold must be in 0..4 for data.num_folds=5, got 5"),
        (["data.num_folds=5", "data.fold=-1"], "data.fold must be in 0..4 for data.num_folds=5, got -1"),
        (["data.num_folds=1"], "data.num_folds must be >= 2 (or null for one split), got 1"),
    ],
)
def test_a_fold_outside_0_to_k_minus_1_is_refused_in_one_line(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as error:
        check_config(compose_config(overrides, tmp_path))
    assert str(error.value) == message and "\n" not in str(error.value)


@pytest.mark.parametrize("mode", ["mip", "slices"])
def test_every_fold_of_both_modes_passes_the_check(tmp_path, mode):
    for fold in range(3):
        check_config(compose_config([f"mode={mode}", "data.num_folds=3", f"data.fold={fold}"], tmp_path))


def test_fold_jobs_are_summarized_per_setting_of_their_other_overrides():
    from brainseg.training.sweeps import cross_validation_groups

    def row(job, *overrides, num_folds=3):
        return {"job": job, "overrides": list(overrides), "run_dir": f"s/{job}", "num_folds": num_folds}

    one = [row(j, "data.num_folds=3", f"data.fold={j}") for j in range(3)]
    assert cross_validation_groups(one) == {"": one}
    two = [row(j, "data.num_folds=3", f"loss={loss}", f"data.fold={fold}") for j, (loss, fold) in enumerate((l, f) for l in ("dice", "focal") for f in range(3))]
    groups = cross_validation_groups([*two, row(9, "optimizer.lr=0.1", num_folds=None)])
    assert {name: [r["job"] for r in rows] for name, rows in groups.items()} == {"cv_loss=dice": [0, 1, 2], "cv_loss=focal": [3, 4, 5]}
