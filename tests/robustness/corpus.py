"""The bad-input corpus: a dataset folder of good phantoms plus one case per way real exports go wrong.

:func:`make_corpus` writes it (the 'cta' layout: ``CTA images/<case>.nii.gz`` and
``brain masks/<case>_ROI.nii.gz``) and returns, for every bad entry, the files an error must name
and the problem it must state. The entry's name is its case ID, so a test can find it in any
report. Everything is tiny (24 x 20 x 8 voxels), so the whole corpus prepares in about a second.
"""

from __future__ import annotations

import builtins
import gzip
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.conftest import phantom, write_nifti

SHAPE = (24, 20, 8)
AFFINE = np.diag([0.8, 0.8, 2.0, 1.0])
IMAGES, MASKS = "CTA images", "brain masks"
HUGE_SHAPE = (2048, 2048, 2048)  # 8.6e9 voxels (16 GiB of int16), declared by a 1 KiB file
# Permissions do not stop root (CAP_DAC_OVERRIDE): as root a chmod-000 file is simulated instead.
RUNNING_AS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class BadInput:
    """One corpus entry: the files a one-line error must name, and the problem it must state."""

    name: str  # also its case ID
    files: tuple[Path, ...]
    problem: str  # regular expression the reason must match
    image_level: bool  # the image itself is bad, so prediction (which reads no mask) refuses it too
    unreadable: bool = False  # made unreadable with chmod 000 (see :func:`deny_reading`)


def _image(root: Path, case: str, suffix: str = ".nii.gz") -> Path:
    return root / IMAGES / f"{case}{suffix}"


def _mask(root: Path, case: str) -> Path:
    return root / MASKS / f"{case}_ROI.nii.gz"


def write_case(root: Path, case: str, seed: int = 0, image=None, mask=None, mask_affine=None) -> tuple[Path, Path]:
    """A case of the phantom, with its image or mask replaced when given."""
    good_image, good_mask = phantom(SHAPE, seed)
    image_path = write_nifti(_image(root, case), good_image if image is None else image, AFFINE)
    mask_path = write_nifti(_mask(root, case), good_mask if mask is None else mask, AFFINE if mask_affine is None else mask_affine)
    return image_path, mask_path


def _with_voxel(value: float) -> np.ndarray:
    image = phantom(SHAPE)[0].astype(np.float32)
    image[SHAPE[0] // 2, SHAPE[1] // 2, SHAPE[2] // 2] = value
    return image


# ---- the entries: each writes its case under ``root`` and returns the files its error must name ----


def _truncated(root, case):
    image, _ = write_case(root, case)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) * 2 // 3])  # a transfer that stopped two thirds of the way
    return (image,)


def _not_nifti(root, case):
    image, _ = write_case(root, case)
    image.write_bytes(b"<html>Session expired. Please log in again.</html>\n" * 20)
    return (image,)


def _zero_bytes(root, case):
    image, _ = write_case(root, case)
    image.write_bytes(b"")
    return (image,)


def _two_d(root, case):
    return (write_case(root, case, image=phantom(SHAPE)[0][:, :, 0])[0],)


def _four_d(root, case):
    volume = phantom(SHAPE)[0]
    return (write_case(root, case, image=np.stack([volume, volume], axis=-1))[0],)


def _nan_voxels(root, case):
    return (write_case(root, case, image=_with_voxel(np.nan))[0],)


def _inf_voxels(root, case):
    return (write_case(root, case, image=_with_voxel(np.inf))[0],)


def _shape_mismatch(root, case):
    return (write_case(root, case, mask=phantom(SHAPE)[1][:, :, :-1])[1],)


def _affine_mismatch(root, case):
    return (write_case(root, case, mask_affine=np.diag([0.8, 0.8, 2.5, 1.0]))[1],)


def _non_binary_mask(root, case):
    mask = phantom(SHAPE)[1] * np.random.default_rng(0).integers(1, 4, SHAPE).astype(np.uint8)
    return (write_case(root, case, mask=mask)[1],)


