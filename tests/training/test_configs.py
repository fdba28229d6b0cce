"""Every config group option composes, instantiates and runs: the matrix users sweep over."""

import itertools

import pytest
from hydra.utils import instantiate

from brainseg.errors import ConfigError
from brainseg.training.config import check_config
from brainseg.training.train import build, train
from tests.conftest import compose_config, make_dataset

LOSSES = ["dice", "bce", "dice_bce", "focal", "tversky"]
OPTIMIZERS = ["adam", "adamw", "sgd"]


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("tiny") / "ds", n=6, shape=(24, 20, 8))


def tiny(tmp_path, dataset, *overrides):
    return [
        f"data.root={dataset}",
        f"data.cache_dir={tmp_path.parent / 'cache'}",
        "data.image_size=32",
        "data.batch_size=2",
        "model.net.channels=[4,8]",
        "callbacks.validation_panel=null",
        *overrides,
    ]


@pytest.mark.parametrize("loss, optimizer", list(itertools.product(LOSSES, OPTIMIZERS)))
def test_every_loss_and_optimizer_passes_a_fast_dev_run(tmp_path, tiny_dataset, loss, optimizer):
    cfg = compose_config(tiny(tmp_path, tiny_dataset, f"loss={loss}", f"optimizer={optimizer}", "debug=fdr"), tmp_path)
    metrics = train(cfg)
    assert "train/loss" in metrics


@pytest.mark.parametrize("scheduler", ["none", "cosine", "plateau"])
def test_every_scheduler_builds(tmp_path, tiny_dataset, scheduler):
    cfg = compose_config(tiny(tmp_path, tiny_dataset, f"scheduler={scheduler}", "debug=fdr"), tmp_path)
    train(cfg)


@pytest.mark.parametrize("trainer", ["default", "cpu", "gpu", "auto"])
def test_every_trainer_option_composes(tmp_path, trainer):
    cfg = compose_config([f"trainer={trainer}"], tmp_path)
    assert cfg.trainer._target_ == "pytorch_lightning.Trainer"
    if trainer != "gpu":
        _, _, built = build(cfg)
        assert built.max_epochs == cfg.trainer.max_epochs


@pytest.mark.parametrize("logger", ["tensorboard", "csv", "many"])
def test_every_logger_option_instantiates(tmp_path, logger):
    cfg = compose_config([f"logger={logger}"], tmp_path)
    assert all(instantiate(entry) for entry in cfg.logger.values())


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=-0.001", "optimizer.lr must be > 0"),
        ("data.image_size=100", "not divisible by 16"),
        ("data.hu_window=[500,100]", "low < high"),
        ("data.on_bad_case=ignore", "'skip' or 'fail'"),
    ],
)
def test_invalid_values_are_refused_before_training(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config([override], tmp_path))


def test_a_top_stride_of_4_needs_an_input_side_divisible_by_twice_as_much(tmp_path):
    check_config(compose_config(["model.net.top_stride=4"], tmp_path))  # 128 px: divisible by 32
    with pytest.raises(ConfigError, match="not divisible by 32.*top_stride=4"):
        check_config(compose_config(["model.net.top_stride=4", "data.image_size=112"], tmp_path))


def test_the_default_config_reads_as_documented(tmp_path):
    cfg = compose_config([], tmp_path)
    assert cfg.data._target_ == "brainseg.data.mip_datamodule.MipDataModule" and cfg.data.root is None
    assert cfg.model.net._target_ == "brainseg.models.LeanUNet"
    assert cfg.callbacks.model_checkpoint.monitor == "val/dice" and cfg.callbacks.model_checkpoint.save_last
