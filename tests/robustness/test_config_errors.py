"""Config mistakes are caught before any work, with a message that says what to type instead.

Extends tests/training/test_configs.py (negative lr, image size vs U-Net depth, reversed window, unknown
on_bad_case policy), which is not repeated here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import MissingMandatoryValue

from brainseg.cli import expected_message
from brainseg.errors import ConfigError
from brainseg.training.config import check_config
from brainseg.training.train import build
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "override, group, options",
    [
        ("optimizer=adamm", "optimizer", ["adam", "adamw", "sgd"]),
        ("loss=dise", "loss", ["bce", "dice", "dice_bce", "focal", "tversky"]),
        ("scheduler=cosin", "scheduler", ["cosine", "none", "plateau"]),
        ("data=foldr", "data", ["base", "folder", "synthetic"]),
        ("mode=volume", "mode", ["mip", "slices"]),
    ],
)
def test_a_misspelled_group_option_lists_the_valid_options(tmp_path, override, group, options):
    with pytest.raises(MissingConfigException) as error:
        compose_config([override], tmp_path)
    message = str(error.value)
    assert f"Could not find '{override.replace('=', '/')}'" in message
    assert f"Available options in '{group}'" in message
    assert all(f"\t{option}\n" in message + "\n" for option in options)


def test_a_misspelled_key_is_refused_by_name(tmp_path):
    with pytest.raises(ConfigCompositionException, match="Could not override 'data.imagesize'") as error:
        compose_config(["data.imagesize=64"], tmp_path)
    assert "Key 'imagesize' is not in struct" in str(error.value.__cause__ or error.value)


@pytest.mark.parametrize(
    "override, message",
    [
        ("optimizer.lr=0", "optimizer.lr must be > 0, got 0"),
        ("data.hu_window=[400,400]", "data.hu_window must be \\[low, high\\] with low < high, got \\[400, 400\\]"),
        ("data.batch_size=0", "data.batch_size must be >= 1, got 0"),
        ("data.normalization=zscor", "data.normalization must be 'window' or 'zscore', got 'zscor'"),
        ("data.split.val=-0.1", "data.split fractions must be >= 0 with train > 0"),
        ("data.split.train=0", "data.split fractions must be >= 0 with train > 0"),
    ],
)
def test_more_invalid_values_are_refused_before_any_data_is_read(tmp_path, override, message):
    with pytest.raises(ConfigError, match=message):
        check_config(compose_config([override], tmp_path))


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["mode=slices", "data.in_channels=2"], "data.in_channels must be odd \\(2 \\* context slices \\+ 1\\), got 2"),
        (["data.image_size=4", "model.net.channels=[4,8]"], "data.image_size must be at least 8, got 4"),
        (["model.threshold=1.5"], "model.threshold applies to probabilities and must be in \\(0, 1\\), got 1.5"),
        (["model.net.norm=layer"], "model.net: norm must be one of \\['batch', 'group', 'instance', 'none'\\], got 'layer'"),
    ],
)
def test_values_refused_by_a_constructor_come_out_as_one_line_naming_the_key(tmp_path, overrides, message):
    """Objects validate their arguments when built (before data or training); the entry points
    show such a refusal as one line (see brainseg.cli.run_safely), not a Hydra traceback."""
    with pytest.raises(Exception) as error:
        build(compose_config(overrides, tmp_path))
    shown = expected_message(error.value)
    assert shown is not None and "\n" not in shown, error.value
    assert re.fullmatch(message, shown), shown


@pytest.mark.slow
def test_the_command_line_shows_a_refused_value_in_one_line_and_exits_1(tmp_path):
    """(A misspelled option fails in Hydra's composition, before brainseg runs: the message is the
    one tested above.) A value refused inside Hydra's instantiate is brainseg's to report."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), "mode=slices", "data.in_channels=2", f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Error in call to target" not in result.stderr
    assert result.stderr.splitlines()[-1] == "error: data.in_channels must be odd (2 * context slices + 1), got 2"
    assert not (tmp_path / "data").exists()  # refused before the synthetic dataset was generated


def _no_gpu() -> bool:
    import torch

    return not torch.cuda.is_available() and not torch.backends.mps.is_available()


def _run(script: str, *overrides: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """An entry point as a user runs it, its outputs under ``tmp_path``."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *overrides, f"hydra.run.dir={tmp_path / 'run'}", f"paths.data_dir={tmp_path / 'data'}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )


def _assert_one_line_error(result: subprocess.CompletedProcess, line: str) -> None:
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert result.stderr.splitlines()[-1] == line, result.stderr[-2000:]


@pytest.mark.skipif(not _no_gpu(), reason="this machine has a GPU: trainer=gpu is valid here")
def test_trainer_gpu_without_a_gpu_says_so_in_one_line(tmp_path):
    """Lightning refuses accelerator=gpu inside Hydra's instantiate (MisconfigurationException)."""
    result = _run("train.py", "trainer=gpu", tmp_path=tmp_path)
    _assert_one_line_error(result, "error: trainer=gpu needs a CUDA GPU, and none is available here; use trainer=cpu (or trainer=auto)")
    assert not (tmp_path / "data").exists()  # refused before the synthetic dataset was generated


def test_a_missing_mandatory_value_names_the_key_to_add(tmp_path):
    """conf/evaluate.yaml has ckpt_path: ???; omegaconf raises MissingMandatoryValue when it is read."""
    result = _run("scripts/evaluate.py", tmp_path=tmp_path)
    _assert_one_line_error(result, "error: ckpt_path is required: add ckpt_path=PATH to the command")


@pytest.mark.skipif(not _no_gpu(), reason="this machine has a GPU: accelerator=gpu is valid here")
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer=gpu"], "the trainer config needs a CUDA GPU, and none is available here; use trainer=cpu (or trainer=auto)"),
        (["trainer.accelerator=cuda"], "the trainer config needs a CUDA GPU, and none is available here; use trainer=cpu (or trainer=auto)"),
        (["trainer.devices=0"], "the trainer config: `Trainer(devices=0)` value is not a valid input using cpu accelerator; use trainer=cpu (or trainer=auto)"),
    ],
)
def test_lightning_refusing_the_trainers_hardware_is_one_line(tmp_path, overrides, message):
    """In-process (no Hydra run, so no command line to quote); the command line is tested above."""
    with pytest.raises(Exception) as error:
        build(compose_config(overrides, tmp_path))
    assert expected_message(error.value) == message


def test_missing_mandatory_values_name_their_full_key(tmp_path):
    with pytest.raises(MissingMandatoryValue) as error:
        compose_config([], tmp_path, config_name="predict").input
    assert expected_message(error.value) == "input is required: add input=PATH to the command"
    with pytest.raises(MissingMandatoryValue) as error:
        OmegaConf.create({"model": {"net": {"depth": "???"}}}).model.net.depth
    assert expected_message(error.value) == "model.net.depth is required: add model.net.depth=VALUE to the command"
