"""Find image/mask pairs in a dataset folder and pair them by case ID.

Two layouts are recognised:

* the one researchers already have: ``<root>/CTA images/<CaseID>.nii.gz`` with
  ``<root>/brain masks/<CaseID>_ROI.nii.gz`` (folder names and the ``_ROI`` suffix are
  matched case-insensitively);
* nnU-Net's: ``<root>/imagesTr/<case>_0000.nii.gz`` with ``<root>/labelsTr/<case>.nii.gz``.

Both ``.nii.gz`` and ``.nii`` are accepted. Pairing is by case ID, never by file-name
surgery on derived files, and whatever could not be paired is reported by name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

NIFTI_SUFFIXES = (".nii.gz", ".nii")

# (image folder, mask folder, image-name pattern, mask-name pattern); the patterns capture the case ID.
LAYOUTS = {
    "cta": ("cta images", "brain masks", r"(?P<case>.+)", r"(?P<case>.+)_roi"),
    "nnunet": ("imagestr", "labelstr", r"(?P<case>.+)_0000", r"(?P<case>.+)"),
}


@dataclass(frozen=True)
class CaseRecord:
    """One case: its ID, the CTA volume and (for training and evaluation) its brain mask."""

    case_id: str
    image_path: Path
    mask_path: Path | None = None


@dataclass
class Discovery:
    """What a dataset folder holds: paired cases, plus every file that could not be used."""

    cases: list[CaseRecord] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)  # unpaired or duplicate file -> reason
    ignored: list[str] = field(default_factory=list)  # files in the folders that are not NIfTI


def strip_nifti_suffix(name: str) -> str | None:
    """``'a.nii.gz' -> 'a'``, ``'a.nii' -> 'a'``; ``None`` for anything that is not NIfTI."""
    lower = name.lower()
    for suffix in NIFTI_SUFFIXES:
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return None


def _subfolder(root: Path, wanted: str) -> Path | None:
    """The child of ``root`` whose name equals ``wanted`` ignoring case, if any."""
    for child in sorted(root.iterdir()):
        if child.is_dir() and child.name.lower() == wanted:
            return child
    return None


def _index_folder(folder: Path, pattern: str, discovery: Discovery, series_folders: bool = False) -> dict[str, Path]:
    """Map case ID -> file for the NIfTI files in ``folder`` whose stem matches ``pattern``.

    With ``series_folders``, a subfolder (a DICOM series) is an image too, named by the folder.
    """
    found: dict[str, Path] = {}
    regex = re.compile(pattern, re.IGNORECASE)
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        stem = path.name if series_folders and path.is_dir() else strip_nifti_suffix(path.name)
        match = regex.fullmatch(stem) if stem is not None else None
        if match is None:
            discovery.ignored.append(str(path))
            continue
        case_id = match["case"]
        if case_id in found:
            first = found[case_id] or path
            for duplicate in (first, path):
                discovery.problems[str(duplicate)] = f"duplicate case ID {case_id!r} ({first.name} and {path.name}); case left out"
            found[case_id] = None  # type: ignore[assignment]  # neither copy is trusted
            continue
        found[case_id] = path
    return {case: path for case, path in found.items() if path is not None}


def discover_cases(root: str | Path, require_masks: bool = True) -> Discovery:
    """Pair the images and masks under ``root`` by case ID.

    Args:
        root: dataset folder in one of the layouts above.
        require_masks: if True an image without a mask is a problem; if False (prediction)
            images are returned alone with ``mask_path=None``.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds neither layout.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: dataset folder does not exist")
    discovery = Discovery()
    for image_dir_name, mask_dir_name, image_pattern, mask_pattern in LAYOUTS.values():
        image_dir = _subfolder(root, image_dir_name)
        if image_dir is None:
            continue
        mask_dir = _subfolder(root, mask_dir_name)
        images = _index_folder(image_dir, image_pattern, discovery, series_folders=True)
        masks = _index_folder(mask_dir, mask_pattern, discovery) if mask_dir else {}
        for case_id in sorted(images):
            if case_id in masks:
                discovery.cases.append(CaseRecord(case_id, images[case_id], masks[case_id]))
            elif require_masks:
                discovery.problems[str(images[case_id])] = "image without a mask"
            else:
                discovery.cases.append(CaseRecord(case_id, images[case_id]))
        for case_id in sorted(set(masks) - set(images)):
            discovery.problems[str(masks[case_id])] = "mask without an image"
        break
    else:
        wanted = " or ".join(f"'{a}/' + '{b}/'" for a, b, *_ in LAYOUTS.values())
        raise FileNotFoundError(f"{root}: no dataset layout found (expected {wanted})")
    return discovery
