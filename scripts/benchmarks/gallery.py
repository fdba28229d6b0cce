"""The galleries of synthetic cases in the docs (``python scripts/render_gallery.py`` -> docs/gallery.png; pillow only).

``phenomena=true`` adds a row per acquisition phenomenon of the varied preset (docs/gallery_varied.png).

Each row is one case: axial, coronal and sagittal slices through the brain centre and a
maximum intensity projection along S, reoriented to RAS and shown as a radiologist would
(patient's right on the left, anterior/superior up), with the mask outline in colour.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

from brainseg.errors import ConfigError
from brainseg.synthetic import SyntheticConfig, generate_case

PANEL = 200  # pixels per panel side
# (level, width) in HU. The MIP uses the training window [-100, 1900]: vessels and bone apart.
WINDOWS = {"brain": (40.0, 120.0), "cta": (150.0, 700.0), "mip": (900.0, 2000.0)}
COLUMNS = (("axial", "brain"), ("coronal", "cta"), ("sagittal", "brain"), ("MIP S", "mip"))
# docs/gallery_varied.png: one row per acquisition phenomenon of the varied preset, on one scanner
# geometry (256 x 0.9 mm pixels, 1.5 mm slices): title -> (config changes, axial slice height as a
# fraction of the mask's extent, bottom to top; None: its centre).
PHENOMENA_BASE = replace(SyntheticConfig(), shape_in_plane=(256, 256), spacing_in_plane_mm=(0.9, 0.9),
                         reconstruction_fov_mm=(200.0, 240.0), slice_spacing_mm=(1.5, 1.5), slice_count=(40, 200),
                         fov_kinds=(("head", 1.0),))
PHENOMENA = {
    "non-contrast": ({"phase_probs": (("non_contrast", 1.0),)}, None),
    "venous phase": ({"phase_probs": (("venous", 1.0),)}, None),
    "sharp kernel": ({"sharp_kernel_prob": 1.0}, None),
    "craniectomy": ({"craniectomy_prob": 1.0, "craniectomy_bulge_mm": (8.0, 8.0)}, 0.65),
    "motion": ({"motion_prob": 1.0, "motion_max_mm": 6.0, "motion_max_deg": 4.0}, None),
    "beam hardening": ({"beam_hardening_prob": 1.0, "beam_hardening_hu": (45.0, 45.0)}, 0.1),
    "atlas cavity": ({"atlas_cavity_prob": 1.0}, 0.2),
}


def window(hu: np.ndarray, level: float, width: float) -> np.ndarray:
    """HU to uint8 grey levels for a display window."""
    return (np.clip((hu - (level - width / 2)) / width, 0, 1) * 255).astype(np.uint8)


def panel(hu2d: np.ndarray, mask2d: np.ndarray, spacing: tuple[float, float], name: str, win: str) -> Image.Image:
    """One view: rows/columns already in display order; resampled to square pixels, outlined."""
    grey = window(hu2d, *WINDOWS[win])
    rgb = np.repeat(grey[..., None], 3, axis=2)
    edge = mask2d & ~ndimage.binary_erosion(mask2d)
    rgb[edge] = (255, 60, 40)
    height_mm, width_mm = hu2d.shape[0] * spacing[0], hu2d.shape[1] * spacing[1]
    scale = PANEL / max(height_mm, width_mm)
    size = (max(1, round(width_mm * scale)), max(1, round(height_mm * scale)))
    img = Image.fromarray(rgb).resize(size, Image.BILINEAR)
    canvas = Image.new("RGB", (PANEL, PANEL))
    canvas.paste(img, ((PANEL - size[0]) // 2, (PANEL - size[1]) // 2))
    ImageDraw.Draw(canvas).text((4, 2), f"{name} ({win})", fill=(255, 255, 0))
    return canvas


def case_row(seed: int, preset: str, config: SyntheticConfig | None = None, axial_at: float | None = None) -> Image.Image:
    """Four views of one generated case (of ``preset``, or of ``config`` titled ``preset``).

    The axial view cuts through the mask's centre, or at ``axial_at`` of its extent from below.
    """
    case = generate_case(seed, config or SyntheticConfig.preset(preset))
    ras = nib.as_closest_canonical(nib.Nifti1Image(case.hu, case.affine))
    hu = np.asarray(ras.dataobj, np.float32)
    mask = nib.as_closest_canonical(nib.Nifti1Image(case.mask, case.affine)).get_fdata().astype(bool)
    sx, sy, sz = nib.affines.voxel_sizes(ras.affine)
    cx, cy, cz = (int(round(c)) for c in ndimage.center_of_mass(mask)) if mask.any() else np.array(hu.shape) // 2
    if axial_at is not None and mask.any():
        zs = np.flatnonzero(mask.any(axis=(0, 1)))
        cz = int(round(zs[0] + axial_at * (zs[-1] - zs[0])))
    # Display order: patient's right on the left (x reversed), anterior and superior up.
    views = [
        (hu[::-1, ::-1, cz].T, mask[::-1, ::-1, cz].T, (sy, sx)),
        (hu[::-1, cy, ::-1].T, mask[::-1, cy, ::-1].T, (sz, sx)),
        (hu[cx, ::-1, ::-1].T, mask[cx, ::-1, ::-1].T, (sz, sy)),
        (hu.max(axis=2)[::-1, ::-1].T, mask.any(axis=2)[::-1, ::-1].T, (sy, sx)),
    ]
    row = Image.new("RGB", (PANEL * len(views), PANEL))
    for n, ((img, msk, spacing), (name, win)) in enumerate(zip(views, COLUMNS)):
        row.paste(panel(img, msk, spacing, name, win), (n * PANEL, 0))
    m = case.meta
    label = f"{preset} seed {seed}: {case.image.shape} {m['orientation']} {m['fov_kind']} sp {m['spacing_mm'][0]:.2f}/{m['spacing_mm'][2]:.2f}"
    label += "".join(f" {p}" for p in phenomena(m))
    ImageDraw.Draw(row).text((4, PANEL - 12), label, fill=(120, 220, 255))
    return row


def phenomena(meta: dict) -> list[str]:
    """Short names of the acquisition phenomena a case shows (none for an arterial, soft-kernel, still scan)."""
    names = [] if meta.get("phase", "arterial") == "arterial" else [meta["phase"]]
    names += ["sharp"] if meta.get("kernel") == "sharp" else []
    names += [f"BH{meta['beam_hardening_hu']:.0f}"] if meta.get("beam_hardening_hu") else []
    names += ["motion"] if meta.get("motion", {}).get("jumps_at_slice") else []
    names += [d["kind"] for d in meta.get("skull_defects", [])]
    return names


def render_gallery(cfg) -> Path:
    """Draw ``cfg.default_cases`` default-preset, ``cfg.realistic_cases`` realistic-preset and
    ``cfg.varied_cases`` varied-preset cases into ``cfg.out``; returns its path. The keys are
    those of conf/render_gallery.yaml."""
    rows = [case_row(cfg.seed + n, "default") for n in range(cfg.default_cases)]
    rows += [case_row(cfg.seed + 100 + n, "realistic") for n in range(cfg.realistic_cases)]
    rows += [case_row(cfg.seed + 200 + n, "varied") for n in range(cfg.get("varied_cases", 0))]
    if cfg.get("phenomena", False):
        rows += [case_row(cfg.seed + 300, title, replace(PHENOMENA_BASE, **changes), axial_at)
                 for title, (changes, axial_at) in PHENOMENA.items()]
    if not rows:
        raise ConfigError("default_cases, realistic_cases, varied_cases: all 0 and no phenomena, nothing to draw")
    sheet = Image.new("RGB", (rows[0].width, PANEL * len(rows)))
    for n, row in enumerate(rows):
        sheet.paste(row, (0, n * PANEL))
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Grey slices and a few outline colours: a 128-colour palette looks the same at under half the size.
    sheet.quantize(colors=128).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(rows)} cases)")
    return out
