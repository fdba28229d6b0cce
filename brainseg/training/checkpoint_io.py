"""Checkpoint files that are whole or absent: a write that is interrupted never replaces the last good one.

Lightning's own ``TorchCheckpointIO`` serializes the checkpoint in memory and writes it through an
fsspec transaction: into a temporary file in the system's temporary folder, moved into place
when complete. That move is an atomic rename only when the temporary folder and the run folder
share a file system; on a cluster they often do not (a node-local ``/tmp``, a shared run folder),
and the move is then a copy into ``last.ckpt`` itself, which a kill mid-copy leaves truncated.
Nothing is flushed to disk first, either, and a killed writer leaves its full-size temporary
file behind in ``/tmp``.

:class:`AtomicCheckpointIO` writes next to the target instead (``.<name>.<random>.tmp`` in the
checkpoint folder), flushes it to disk, renames it over the target (atomic on POSIX file
systems) and flushes the folder entry, so ``last.ckpt`` is always the previous checkpoint or
the new one, complete. A temporary file that a killed writer left is removed by the next save
of the same checkpoint.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` whose saves replace the file in one atomic rename (local file systems)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        if storage_options is not None or "://" in str(path):  # remote storage: Lightning's own transaction
            return super().save_checkpoint(checkpoint, path, storage_options)
        write_atomically(checkpoint, Path(path))


def write_atomically(checkpoint: dict[str, Any], path: Path) -> None:
    """``torch.save(checkpoint, path)``, but ``path`` never holds a partial file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a writer that was killed
        stale.unlink(missing_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            torch.save(checkpoint, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # as an ordinary new file; mkstemp makes it private
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """Flush the folder's entries (the rename) to disk, where the platform allows it."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
