"""Tissue labels and their CT numbers (HU), drawn per case from literature ranges.

The ranges are documented with sources in docs/synthetic_data.md; tests check generated
images against this table.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Tissue(IntEnum):
    """Label values of the tissue map returned with ``return_labels=True``."""

    AIR = 0
    FAT = 1
    SOFT_TISSUE = 2  # skin, muscle, glands, mucosa
    CORTICAL_BONE = 3
    CANCELLOUS_BONE = 4  # diploe, vertebral bodies
    CSF = 5
    GRAY_MATTER = 6
    WHITE_MATTER = 7
    ARTERY = 8  # contrast-filled
    VEIN = 9  # dural sinuses, jugular veins
    DURA = 10  # falx, tentorium
    EYE = 11
    LENS = 12
    TEETH = 13
    METAL = 14  # dental fillings
    HEMORRHAGE = 15
    INFARCT = 16
    SPINAL_CORD = 17
    TABLE = 18  # scanner table and head holder shell
    PADDING = 19  # foam cushion


# (low, high) HU per tissue; a case draws one value per tissue inside the range.
# Contrast-dependent tissues (ARTERY, VEIN) are drawn from the config's bolus ranges instead.
HU_RANGES: dict[Tissue, tuple[float, float]] = {
    Tissue.AIR: (-1000.0, -1000.0),
    Tissue.FAT: (-120.0, -80.0),
    Tissue.SOFT_TISSUE: (35.0, 60.0),
    Tissue.CORTICAL_BONE: (1200.0, 1900.0),
    Tissue.CANCELLOUS_BONE: (250.0, 600.0),
    Tissue.CSF: (0.0, 12.0),
    Tissue.GRAY_MATTER: (36.0, 44.0),
    Tissue.WHITE_MATTER: (24.0, 31.0),
    Tissue.ARTERY: (150.0, 500.0),
    Tissue.VEIN: (60.0, 450.0),
    Tissue.DURA: (45.0, 75.0),
    Tissue.EYE: (2.0, 15.0),
    Tissue.LENS: (90.0, 120.0),
    Tissue.TEETH: (2000.0, 3000.0),
    Tissue.METAL: (3071.0, 3071.0),
    Tissue.HEMORRHAGE: (55.0, 85.0),
    Tissue.INFARCT: (12.0, 22.0),
    Tissue.SPINAL_CORD: (30.0, 40.0),
    Tissue.TABLE: (150.0, 400.0),
    Tissue.PADDING: (-950.0, -850.0),
}

LABEL_NAMES: dict[int, str] = {int(t): t.name.lower() for t in Tissue}


def sample_tissue_hu(rng: np.random.Generator, arterial_hu: tuple[float, float], venous_fraction: tuple[float, float]) -> np.ndarray:
    """Per-case lookup table label -> HU (float32, 256 entries so any uint8 label indexes it)."""
    lut = np.zeros(256, np.float32)
    for tissue, (low, high) in HU_RANGES.items():
        lut[tissue] = rng.uniform(low, high)
    artery = rng.uniform(*arterial_hu)
    lut[Tissue.ARTERY] = artery
    # Veins fill later than arteries: early in the bolus they are barely enhanced.
    blood = 45.0
    lut[Tissue.VEIN] = blood + rng.uniform(*venous_fraction) * (artery - blood)
    # Gray/white contrast is never inverted.
    lut[Tissue.GRAY_MATTER] = max(lut[Tissue.GRAY_MATTER], lut[Tissue.WHITE_MATTER] + 6.0)
    return lut


# Contrast phases besides the arterial one the table above describes; see docs/synthetic_data.md.
PHASES = ("arterial", "non_contrast", "venous", "delayed")
UNENHANCED_BLOOD_HU = (38.0, 55.0)


def contrast_phase(lut: np.ndarray, phase: str, rng: np.random.Generator, peak_hu: tuple[float, float]) -> np.ndarray:
    """The lookup table with vessel (and dura) values of ``phase``; ``peak_hu`` is the bolus peak range.

    arterial: unchanged. non_contrast: arteries and veins at unenhanced blood. venous: the
    sinuses near the peak, arteries washed out to 40-80% of it. delayed: blood pool in
    equilibrium, veins 20-45% of the peak and arteries a little below them. After the
    arterial phase the dura (falx, tentorium) enhances too.
    """
    if phase not in PHASES:
        raise ValueError(f"unknown contrast phase {phase!r}; expected one of {', '.join(PHASES)}")
    if phase == "arterial":
        return lut
    out = lut.copy()
    blood = rng.uniform(*UNENHANCED_BLOOD_HU)
    if phase == "non_contrast":
        out[Tissue.ARTERY] = blood
        out[Tissue.VEIN] = blood + rng.uniform(-3.0, 3.0)
        return out
    peak = rng.uniform(*peak_hu)
    vein = peak if phase == "venous" else blood + rng.uniform(0.2, 0.45) * (peak - blood)
    share = rng.uniform(0.4, 0.8) if phase == "venous" else rng.uniform(0.75, 0.95)
    out[Tissue.VEIN] = vein
    out[Tissue.ARTERY] = blood + share * (vein - blood)
    out[Tissue.DURA] += rng.uniform(10.0, 40.0)
    return out
