"""Specification of the atlas cranial cavity: the MNI152 brain's vault and skull base for synthetic heads."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brainseg.synthetic import SyntheticConfig, Tissue, generate_case
from brainseg.synthetic.cavity_prior import ATLAS_HEIGHT_RATIO, PRIOR_FILE, load_prior

from .test_phenomena import QUIET

BONE = (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE)
UPRIGHT = replace(QUIET, rotation_deg=(0.0, 0.0, 0.0), gantry_tilt_prob=0.0, orientations=("RAS",))


def test_the_shipped_cavity_has_a_real_brains_proportions_and_is_small():
    prior = load_prior()
    (x0, y0, z0), (x1, y1, z1) = prior.box
    length = y1 - y0
    assert length == pytest.approx(168, abs=3)  # the analytic cavity's length: head sizes keep their meaning
    assert (x1 - x0) / length == pytest.approx(0.79, abs=0.03)  # MNI152: width / length 0.79
    assert (z1 - z0) / length == pytest.approx(0.81, abs=0.04)  # vertex to posterior fossa / length 0.81
    assert prior.distance(0.0, 0.0, 30.0) < -30 and prior.distance(0.0, 0.0, z1 + 10) > 5
    # The skull base steps down from the anterior to the middle and posterior fossae.
    anterior, middle, posterior = (float(prior.floor(x, y)) for x, y in ((15, 55), (40, 10), (25, -60)))
    assert anterior > middle + 8 and middle > posterior + 5
    assert prior.foramen == pytest.approx((0.0, -30.0), abs=5)  # where the analytic spine leaves the skull
    assert PRIOR_FILE.stat().st_size < 40_000


def test_an_atlas_case_changes_the_cavity_only_and_is_drawn_from_its_own_stream():
    analytic = generate_case(5, UPRIGHT)
    atlas = generate_case(5, replace(UPRIGHT, atlas_cavity_prob=1.0))
    assert not analytic.meta["atlas_cavity"] and atlas.meta["atlas_cavity"]
    assert atlas.meta["head_size"][:2] == analytic.meta["head_size"][:2]  # the other draws are the same
    assert atlas.meta["head_size"][2] == pytest.approx(analytic.meta["head_size"][2] / ATLAS_HEIGHT_RATIO, rel=1e-3)
    assert atlas.image.shape[:2] == analytic.image.shape[:2]
    for case in (analytic, atlas):  # a whole-head field of view reaches over the vertex, the atlas's taller one too
        assert not case.mask[:, :, -1].any() and not case.mask[:, :, 0].any()


def test_an_atlas_case_has_the_atlas_proportions_once_its_height_is_real():
    case = generate_case(6, replace(UPRIGHT, atlas_cavity_prob=1.0, head_height_ratio=(ATLAS_HEIGHT_RATIO,) * 2))
    extent = np.ptp(nib.affines.apply_affine(case.affine, np.argwhere(case.mask)), axis=0)
    (x0, y0, z0), (x1, y1, z1) = load_prior().box
    assert extent[2] / extent[1] == pytest.approx((z1 - z0) / (y1 - y0), abs=0.05)


def test_the_atlas_cavity_is_closed_by_bone_under_the_scalp():
    case = generate_case(7, replace(UPRIGHT, atlas_cavity_prob=1.0, fov_kinds=(("head", 1.0),)), return_labels=True)
    mask, labels = case.mask.astype(bool), case.labels
    upper = np.zeros_like(mask)
    top = np.flatnonzero(mask.any(axis=(0, 1)))
    upper[:, :, (top[0] + top[-1]) // 2 :] = True  # the vault: no skull base foramina
    shell = ndimage.binary_dilation(mask, iterations=2) & ~mask & upper
    assert np.isin(labels[shell], BONE).mean() > 0.9
    bone = np.isin(labels, BONE) & upper
    assert (ndimage.binary_dilation(bone) & (labels == Tissue.AIR)).sum() < 0.005 * bone.sum()  # scalp over it


def test_the_wide_presets_draw_the_atlas_cavity_for_half_their_cases_and_default_never():
    assert SyntheticConfig().atlas_cavity_prob == 0.0 and SyntheticConfig.realistic().atlas_cavity_prob == 0.0
    assert SyntheticConfig.wide().atlas_cavity_prob == SyntheticConfig.varied().atlas_cavity_prob == 0.5
