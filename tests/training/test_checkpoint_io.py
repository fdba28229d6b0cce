"""Checkpoint writes are atomic: the file is the old checkpoint or the new one, whole, never a part."""

import os
import stat

import pytest
import torch

from brainseg.training.checkpoint_io import AtomicCheckpointIO


class Explodes:
    """Pickling it fails half way through a save, as a crash or a full disk would."""

    def __reduce__(self):
        raise OSError("disk full")


def test_a_save_replaces_the_file_whole_and_as_an_ordinary_file(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, path)
    io.save_checkpoint({"step": 2, "w": torch.zeros(3)}, path)
    assert torch.load(path, weights_only=True)["step"] == 2
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_a_failed_save_leaves_the_last_good_checkpoint_and_no_temporary_file(tmp_path):
    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1}, path)
    with pytest.raises(OSError, match="disk full"):
        io.save_checkpoint({"step": 2, "payload": Explodes()}, path)
    assert torch.load(path, weights_only=True) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_a_temporary_file_left_by_a_killed_writer_goes_with_the_next_save(tmp_path):
    (tmp_path / ".last.ckpt.abc123.tmp").write_bytes(b"PK\x03\x04 half a checkpoint")
    (tmp_path / ".other.ckpt.abc123.tmp").write_bytes(b"another file's")
    AtomicCheckpointIO().save_checkpoint({"step": 3}, tmp_path / "last.ckpt")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.ckpt.abc123.tmp", "last.ckpt"]


def test_the_training_config_uses_it(tmp_path):
    from hydra.utils import instantiate

    from tests.conftest import compose_config

    trainer = instantiate(compose_config([], tmp_path).trainer, logger=False, enable_progress_bar=False)
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)
