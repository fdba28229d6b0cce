"""brainseg from Python: brain masks in one call, with the shipped models or your own checkpoint.

    import brainseg
    mask = brainseg.segment("scan.nii.gz")          # nibabel image: uint8 mask on the scan's grid
    result = brainseg.mip("scan.nii.gz")            # the 2-D footprint in the scan's MIP
    result.mask, result.mip, result.probability
    mask2d = brainseg.footprint("scan.nii.gz")      # the 3-D mask's union along S: the better MIP mask
    report = brainseg.predict("study/", "masks/")   # the command line: every case or series, files written

:func:`segment`, :func:`mip` and :func:`footprint` run the command line's per-case step
(:func:`brainseg.inference.predict.predict_case`), :func:`predict` the command line itself
(:func:`brainseg.inference.predict.predict_report`, with conf/predict.yaml's defaults): the same
reading, CT check, prediction, post-processing and plausibility warnings as ``scripts/predict.py``. ``model`` is a shipped model ('volume', 'mip'), ``pretrained:<name>``, or
a checkpoint file. An image is a NIfTI path, a DICOM series or study folder (one axial CT series
in it), or a nibabel image (written to a temporary file and read back like any file).
"""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

from brainseg.errors import BadCaseError, ConfigError
from brainseg.inference.inputs import InputCase, find_inputs
from brainseg.inference.mip import MipPredictor, MipResult
from brainseg.inference.predict import load_predictor, predict_case
from brainseg.inference.volume import VolumePredictor
from brainseg.pretrained import PREFIX

SHIPPED = ("volume", "mip")
# conf/predict.yaml's defaults (tests/test_api.py checks that they agree): an installed package has no conf/.
PREDICT_DEFAULTS = {
    "threshold": None,
    "device": "cpu",
    "on_non_ct": "warn",
    "dicom": {"min_slices": 5, "max_axial_angle_deg": 40},
    "mip_limits": {"area_mm2": [8000, 32000]},
    "mip_postprocessing": {"largest_component": True, "fill_holes": True},  # MipPredictor's default PostProcessing()
    "volumes": {
        "slice_step_mm": None,
        "postprocessing": {"largest_component": True, "fill_holes": True, "closing_mm": 0.0},
        "footprint": True,
        "brain_mip": True,
        "vessel_window": [0, 600],
        "margin_mm": 1.0,
        "slab_mm": None,
        "overlap_mm": 0.0,
    },
}
DEFAULT_OPTIONS = {**PREDICT_DEFAULTS["volumes"], "mip_limits": PREDICT_DEFAULTS["mip_limits"]}


def checkpoint_name(model: str | Path) -> str:
    """``pretrained:<model>`` for a shipped model's short name; anything else as given."""
    return f"{PREFIX}{model}" if str(model) in SHIPPED else str(model)


@lru_cache(maxsize=4)
def _predictor(model: str, device: str, threshold: float | None) -> MipPredictor | VolumePredictor:
    return load_predictor(checkpoint_name(model), device, threshold)


def _input_case(image, folder: Path) -> InputCase:
    """The one case ``image`` names; a nibabel image is first written into ``folder``."""
    if isinstance(image, nib.spatialimages.SpatialImage):
        path = folder / "image.nii"
        nib.save(image if isinstance(image, nib.Nifti1Image) else nib.Nifti1Image.from_image(image), path)
        return InputCase("image", path)
    cases = find_inputs(image)
    found = [case for case in cases if not case.skipped]
    if len(found) != 1:
        listed = ", ".join(case.case_id for case in found) or "none"
        left_out = "; ".join(f"{case.case_id}: {case.skipped}" for case in cases if case.skipped)
        raise ConfigError(
            f"{image}: expected one image, found {len(found)} ({listed})" + (f"; left out: {left_out}" if left_out else "")
            + "; brainseg.predict(folder, output) predicts every one"
        )
    return found[0]


def _run(image, model: str, kind: type, device: str, threshold: float | None, on_non_ct: str, output: str | Path | None,
         then=None):
    """Predict one image with ``model`` (of ``kind``); ``then(prediction, case)`` runs while the input still exists."""
    predictor = _predictor(str(model), device, threshold)
    if not isinstance(predictor, kind):
        wanted = "a 3-D (slice) model: model='volume'" if kind is VolumePredictor else "a MIP model: model='mip'"
        raise ConfigError(f"{model} is not {wanted}")
    options = {**DEFAULT_OPTIONS, "brain_mip": output is not None, "on_non_ct": on_non_ct}
    if output is not None:
        Path(output).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="brainseg-") as folder:
        case = _input_case(image, Path(folder))
        # The results hold their arrays in memory: nothing refers to the temporary folder afterwards.
        prediction = predict_case(predictor, case, Path(output) if output is not None else None, options).prediction
        return then(prediction, case) if then is not None else prediction


