"""The gallery of synthetic cases in the docs (``python scripts/render_gallery.py`` -> docs/gallery.png; pillow only).

Each row is one case: axial, coronal and sagittal slices through the brain centre and a
maximum intensity projection along S, reoriented to RAS and shown as a radiologist would
(patient's right on the left, anterior/superior up), with the mask outline in colour.
"""

from __future__ import annotations

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


def case_row(seed: int, preset: str) -> Image.Image:
    """Four views of one generated case."""
    case = generate_case(seed, SyntheticConfig.preset(preset))
    ras = nib.as_closest_canonical(nib.Nifti1Image(case.hu, case.affine))
    hu = np.asarray(ras.dataobj, np.float32)
    mask = nib.as_closest_canonical(nib.Nifti1Image(case.mask, case.affine)).get_fdata().astype(bool)
    sx, sy, sz = nib.affines.voxel_sizes(ras.affine)
    cx, cy, cz = (int(round(c)) for c in ndimage.center_of_mass(mask)) if mask.any() else np.array(hu.shape) // 2
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
    ImageDraw.Draw(row).text((4, PANEL - 12), label, fill=(120, 220, 255))
    return row


def render_gallery(cfg) -> Path:
    """Draw ``cfg.default_cases`` default-preset and ``cfg.realistic_cases`` realistic-preset cases
    into ``cfg.out``; returns its path. The keys are those of conf/render_gallery.yaml."""
    rows = [case_row(cfg.seed + n, "default") for n in range(cfg.default_cases)]
    rows += [case_row(cfg.seed + 100 + n, "realistic") for n in range(cfg.realistic_cases)]
    if not rows:
        raise ConfigError("default_cases, realistic_cases: both 0, nothing to draw")
    sheet = Image.new("RGB", (rows[0].width, PANEL * len(rows)))
    for n, row in enumerate(rows):
        sheet.paste(row, (0, n * PANEL))
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(rows)} cases)")
    return out
