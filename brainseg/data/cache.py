"""On-disk cache of MIPs as PNG, keyed by the source files and the projection settings.

Layout: ``<cache>/images/<CaseID>.png`` (16-bit, HU + 32768, so any window or normalization can
be applied later without re-reading NIfTI) and ``<cache>/masks/<CaseID>.png`` (8-bit, 0/255).
Each PNG carries its key (source paths, sizes and modification times, and the settings) in a
text chunk, so a changed file or setting never reuses a stale PNG. Files are written to a
temporary name and renamed into place, so a crash or a concurrent writer never leaves a
half-written PNG under the final name; an unreadable PNG is treated as a miss and rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from brainseg.data.discovery import CaseRecord
from brainseg.data.projection import Projection

CACHE_VERSION = 1  # bump when the projection code changes what it writes
HU_OFFSET = 32768


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


def _write_png_atomically(array: np.ndarray, path: Path, text: dict[str, str]) -> None:
    info = PngImagePlugin.PngInfo()
    for name, value in text.items():
        info.add_text(name, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".png.tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            Image.fromarray(array).save(stream, format="PNG", pnginfo=info, compress_level=1)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_png(path: Path) -> tuple[np.ndarray, dict[str, str]] | None:
    try:
        with Image.open(path) as image:
            image.load()
            return np.asarray(image), dict(image.text)
    except (OSError, ValueError, SyntaxError):
        return None  # missing, truncated or corrupt: a miss


class MipCache:
    """Reads and writes cached MIP pairs under ``root``."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.images_dir = self.root / "images"
        self.masks_dir = self.root / "masks"

    def image_path(self, case_id: str) -> Path:
        return self.images_dir / f"{case_id}.png"

    def mask_path(self, case_id: str) -> Path:
        return self.masks_dir / f"{case_id}.png"

    def load(self, case_id: str, key: str) -> Projection | None:
        """The cached projection if both PNGs exist, decode and carry ``key``; else ``None``."""
        image = _read_png(self.image_path(case_id))
        if image is None or image[1].get("brainseg-key") != key:
            return None
        pixels, text = image
        mask = None
        if text.get("has-mask") == "1":
            cached_mask = _read_png(self.mask_path(case_id))
            if cached_mask is None or cached_mask[1].get("brainseg-key") != key:
                return None
            mask = (cached_mask[0] > 0).astype(np.uint8)
        hu = pixels.astype(np.float32) - HU_OFFSET
        spacing = tuple(float(s) for s in text["spacing"].split(","))
        return Projection(hu, mask, spacing, json.loads(text.get("warnings", "[]")))

    def store(self, case_id: str, key: str, projection: Projection) -> None:
        """Write the pair atomically; the mask first, so a found image implies a complete pair."""
        text = {
            "brainseg-key": key,
            "spacing": ",".join(f"{s:.6g}" for s in projection.spacing),
            "has-mask": "1" if projection.mask is not None else "0",
            "warnings": json.dumps(projection.warnings),
        }
        if projection.mask is not None:
            _write_png_atomically((projection.mask > 0).astype(np.uint8) * 255, self.mask_path(case_id), text)
        stored = np.clip(np.rint(projection.image) + HU_OFFSET, 0, 65535).astype(np.uint16)
        _write_png_atomically(stored, self.image_path(case_id), text)