def _empty_mask(root, case):
    return (write_case(root, case, mask=np.zeros(SHAPE, np.uint8))[1],)


def _mask_without_image(root, case):
    _, mask = write_case(root, case)
    _image(root, case).unlink()
    return (mask,)


def _image_without_mask(root, case):
    image, mask = write_case(root, case)
    mask.unlink()
    return (image,)


def _duplicate_ids(root, case):
    first, _ = write_case(root, case)
    second = write_nifti(_image(root, case, ".nii"), phantom(SHAPE, seed=1)[0], AFFINE)
    return (first, second)


def _unreadable(root, case):
    image, _ = write_case(root, case)
    image.chmod(0)
    return (image,)


def _huge_header(root, case):
    """A valid header declaring :data:`HUGE_SHAPE` int16 voxels, followed by a few voxels only."""
    image, _ = write_case(root, case)
    raw = bytearray(gzip.decompress(image.read_bytes()))
    raw[40:48] = struct.pack("<4h", 3, *HUGE_SHAPE[:3])  # dim[0..3] of the NIfTI-1 header
    image.write_bytes(gzip.compress(bytes(raw[:2048])))
    return (image,)


# name -> (writer, problem regex, image level)
ENTRIES: dict[str, tuple[Callable, str, bool]] = {
    "truncated": (_truncated, r"truncated|unreadable data", True),
    "not_nifti": (_not_nifti, r"not a readable NIfTI file", True),
    "zero_bytes": (_zero_bytes, r"file is empty \(0 bytes\)", True),
    "two_d": (_two_d, r"expected a 3-D volume, got 2-D", True),
    "four_d": (_four_d, r"expected a 3-D volume, got 4-D", True),
    "nan_voxels": (_nan_voxels, r"contains NaN or Inf voxels", True),
    "inf_voxels": (_inf_voxels, r"contains NaN or Inf voxels", True),
    "shape_mismatch": (_shape_mismatch, r"mask shape \(24, 20, 7\) differs from image shape \(24, 20, 8\)", False),
    "affine_mismatch": (_affine_mismatch, r"mask affine differs from the image's by up to 0.5 mm", False),
    "non_binary_mask": (_non_binary_mask, r"mask is not binary: values \{0, 1, 2, 3\}", False),
    "empty_mask": (_empty_mask, r"mask is empty", False),
    "mask_without_image": (_mask_without_image, r"mask without an image", False),
    "image_without_mask": (_image_without_mask, r"image without a mask", False),
    "duplicate_ids": (_duplicate_ids, r"duplicate case ID 'duplicate_ids'", True),
    "unreadable": (_unreadable, r"permission denied", True),
    "huge_header": (_huge_header, r"header declares \(2048, 2048, 2048\) = 8,589,934,592 voxels, over the limit", True),
}
GOOD_CASES = ("good00", "good01", "good02", "good03")


def make_corpus(root: Path, names=tuple(ENTRIES), n_good: int = 3) -> dict[str, BadInput]:
    """Write ``n_good`` good cases and the entries ``names`` into the dataset folder ``root``."""
    for i, case in enumerate(GOOD_CASES[:n_good]):
        write_case(root, case, seed=i)
    corpus = {}
    for name in names:
        writer, problem, image_level = ENTRIES[name]
        files = writer(root, name)
        corpus[name] = BadInput(name, files, problem, image_level, unreadable=name == "unreadable")
    return corpus


def deny_reading(monkeypatch, paths) -> None:
    """Make opening ``paths`` raise PermissionError, as chmod 000 does for anyone but root."""
    denied = {str(Path(path).resolve()) for path in paths}
    real_open = builtins.open

    def guarded_open(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and str(Path(file).resolve()) in denied:
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", guarded_open)


def check_unreadable(monkeypatch, corpus: dict[str, BadInput]) -> None:
    """Make the corpus's chmod-000 files unreadable in this process too when running as root."""
    if RUNNING_AS_ROOT:
        deny_reading(monkeypatch, [file for entry in corpus.values() if entry.unreadable for file in entry.files])