def segment(
    image,
    model: str = "volume",
    *,
    device: str = "cpu",
    threshold: float | None = None,
    on_non_ct: str = "warn",
    output: str | Path | None = None,
) -> nib.Nifti1Image:
    """The brain mask of a head CT(A) volume, on its exact voxel grid.

    Args:
        image: a NIfTI path, a DICOM series or study folder holding one axial CT series, or a
            nibabel image.
        model: 'volume' (the shipped 3-D model), ``pretrained:<name>``, or a slice-mode checkpoint file.
        device: where the network runs ('cpu', 'cuda').
        threshold: probability above which a voxel is brain; ``None`` = the model's.
        on_non_ct: 'warn' (log one warning when the input does not look like CT in HU) or 'fail'.
        output: a folder to also write ``<case>_brainmask.nii.gz`` and the skull-free MIP into.

    Returns:
        A uint8 NIfTI image (1 = brain) with the input's shape, sform and qform. Its
        plausibility warnings are logged (``brainseg.inference.predict``).

    Raises:
        BadCaseError: unreadable input, or not CT under ``on_non_ct='fail'``.
        ConfigError: not one image to segment, or not a 3-D model.
    """
    return _run(image, model, VolumePredictor, device, threshold, on_non_ct, output).mask


def mip(
    image,
    model: str = "mip",
    *,
    device: str = "cpu",
    threshold: float | None = None,
    on_non_ct: str = "warn",
    output: str | Path | None = None,
) -> MipResult:
    """The brain's 2-D footprint in a volume's maximum intensity projection along S.

    Args: as :func:`segment`; ``model`` is 'mip', ``pretrained:mip``, or a MIP-mode checkpoint
    file, and ``output`` receives ``<case>_{mask,prob,overlay}.png``. ``image`` may also be a MIP PNG.

    Returns:
        :class:`~brainseg.inference.mip.MipResult`: ``mask`` (uint8 {0, 1}), ``probability``,
        ``mip`` (HU), ``spacing`` (mm), ``area_mm2`` and ``warnings``, in display orientation
        (anterior up, the patient's right on the left).

    Raises:
        BadCaseError, ConfigError: as :func:`segment`.
    """
    return _run(image, model, MipPredictor, device, threshold, on_non_ct, output)


def footprint(
    image,
    model: str = "volume",
    *,
    device: str = "cpu",
    threshold: float | None = None,
    on_non_ct: str = "warn",
) -> np.ndarray:
    """The brain's footprint on the grid of the volume's MIP, from the 3-D model: its mask's union along S.

    What ``scripts/predict.py`` writes as ``<case>_footprint.png`` with a 3-D model. On the wide
    generalization cases it is the better MIP mask: 0.992 mean and 0.961 worst Dice against the
    MIP model's 0.979 and 0.903 (docs/generalization.md), at the 3-D model's cost (about a
    second per volume against a fraction of one).

    Args: as :func:`segment` (``model`` is a 3-D model).

    Returns:
        uint8 {0, 1}, the shape of :func:`mip`'s ``mask``, in display orientation (anterior up,
        the patient's right on the left).

    Raises:
        BadCaseError, ConfigError: as :func:`segment`.
    """
    return _run(image, model, VolumePredictor, device, threshold, on_non_ct, None,
                then=lambda result, case: result.footprint(case.source))


def predict(input: str | Path, output: str | Path, model: str | Path = "volume", **options) -> dict:
    """What ``python scripts/predict.py input=... output=...`` does: every case of ``input`` (a file, a
    folder, a DICOM study with several series) predicted into ``output``, with ``predictions.csv``.

    Args:
        input: anything ``scripts/predict.py`` takes (conf/predict.yaml).
        output: the folder for the masks, pictures, ``predictions.csv`` and ``predict_report.json``.
        model: 'volume', 'mip', ``pretrained:<name>`` or a checkpoint file.
        options: keys of conf/predict.yaml to change (``on_non_ct='fail'``, ``volumes={...}``, ...).

    Returns:
        The run's ``predict_report.json``: ``predicted``, ``warnings``, ``failed``, ``skipped_series``.
    """
    from omegaconf import OmegaConf

    from brainseg.inference.predict import predict_report

    unknown = sorted(set(options) - set(PREDICT_DEFAULTS))
    if unknown:
        raise ConfigError(f"unknown option(s) {unknown}; known: {sorted(PREDICT_DEFAULTS)}")
    config = OmegaConf.merge(PREDICT_DEFAULTS, {"ckpt_path": checkpoint_name(model), "input": str(input), "output": str(output)}, options)
    return predict_report(config)


__all__ = ["segment", "mip", "footprint", "predict", "BadCaseError", "ConfigError"]
