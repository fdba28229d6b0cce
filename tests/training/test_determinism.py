"""The same config and seed give the same metrics: runs can be compared and bugs reproduced."""


import pytest

from brainseg.training.train import train
from tests.conftest import compose_config, make_dataset

# Augmentation stays on: its random draws must repeat too.
TINY = ["data.image_size=32", "model.net.channels=[4,8]", "data.batch_size=2", "trainer.max_epochs=2", "callbacks.validation_panel=null"]


def test_trainer_is_deterministic_by_default(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.trainer.deterministic in (True, "warn")


@pytest.mark.slow
def test_the_same_config_and_seed_give_the_same_metrics_on_cpu(tmp_path):
    dataset = make_dataset(tmp_path / "ds", n=6, shape=(24, 20, 8))
    runs = []
    for name, seed in (("first", 42), ("second", 42), ("other_seed", 7)):
        overrides = [f"data.root={dataset}", f"data.cache_dir={tmp_path / 'cache'}", f"seed={seed}", *TINY]
        metrics = train(compose_config(overrides, tmp_path / name))
        runs.append({key: value for key, value in metrics.items() if isinstance(value, float)})
    assert runs[0] == runs[1]  # exactly: same data order, augmentation, initial weights and arithmetic
    assert {"train/loss_epoch", "val/dice", "test/dice"} <= set(runs[0])
    assert runs[2]["train/loss_epoch"] != runs[0]["train/loss_epoch"]  # the seed, not luck, made them equal
