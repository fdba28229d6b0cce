"""Specification of the acquisition phenomena of issue 12: contrast phase, sharp kernel, skull defects, motion, beam hardening.

Each phenomenon is drawn from its own random stream, so a case with it switched on has the
same anatomy, pose and noise as the case without it; most tests compare such pairs.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields, replace

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brainseg.synthetic import SyntheticConfig, Tissue, case_seed, generate_case
from brainseg.synthetic.physics import Imaging, Renderer

BONE = (Tissue.CORTICAL_BONE, Tissue.CANCELLOUS_BONE)
VESSELS = (Tissue.ARTERY, Tissue.VEIN)
# Small, fast cases of the whole head at 1.5 mm pixels and 3 mm slices.
SMALL = replace(SyntheticConfig(), shape_in_plane=(128, 128), spacing_in_plane_mm=(1.5, 1.5),
                reconstruction_fov_mm=(190.0, 200.0), slice_spacing_mm=(3.0, 3.0), fov_kinds=(("head", 1.0),),
                circular_fov_prob=0.0, dental_metal_prob=0.0, hemorrhage_prob=0.0, subdural_prob=0.0, infarct_prob=0.0)
QUIET = replace(SMALL, noise_hu=(0.0, 0.0), skull_base_streak_prob=0.0)

# sha256 of image, mask, labels and affine of default-preset cases, recorded before the phenomena
# were added (numpy 2.4, x86-64); a numpy that rounds float32 differently needs them re-recorded.
DEFAULT_HASHES = {0: "44675190e8aa3cc7", 1: "e53f2ddbd31bf6f7", 2: "9a118226e1c2223f"}
# wide() before issue 12: every range of it may only have grown since.
OLD_WIDE = {
    "shape_in_plane": (96, 512), "spacing_in_plane_mm": (0.3, 2.2), "reconstruction_fov_mm": (150.0, 400.0),
    "slice_spacing_mm": (0.5, 6.0), "slice_count": (24, 400), "slice_thickness_ratio": (1.0, 1.3),
    "psf_fwhm_mm": (0.5, 0.9), "fov_kinds": (("head", 0.5), ("head_neck", 0.3), ("truncated_vertex", 0.2)),
    "orientations": ("LPS", "LPI", "RAS", "RAI", "LAS", "RPI", "PLS", "ASR", "SAL", "ILP", "IRA"),
    "circular_fov_prob": 0.5,
    "rescale_options": ((1.0, -1024.0), (1.0, 0.0), (1.0, -1000.0), (0.5, -1024.0), (2.0, -2048.0)),
    "gantry_tilt_prob": 0.4, "gantry_tilt_deg": 25.0, "rotation_deg": (30.0, 20.0, 25.0),
    "translation_mm": (35.0, 35.0, 25.0), "head_scale": (0.8, 1.15), "skull_thickness_mm": (3.5, 10.0),
    "atrophy": (0.0, 1.0), "vessel_tortuosity": (0.0, 1.0), "shoulders_prob": 0.8, "table_prob": 0.8,
    "arterial_hu": (100.0, 600.0), "venous_fraction": (0.1, 1.0), "noise_hu": (2.0, 40.0),
    "skull_base_streak_prob": 0.5, "dental_metal_prob": 0.3, "hemorrhage_prob": 0.25, "subdural_prob": 0.15,
    "infarct_prob": 0.25,
}
PHENOMENON_PROBS = ("sharp_kernel_prob", "motion_prob", "beam_hardening_prob", "craniectomy_prob", "burr_hole_prob")


def _digest(case) -> str:
    h = hashlib.sha256()
    for a in (case.image, case.mask, case.labels, case.affine):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def acquisition_order(case, volume: np.ndarray) -> np.ndarray:
    """``volume`` (storage order) as (i, j, k) in the acquisition's LPS order: axis 2 runs over the slices."""
    transform = nib.orientations.ornt_transform(nib.orientations.io_orientation(case.affine),
                                                nib.orientations.axcodes2ornt("LPS"))
    return nib.orientations.apply_orientation(volume, transform)


