"""What every representation's cache shares: keys and atomic writes.

A key hashes the case's source files (paths, sizes, modification times) and the settings that
change the cached arrays, so a changed file or setting never reuses a stale entry. Files are
written to a temporary name and renamed into place, so a crash or a concurrent writer never
leaves a half-written file under the final name; an unreadable file is a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, PngImagePlugin

from brainseg.data.discovery import CaseRecord

CACHE_VERSION = 1  # bump when a representation changes what it writes


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
    readers see the old file or the new one, never half of one, and a failure leaves nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


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
