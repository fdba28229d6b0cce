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