# --- presets ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", sorted(DEFAULT_HASHES))
def test_default_preset_cases_are_bit_identical_to_before_the_phenomena(seed):
    assert _digest(generate_case(seed, return_labels=True)) == DEFAULT_HASHES[seed]


@pytest.mark.parametrize("preset", ["default", "realistic"])
def test_default_and_realistic_switch_every_phenomenon_off(preset):
    config = SyntheticConfig.preset(preset)
    assert config.phase_probs == (("arterial", 1.0),)
    assert all(getattr(config, name) == 0.0 for name in PHENOMENON_PROBS)


def _widens(new, old) -> bool:
    """Whether ``new`` covers ``old``: a (low, high) range, a max, a probability or a list of options."""
    if isinstance(old, tuple) and old and isinstance(old[0], (str, tuple)):
        return set(old) <= set(new)  # options: names, (slope, intercept), (fov kind, probability)
    if isinstance(old, tuple) and len(old) == 2 and old[0] <= old[1] and not isinstance(old[0], str):
        return new[0] <= old[0] and new[1] >= old[1]  # (low, high)
    if isinstance(old, tuple):
        return all(n >= o for n, o in zip(new, old))  # per-axis maxima
    return new >= old


def test_wide_only_widens_its_old_ranges_and_switches_the_phenomena_on():
    wide = SyntheticConfig.wide()
    assert set(OLD_WIDE) <= {f.name for f in fields(SyntheticConfig)}
    for name, old in OLD_WIDE.items():
        assert _widens(getattr(wide, name), old), name
    assert all(0.0 < getattr(wide, name) <= 0.3 for name in PHENOMENON_PROBS)
    assert {p for p, _ in wide.phase_probs} == {"arterial", "non_contrast", "venous", "delayed"}


def test_varied_is_wide_acquisitions_with_every_phenomenon_on():
    varied, wide = SyntheticConfig.varied(), SyntheticConfig.wide()
    assert SyntheticConfig.preset("varied") == varied
    for name in OLD_WIDE:
        assert getattr(varied, name) == getattr(wide, name), name
    # The ranges issue 12 asks the training distribution to span.
    assert varied.shape_in_plane == (96, 512) and varied.spacing_in_plane_mm == (0.3, 2.2)
    assert varied.slice_spacing_mm == (0.5, 6.0) and varied.reconstruction_fov_mm[1] == 400.0
    assert varied.gantry_tilt_deg == 25.0 and varied.head_scale == (0.8, 1.15) and varied.noise_hu[1] == 40.0
    assert all(getattr(varied, name) >= getattr(wide, name) > 0 for name in PHENOMENON_PROBS)
    probs = dict(varied.phase_probs)
    assert set(probs) == {"arterial", "non_contrast", "venous", "delayed"} and abs(sum(probs.values()) - 1) < 1e-9
    with pytest.raises(ValueError, match="default, realistic, wide, varied, varied_defects, mixed, mixed_defects"):
        SyntheticConfig.preset("everything")


def test_the_mixed_training_data_draws_each_case_from_default_or_varied_by_its_own_seed():
    mixture = SyntheticConfig.preset("mixed")
    picks = [mixture.pick(case_seed(0, i)) for i in range(60)]
    assert set(picks) == {SyntheticConfig(), SyntheticConfig.varied()}
    assert 20 <= picks.count(SyntheticConfig()) <= 40  # half and half
    seed = next(case_seed(0, i) for i, pick in enumerate(picks) if pick == SyntheticConfig.varied())
    mixed, varied = generate_case(seed, mixture), generate_case(seed, SyntheticConfig.varied())
    assert np.array_equal(mixed.image, varied.image) and np.array_equal(mixed.mask, varied.mask)  # the case of the preset it drew


def test_the_3d_recipes_data_draws_the_same_cases_with_craniectomies_over_sampled():
    mixed, defects = SyntheticConfig.preset("mixed"), SyntheticConfig.preset("mixed_defects")
    seeds = [case_seed(0, i) for i in range(60)]
    assert [mixed.pick(s) == SyntheticConfig() for s in seeds] == [defects.pick(s) == SyntheticConfig() for s in seeds]
    assert SyntheticConfig.preset("varied_defects") == replace(SyntheticConfig.varied(), craniectomy_prob=0.25)
    assert {part for part, _ in defects.parts} == {SyntheticConfig(), SyntheticConfig.varied_defects()}


