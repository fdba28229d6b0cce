"""Synthetic head CTA with brain masks, for training and testing without patient data.

Anatomy is analytic (ellipsoids, offset surfaces, spline tubes) in a head-centred frame, the
cranial cavity optionally a real brain's (the MNI152 atlas, ``cavity_prior``); each output voxel is mapped through a randomized scanner geometry and head pose into that
frame, labelled, converted to HU, blurred, made noisy and stored as a scanner would.
See docs/synthetic_data.md.
"""

from .config import SyntheticConfig, SyntheticMixture
from .dataset import case_paths, case_seed, synthesize_dataset, write_case
from .generate import SyntheticCase, generate_case
from .tissues import HU_RANGES, LABEL_NAMES, Tissue

__all__ = [
    "HU_RANGES",
    "LABEL_NAMES",
    "SyntheticCase",
    "SyntheticConfig",
    "SyntheticMixture",
    "Tissue",
    "case_paths",
    "case_seed",
    "generate_case",
    "synthesize_dataset",
    "write_case",
]
