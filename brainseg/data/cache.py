"""What every representation's cache shares: keys and atomic writes.

A key hashes the case's source files (paths, sizes, modification times) and the settings that
change the cached arrays, so a changed file or setting never reuses a stale entry. Files are
written to a temporary name and renamed into place, so a crash or a concurrent writer never
leaves a half-written file under the final name; an unreadable file is a miss and is rewritten.
What a killed writer leaves, a hidden temporary, is removed by the next run that finds it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin

from brainseg.data.discovery import CaseRecord

CACHE_VERSION = 1  # bump when a representation changes what it writes
HU_OFFSET = 32768  # 16-bit PNGs of HU (MIPs, the mean projection) hold HU + 32768

# A cache file is written in well under a second; a temporary nobody touched for an hour has no writer.
STALE_AFTER_S = 3600.0
TEMPORARY_NAME = re.compile(r"\..+-(?P<pid>\d+)@(?P<host>[^@/]+)-[^-]+\.tmp")  # see write_atomically


def to_png16(values: np.ndarray, step: float = 1.0, offset: int = HU_OFFSET) -> np.ndarray:
    """Values as the cache's 16-bit PNGs hold them: round(values / step) + offset, clipped to
    uint16. The defaults are HU (MIPs, the mean projection) in whole HU."""
    return np.clip(np.rint(np.asarray(values) / step) + offset, 0, 65535).astype(np.uint16)


def from_png16(stored: np.ndarray, step: float = 1.0, offset: int = HU_OFFSET) -> np.ndarray:
    """The values (float32) that :func:`to_png16` stored."""
    return ((stored.astype(np.float32) - offset) * np.float32(step)).astype(np.float32)


def _fingerprint(path: Path | None) -> list | None:
    if path is None:
        return None
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


def cache_key(record: CaseRecord, settings: dict) -> str:
    """Hash of the case's source files and the settings that change the cached pixels."""
    content = {
        "version": CACHE_VERSION,
        "image": _fingerprint(record.image_path),
        "mask": _fingerprint(record.mask_path),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:32]


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """``write(stream)`` into a temporary file beside ``path``, then rename it to ``path``:
    readers see the old file or the new one, never half of one, and a failure leaves nothing.

    The temporary, ``.<name>-<pid>@<host>-<random>.tmp``, names its writer, so that a later run
    can tell one left by a killed writer (:func:`remove_stale_temporaries`). Should a cleanup
    remove it all the same before the rename, the file is written once more.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-{os.getpid()}@{socket.gethostname()}-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                write(stream)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        try:
            os.replace(temporary, path)
            return
        except FileNotFoundError:  # removed under us by a cleanup that took it for a dead writer's
            if attempt == 1 or not path.parent.is_dir():
                raise


def remove_stale_temporaries(folder: str | Path, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporaries that killed writers left anywhere under ``folder``; return them.

    A temporary is stale when its writer ran on this machine and is no longer running, or when
    nothing has touched it for ``stale_after_s`` seconds (a writer on another machine sharing the
    folder, whose process this one cannot see; a name without its writer). A running writer's
    temporary is never removed, so several runs may fill one cache at once.
    """
    removed = []
    for temporary in Path(folder).rglob(".*.tmp"):
        try:
            untouched_s = time.time() - temporary.stat().st_mtime
            if _writer_is_gone(temporary.name) or untouched_s > stale_after_s:
                temporary.unlink()
                removed.append(temporary)
        except FileNotFoundError:  # renamed into place by its writer, or removed by another run
            continue
    return removed


def _writer_is_gone(name: str) -> bool:
    """Whether the temporary ``name`` was written on this machine by a process that has ended."""
    writer = TEMPORARY_NAME.fullmatch(name)
    if writer is None or writer["host"] != socket.gethostname():
        return False  # unknown or on another machine: only its age can tell
    try:
        os.kill(int(writer["pid"]), 0)  # signal 0: no signal, only the check that the process exists
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):  # another user's process (alive), or no PID at all
        return False
    return False


def write_png_atomically(array: np.ndarray, path: Path, text: dict[str, str]) -> None:
    """A PNG with ``text`` chunks, written atomically (fast zlib level: the cache is re-read, not archived)."""
    info = PngImagePlugin.PngInfo()
    for name, value in text.items():
        info.add_text(name, value)
    write_atomically(path, lambda stream: Image.fromarray(array).save(stream, format="PNG", pnginfo=info, compress_level=1))


def read_png(path: Path) -> tuple[np.ndarray, dict[str, str]] | None:
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image), dict(image.text)
    except (OSError, ValueError, SyntaxError):
        return None  # missing, truncated or corrupt: a miss


def dataset_cache_dir(dataset_root: str | Path, cache_root: str | Path) -> Path:
    """The automatic cache folder of a dataset: ``<cache_root>/<dataset name>-<hash of its path>``."""
    dataset_root = Path(dataset_root)
    digest = hashlib.sha1(str(dataset_root.resolve()).encode()).hexdigest()[:8]
    return Path(cache_root) / f"{dataset_root.name}-{digest}"