def test_a_varied_case_is_reproducible():
    a, b = generate_case(7, SyntheticConfig.varied()), generate_case(7, SyntheticConfig.varied())
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask) and a.meta == b.meta


# --- contrast phase ---------------------------------------------------------------------


def _vessel_medians(phase: str, seed: int = 4) -> tuple[float, float, dict]:
    case = generate_case(seed, replace(SMALL, phase_probs=((phase, 1.0),)), return_labels=True)
    hu = case.hu
    return float(np.median(hu[case.labels == Tissue.ARTERY])), float(np.median(hu[case.labels == Tissue.VEIN])), case.meta


def test_contrast_phases_set_arteries_and_veins_as_scans_show_them():
    art_a, vein_a, meta = _vessel_medians("arterial")
    assert meta["phase"] == "arterial" and art_a > vein_a
    art, vein, meta = _vessel_medians("non_contrast")
    assert meta["phase"] == "non_contrast"
    assert 30 <= art <= 65 and 30 <= vein <= 65  # unenhanced blood, blurred with its surroundings
    assert 38 <= meta["arterial_hu"] <= 55
    art, vein, _ = _vessel_medians("venous")
    assert vein > art + 20  # sinuses brighter than arteries
    art, vein, _ = _vessel_medians("delayed")
    assert 40 < art < vein < art_a  # both weakly enhanced, arteries washed out most


def test_phase_does_not_change_anything_but_the_vessels_and_dura():
    a = generate_case(5, QUIET, return_labels=True)
    b = generate_case(5, replace(QUIET, phase_probs=(("venous", 1.0),)), return_labels=True)
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.mask, b.mask)
    far = ~ndimage.binary_dilation(np.isin(a.labels, (*VESSELS, Tissue.DURA)), iterations=4)
    assert np.array_equal(a.image[far], b.image[far])


# --- sharp kernel -----------------------------------------------------------------------


def test_sharp_kernel_rendering_is_the_psf_then_an_unsharp_mask():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, (2, 40, 36), dtype=np.uint8)
    lut = rng.uniform(-1000, 2000, 256).astype(np.float32)
    imaging = Imaging(lut, noise_hu=0.0, psf_sigma_vox=0.6, subslices=1, circular_fov=False, slope=1.0,
                      intercept=-1024.0, padding_hu=-1024.0, sharpen=0.8, sharpen_sigma_vox=1.2)
    hu = Renderer(imaging, (2, 40, 36))(labels, np.ones(2), rng)
    expected = np.stack([ndimage.convolve(lut[s].astype(np.float64), imaging.kernel_2d(), mode="nearest") for s in labels])
    inner = (slice(None), slice(8, -8), slice(8, -8))  # away from the edges, where padding differs
    np.testing.assert_allclose(hu[inner], expected[inner], atol=0.05, rtol=1e-4)


@pytest.mark.parametrize("sharpen", [0.0, 1.0])
def test_renderer_noise_has_the_case_standard_deviation_after_the_kernel(sharpen):
    imaging = Imaging(np.zeros(256, np.float32), noise_hu=10.0, psf_sigma_vox=0.5, subslices=1, circular_fov=False,
                      slope=1.0, intercept=-1024.0, padding_hu=-1024.0, sharpen=sharpen, sharpen_sigma_vox=1.5)
    hu = Renderer(imaging, (4, 128, 128))(np.zeros((4, 128, 128), np.uint8), np.ones(4), np.random.default_rng(1))
    assert np.std(hu[:, 10:-10, 10:-10]) == pytest.approx(10.0, rel=0.05)


def _lag1_correlation(noise: np.ndarray, region: np.ndarray) -> float:
    """Correlation of neighbouring pixels along a row, inside ``region``: how coarse the grain is."""
    both = region[:-1] & region[1:]
    return float(np.corrcoef(noise[:-1][both], noise[1:][both])[0, 1])


def test_sharp_kernel_enhances_the_skull_edges_and_makes_noise_stronger_and_finer():
    soft_clean = generate_case(3, QUIET, return_labels=True)
    sharp_clean = generate_case(3, replace(QUIET, sharp_kernel_prob=1.0))
    noisy = replace(SMALL, skull_base_streak_prob=0.0, noise_hu=(8.0, 8.0))
    soft, sharp = generate_case(3, noisy), generate_case(3, replace(noisy, sharp_kernel_prob=1.0))
    assert (soft_clean.meta["kernel"], sharp.meta["kernel"]) == ("soft", "sharp")
    labels = acquisition_order(soft_clean, soft_clean.labels)
    bone = np.isin(labels, BONE)
    edge = ndimage.binary_dilation(bone, iterations=2) & ~ndimage.binary_erosion(bone, iterations=2)

    def in_plane_high_frequency_energy(case) -> float:
        hu = acquisition_order(case, case.hu)
        laplacian = sum(ndimage.correlate1d(hu, [-1.0, 2.0, -1.0], axis=a) for a in (0, 1))
        return float(np.mean(laplacian[edge] ** 2))

    assert in_plane_high_frequency_energy(sharp_clean) > 1.5 * in_plane_high_frequency_energy(soft_clean)
    # Undershoot: the CSF along the inner table reads darker than with a soft kernel.
    rim = ndimage.binary_dilation(bone, iterations=1) & (labels == Tissue.CSF)
    soft_rim, sharp_rim = acquisition_order(soft_clean, soft_clean.hu)[rim], acquisition_order(sharp_clean, sharp_clean.hu)[rim]
    assert np.percentile(sharp_rim, 5) < np.percentile(soft_rim, 5) - 50
    brain = np.isin(labels, (Tissue.GRAY_MATTER, Tissue.WHITE_MATTER))
    noise_soft = acquisition_order(soft, soft.hu - soft_clean.hu)
    noise_sharp = acquisition_order(sharp, sharp.hu - sharp_clean.hu)
    assert np.std(noise_sharp[brain]) == pytest.approx(sharp.meta["noise_hu"], rel=0.2)
    assert sharp.meta["noise_hu"] >= 1.5 * soft.meta["noise_hu"]
    assert _lag1_correlation(noise_sharp, brain) < _lag1_correlation(noise_soft, brain) - 0.1


# --- skull defects ----------------------------------------------------------------------


def _bone_removed(config_on, seed: int = 6):
    off = generate_case(seed, QUIET, return_labels=True)
    on = generate_case(seed, config_on, return_labels=True)
    removed = np.isin(off.labels, BONE) & ~np.isin(on.labels, BONE)
    return off, on, removed, float(np.prod(nib.affines.voxel_sizes(off.affine)))


def test_a_circular_reconstruction_field_holds_no_brain_outside_it():
    """Outside the circle the scanner writes padding: no data there, so no brain in the mask either."""
    from brainseg.synthetic.render import _outside_circle

    config = replace(SyntheticConfig(), shape_in_plane=(96, 96), slice_count=(30, 40),
                     reconstruction_fov_mm=(150.0, 150.0), circular_fov_prob=1.0)  # smaller than a brain
    case = generate_case(5, config)
    assert case.meta["circular_fov"]
    image, mask = acquisition_order(case, case.image), acquisition_order(case, case.mask) > 0
    outside = _outside_circle(image.shape[1::-1]).T
    rim = outside ^ ndimage.binary_dilation(outside, iterations=2)  # the two pixels just inside the circle
    assert mask[rim].any()  # the brain reaches the circle: the field cuts it
    assert not mask[outside].any()
    assert np.unique(image[outside]).size == 1  # the padding value, the same everywhere outside


def test_craniectomy_removes_the_flap_and_the_mask_stays_the_closed_cranial_cavity():
    off, on, removed, voxel_mm3 = _bone_removed(replace(QUIET, craniectomy_prob=1.0, craniectomy_bulge_mm=(0.0, 0.0)))
    assert [d["kind"] for d in on.meta["skull_defects"]] == ["craniectomy"]
    assert removed.sum() * voxel_mm3 > 20_000  # a flap of ~9-15 cm: tens of cm^3 of bone
    assert np.isin(on.labels[removed], (Tissue.SOFT_TISSUE, Tissue.FAT)).all()  # the scalp lies on the dura
    assert not (np.isin(on.labels, BONE) & ~np.isin(off.labels, BONE)).any()
    # Without bulging the dura follows the old inner table: the mask does not change at all.
    assert np.array_equal(on.mask, off.mask)
    assert ndimage.label(on.mask)[1] == 1 and np.array_equal(ndimage.binary_fill_holes(on.mask), on.mask.astype(bool))


def test_brain_bulging_through_a_craniectomy_stays_in_the_mask_and_under_the_scalp():
    off, on, removed, _ = _bone_removed(replace(QUIET, craniectomy_prob=1.0, craniectomy_bulge_mm=(8.0, 8.0)))
    grown = on.mask.astype(bool) & ~off.mask.astype(bool)
    assert not (off.mask.astype(bool) & ~on.mask.astype(bool)).any()  # it only bulges outward
    assert grown.sum() > 1000
    spacing = nib.affines.voxel_sizes(on.affine)
    from_flap = ndimage.distance_transform_edt(~removed, sampling=spacing)
    assert from_flap[grown].max() <= 8.0 + np.linalg.norm(spacing)  # through the opening, by at most the bulge
    assert not np.isin(on.labels[on.mask.astype(bool)], BONE).any()
    assert ndimage.label(on.mask)[1] == 1 and np.array_equal(ndimage.binary_fill_holes(on.mask), on.mask.astype(bool))
    def air_next_to_the_mask(case):
        return ndimage.binary_dilation(case.mask) & ~case.mask.astype(bool) & (case.labels == Tissue.AIR)

    assert np.array_equal(air_next_to_the_mask(on), air_next_to_the_mask(off))  # scalp over the bulge (air only at sinuses)


def test_burr_holes_are_small_round_defects_that_leave_the_mask_unchanged():
    off, on, removed, voxel_mm3 = _bone_removed(replace(QUIET, burr_hole_prob=1.0))
    holes = on.meta["skull_defects"]
    assert 1 <= len(holes) <= 3 and {d["kind"] for d in holes} == {"burr_hole"}
    assert all(10 <= d["diameter_mm"] <= 16 for d in holes)
    assert 0 < removed.sum() * voxel_mm3 < len(holes) * 3000
    assert ndimage.label(removed)[1] >= 1
    assert np.array_equal(on.mask, off.mask)


# --- motion -----------------------------------------------------------------------------


def _inside_bone_fraction(hu: np.ndarray, mask: np.ndarray, vessels: np.ndarray) -> float:
    """Share of a slice's mask that reads as bone (> 300 HU), vessels aside."""
    m = mask & ~vessels
    return float((hu[m] > 300).mean()) if m.sum() > 200 else 0.0


def test_motion_moves_slice_groups_and_the_mask_moves_with_the_image():
    moving = replace(QUIET, motion_prob=1.0, motion_max_mm=6.0, motion_max_deg=4.0)
    still, moved = generate_case(2, QUIET, return_labels=True), generate_case(2, moving, return_labels=True)
    jumps = moved.meta["motion"]["jumps_at_slice"]
    assert 1 <= len(jumps) <= 3
    image_s, image_m = acquisition_order(still, still.hu), acquisition_order(moved, moved.hu)
    mask_s, mask_m = (acquisition_order(c, c.mask).astype(bool) for c in (still, moved))
    vessels = acquisition_order(moved, np.isin(moved.labels, VESSELS)) | acquisition_order(still, np.isin(still.labels, VESSELS))
    first = jumps[0]
    assert np.array_equal(image_s[..., : first - 2], image_m[..., : first - 2])  # before the patient moved
    assert np.array_equal(mask_s[..., :first], mask_m[..., :first])
    assert not np.array_equal(mask_s[..., first:], mask_m[..., first:])
    dz = moved.meta["spacing_mm"][2]
    away = [k for k in range(first, image_m.shape[2]) if min(abs(k - j + 0.5) for j in jumps) * dz > 5]
    aligned = [_inside_bone_fraction(image_m[..., k], mask_m[..., k], vessels[..., k]) for k in away]
    misaligned = [_inside_bone_fraction(image_m[..., k], mask_s[..., k], vessels[..., k]) for k in away]
    assert max(aligned) < 0.005  # every moved slice: its mask lies inside its skull
    assert max(misaligned) > 0.02  # the still head's mask would not


def test_motion_ghosts_the_slices_acquired_while_the_head_moved():
    moving = replace(QUIET, motion_prob=1.0, motion_max_mm=6.0, motion_max_deg=4.0)
    still, moved = generate_case(2, QUIET), generate_case(2, moving)
    image_s, image_m = acquisition_order(still, still.hu), acquisition_order(moved, moved.hu)
    k = moved.meta["motion"]["jumps_at_slice"][0] - 1  # the last slice at the first pose
    # Its anatomy and mask are the still head's; the head at its next pose shows through as a ghost, with streaks.
    assert np.array_equal(acquisition_order(still, still.mask)[..., k], acquisition_order(moved, moved.mask)[..., k])
    assert np.abs(image_m[..., k] - image_s[..., k]).max() > 50
    assert np.array_equal(image_m[..., : k - 3], image_s[..., : k - 3])  # 3 mm slices: ghosts reach <= 4 mm


# --- beam hardening ---------------------------------------------------------------------


def test_beam_hardening_darkens_the_skull_base_and_nothing_above_it():
    off = generate_case(1, QUIET)
    on = generate_case(1, replace(QUIET, beam_hardening_prob=1.0, beam_hardening_hu=(40.0, 40.0)))
    assert on.meta["beam_hardening_hu"] == 40.0
    diff = acquisition_order(on, on.hu - off.hu)
    mask = acquisition_order(on, on.mask).astype(bool)
    assert diff.max() <= 1.0  # it only darkens (up to rounding)
    changed = np.flatnonzero(np.abs(diff).max(axis=(0, 1)) > 1)
    brain_slices = np.flatnonzero(mask.any(axis=(0, 1)))
    assert changed.size and changed.max() < brain_slices[0] + 0.5 * len(brain_slices)  # the lower half only
    assert diff[mask].min() < -20


# --- head proportions -------------------------------------------------------------------


def _brain_extent_mm(case) -> np.ndarray:
    """Extent of the brain mask along R, A, S in world mm."""
    points = nib.affines.apply_affine(case.affine, np.argwhere(case.mask))
    return np.ptp(points, axis=0)


def test_taller_heads_stretch_the_brain_along_s_only_and_are_drawn_from_their_own_stream():
    plain = replace(QUIET, rotation_deg=(0.0, 0.0, 0.0), gantry_tilt_prob=0.0)
    short = generate_case(5, plain)
    tall = generate_case(5, replace(plain, head_height_ratio=(1.25, 1.25)))
    assert short.meta["head_height_ratio"] == 1.0 and tall.meta["head_height_ratio"] == 1.25
    assert tall.meta["head_size"][:2] == short.meta["head_size"][:2]  # the other draws are the same
    assert tall.meta["head_size"][2] == pytest.approx(1.25 * short.meta["head_size"][2], rel=1e-3)
    ratio = _brain_extent_mm(tall) / _brain_extent_mm(short)
    assert ratio[2] == pytest.approx(1.25, abs=0.06)  # 3 mm slices
    assert ratio[:2] == pytest.approx([1.0, 1.0], abs=0.03)


def test_wide_heads_reach_the_proportions_of_a_real_brain_and_default_heads_keep_theirs():
    assert SyntheticConfig().head_height_ratio == (1.0, 1.0)  # the default preset's cases are unchanged
    low, high = SyntheticConfig.wide().head_height_ratio
    assert low <= 1.0 and high >= 1.2  # the MNI152 brain is 1.18-1.20x as tall (docs/synthetic_data.md)
    assert SyntheticConfig.varied().head_height_ratio == (low, high)
