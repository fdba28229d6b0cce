"""Volume inference: a 3-D brain mask from a slice model, on the input's exact voxel grid.

The path from a CTA file to ``<CaseID>_brainmask.nii.gz``:

1. read the voxels once in their stored dtype, reorient to RAS voxel order (flips and
   transposes, exact) and resample each axial slice to the model's coarse grid
   (:mod:`brainseg.data.axial`, the same code as training);
2. run the network slice by slice in batches (2.5-D neighbours as channels); slices with
   nothing but air are not run and get probability 0;
3. post-process on the coarse grid, where it is cheap: largest connected component, hole
   filling, optional closing (:func:`postprocess`);
4. upsample the probabilities to the stored in-plane grid (bilinear), threshold, and undo the
   reorientation, so the mask has the input's shape and its header's sform and qform exactly.

Post-processing (:mod:`brainseg.inference.postprocessing`) acts on probabilities, not on the
final mask, so the upsampled boundary stays smooth and sub-voxel accurate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import torch
from PIL import Image
from torch import nn

from brainseg.data.axial import (
    context_indices,
    crop_padding,
    pad_to_multiple,
    plan_axial_grid,
    read_axial_hu,
    write_axial,
)
from brainseg.data.dicom import DicomSeries, open_image
from brainseg.data.nifti import NiftiVolume, read_header
from brainseg.data.normalization import FOREGROUND_HU
from brainseg.data.preprocessing import Preprocessing
from brainseg.data.projection import project_mask
from brainseg.data.transforms import AIR_HU
from brainseg.errors import BadCaseError
from brainseg.inference.inputs import InputCase
from brainseg.inference.plausibility import (
    PlausibilityLimits,
    check_ct_input,
    check_plausibility,
    voxel_ml,
)
from brainseg.inference.postprocessing import PostProcessing, postprocess
from brainseg.inference.tta import augmented, check_tta
from brainseg.inference.vessels import VESSEL_WINDOW, write_vessel_views

log = logging.getLogger(__name__)

MASK_SUFFIX = "_brainmask.nii.gz"


@dataclass
class VolumePredictor:
    """A slice network with the threshold and preprocessing (``mode="slices"``) it was trained with.

    Args:
        net: logits-out network over (N, C, H, W) slices, C = ``preprocessing.in_channels``.
        preprocessing: the checkpoint's :class:`Preprocessing`.
        threshold: probability above which a voxel is brain. Defaults to 0.5.
        tta: test-time augmentation, 'none' or 'flip' (:mod:`brainseg.inference.tta`). Defaults to 'none'.
    """

    net: nn.Module
    preprocessing: Preprocessing
    threshold: float = 0.5
    tta: str = "none"

    outputs = ("case_id", "input", "brain_volume_ml", "warnings")  # predictions.csv columns
    LR_DIM = -2  # the network input's left-right axis: R of the (C, R, A) slices

    def __post_init__(self) -> None:
        check_tta(self.tta)

    @property
    def size_divisor(self) -> int:
        """What the network needs each slice side to be a multiple of."""
        return int(getattr(self.net, "size_divisor", 16))

    def slice_probabilities(self, hu: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """Brain probabilities ``(N, H, W)`` of ``(N, C, H, W)`` HU slices (C = ``in_channels``, sides
        multiples of :attr:`size_divisor`), on the CPU, normalized as this model was trained;
        averaged with the flipped input's where ``tta='flip'``."""
        image = torch.from_numpy(self.preprocessing.normalize(hu.numpy()))
        return augmented(lambda batch: self._sigmoid(batch, bf16), image, self.tta, self.LR_DIM)[:, 0]

    @torch.inference_mode()
    def _sigmoid(self, image: torch.Tensor, bf16: bool) -> torch.Tensor:
        device = next(self.net.parameters(), torch.empty(0)).device
        was_training = self.net.training
        self.net.eval()  # BatchNorm statistics of training, also when called on a module mid-training
        try:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = self.net(image.to(device))
        finally:
            self.net.train(was_training)
        return torch.sigmoid(logits.float()).cpu()

    def segment(self, path: str | Path | DicomSeries, options: dict) -> "VolumeSegmentation":
        """:func:`segment_volume` with the ``volumes:`` options of predict and evaluate (and ``on_non_ct``)."""
        return segment_volume(
            self,
            path,
            postprocessing=PostProcessing(**dict(options.get("postprocessing") or {})),
            slice_step_mm=options.get("slice_step_mm"),
            on_non_ct=options.get("on_non_ct", "warn"),
        )

    def run(self, case: InputCase, options: dict) -> "VolumeSegmentation":
        """Segment one input case (a NIfTI file or a DICOM series).

        Raises:
            BadCaseError: the input is not a volume, cannot be read, or (``on_non_ct='fail'``) is not CT.
        """
        if case.series is None and case.path.suffix.lower() == ".png":
            raise BadCaseError(case.path, "a slice-mode checkpoint segments volumes (NIfTI or DICOM), not MIP PNGs")
        return self.segment(case.source, options)

    def write(self, case: InputCase, result: "VolumeSegmentation", output: Path, options: dict) -> None:
        """Write ``<case>_brainmask.nii.gz``, unless off ``<case>_footprint.png`` (the mask's union
        along S: a MIP mask, the better one in docs/generalization.md) and the skull-free vessel views."""
        save_mask(result, mask_path(output, case.case_id))
        if options.get("footprint", True):
            Image.fromarray(result.footprint(case.source) * np.uint8(255)).save(output / f"{case.case_id}_footprint.png")
        if options.get("brain_mip", True):
            write_vessel_views(
                case.case_id, case.source, result.mask, output,
                vessel_window=tuple(options.get("vessel_window") or VESSEL_WINDOW),
                margin_mm=float(options.get("margin_mm", 1.0)),
                slab_mm=options.get("slab_mm"),
                overlap_mm=float(options.get("overlap_mm") or 0.0),
            )

    def row(self, case: InputCase, result: "VolumeSegmentation") -> dict:
        """The case's row of ``predictions.csv``."""
        volume = f"{result.volume_ml:.1f}"
        return {"case_id": case.case_id, "input": str(case.path), "brain_volume_ml": volume, "warnings": "; ".join(result.warnings)}


@dataclass
class VolumeSegmentation:
    """A 3-D brain mask on the input's grid, what it weighs, and what looked wrong."""

    mask: nib.Nifti1Image  # uint8 {0, 1}, the input's shape, sform and qform
    probabilities: np.ndarray | None  # float32 on the input grid (storage order), when asked for
    volume_ml: float
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage

    def footprint(self, source: str | Path | DicomSeries) -> np.ndarray:
        """The mask's union along S on the grid of ``source``'s MIP (the volume it was predicted
        from), uint8 {0, 1} in display orientation: a MIP mask."""
        return project_mask(np.asarray(self.mask.dataobj) != 0, open_image(source))


@torch.inference_mode()
def predict_slices(model: VolumePredictor, hu: torch.Tensor, batch_size: int = 16, bf16: bool = False, step: int = 1) -> torch.Tensor:
    """Brain probabilities (S, R, A) of coarse HU slices (S, R, A), a batch of slices at a time.

    With ``step > 1`` only every ``step``-th slice (and the last) goes through the network and
    the slices between get linearly interpolated probabilities: for thin-slice scans, whose
    neighbouring slices differ little at the coarse in-plane resolution anyway.
    """
    context = model.preprocessing.context_slices
    padded, pad = pad_to_multiple(hu, model.size_divisor, AIR_HU)  # padded with air, in HU: each model normalizes its input
    n = len(hu)
    holds_head = (hu > FOREGROUND_HU).flatten(1).any(1).numpy()
    inferred = np.unique(np.append(np.arange(0, n, max(1, step)), n - 1))
    needed = inferred[holds_head[context_indices(inferred, n, context)].any(axis=1)]  # all air: probability 0
    probabilities = torch.zeros(hu.shape, dtype=torch.float32)
    for start in range(0, len(needed), batch_size):
        z = needed[start : start + batch_size]
        batch = padded[torch.from_numpy(context_indices(z, n, context))]
        probabilities[torch.from_numpy(z)] = crop_padding(model.slice_probabilities(batch, bf16), pad)
    return probabilities if len(inferred) == n else interpolate_slices(probabilities, inferred)


def interpolate_slices(values: torch.Tensor, known: np.ndarray) -> torch.Tensor:
    """Linear interpolation along axis 0 from the slices ``known`` (sorted, holding the first and last)."""
    z = np.arange(len(values))
    upper = np.searchsorted(known, z)  # the first known slice at or above z
    lower = np.maximum(upper - 1, 0)
    exact = known[upper] == z
    weight = np.where(exact, 1.0, (z - known[lower]) / np.maximum(known[upper] - known[lower], 1))
    weight = torch.from_numpy(weight).float()[:, None, None]
    return values[known[lower]] * (1 - weight) + values[known[upper]] * weight


def segment_volume(
    predictor: VolumePredictor,
    path: str | Path,
    postprocessing: PostProcessing = PostProcessing(),
    limits: PlausibilityLimits | None = PlausibilityLimits(),
    return_probabilities: bool = False,
    batch_size: int = 16,
    bf16: bool = False,
    slice_step_mm: float | None = None,
    on_non_ct: str = "warn",
) -> VolumeSegmentation:
    """Segment the brain in one CTA volume (a NIfTI file, a DICOM series folder or a series of a study).

    Args:
        predictor: the slice network with its preprocessing and threshold.
        path: the CTA volume (a path, or a :class:`~brainseg.data.dicom.DicomSeries`).
        postprocessing: clean-up of the prediction (:class:`PostProcessing`).
        limits: plausibility limits for the warnings; ``None`` skips the checks.
        return_probabilities: also return the probabilities on the input grid (float32; a
            512x512x300 volume makes 300 MB, so off by default).
        batch_size: slices per forward pass.
        bf16: bfloat16 autocast; faster only on CPUs with bf16 units (AMX, AVX-512 BF16) and GPUs.
        slice_step_mm: run the network on slices about this far apart and interpolate the
            probabilities between them (thin-slice scans); ``None`` uses the model's in-plane
            ``spacing_mm``, so the grid it infers on is about isotropic; 0 runs every slice.
        on_non_ct: 'warn' (a warning when the input does not look like CT in HU) or 'fail' (refuse it).

    Raises:
        BadCaseError: the file is unreadable or not a 3-D volume; not CT under ``on_non_ct='fail'``.
    """
    timings, clock = {}, time.perf_counter()
    volume = open_image(path)  # a NIfTI file or a DICOM series folder
    grid = plan_axial_grid(volume.affine, volume.shape, predictor.preprocessing.spacing_mm)
    hu = read_axial_hu(volume, grid)
    warnings = [*getattr(volume, "warnings", ()), *check_ct_input(hu.numpy(), volume.path, on_non_ct)]  # DICOM tilt, spacing; not CT
    timings["read"], clock = time.perf_counter() - clock, time.perf_counter()

    slice_step_mm = predictor.preprocessing.spacing_mm if slice_step_mm is None else slice_step_mm
    step = max(1, int(slice_step_mm / grid.spacing[2] + 1e-6))
    probabilities = predict_slices(predictor, hu, batch_size, bf16, step)
    timings["infer"], clock = time.perf_counter() - clock, time.perf_counter()

    coarse_spacing = (grid.spacing[2], *grid.coarse_spacing)
    cleaned, removed_ml = postprocess(probabilities.numpy(), predictor.threshold, coarse_spacing, postprocessing)
    mask = np.zeros(volume.shape, np.uint8, order="F")
    write_axial(torch.from_numpy(cleaned), grid, mask, predictor.threshold)
    full_probabilities = None
    if return_probabilities:
        full_probabilities = np.zeros(volume.shape, np.float32, order="F")
        write_axial(probabilities, grid, full_probabilities, None)
    timings["postprocess"] = time.perf_counter() - clock

    volume_ml = float(np.count_nonzero(mask)) * voxel_ml(volume.spacing)
    if removed_ml > 1.0:
        warnings.append(f"post-processing removed {removed_ml:.1f} mL of prediction outside the largest piece")
    if limits is not None:
        coarse_mask = np.moveaxis(cleaned > predictor.threshold, 0, 2)
        ras_spacing = (*grid.coarse_spacing, grid.spacing[2])
        warnings += check_plausibility(coarse_mask, ras_spacing, np.moveaxis(hu.numpy(), 0, 2), limits, volume_ml)
    return VolumeSegmentation(mask_image(mask, volume), full_probabilities, volume_ml, warnings, timings)


def mask_image(mask: np.ndarray, volume: NiftiVolume) -> nib.Nifti1Image:
    """A uint8 NIfTI on ``volume``'s grid: a NIfTI input's header is copied, so its sform and qform
    (codes and values) come back exactly; a DICOM series gets its affine as both, code 1 (scanner)."""
    if volume.path.is_dir():  # a DICOM series
        image = nib.Nifti1Image(mask, volume.affine)
        image.set_sform(volume.affine, code=1)
        image.set_qform(volume.affine, code=1)
        image.header.set_xyzt_units("mm")
        return image
    header = read_header(volume.path).copy()
    header.set_data_dtype(np.uint8)
    header.set_slope_inter(1.0, 0.0)
    header["descrip"] = b"brainseg brain mask"
    # An affine equal to the header's own leaves the header's sform and qform untouched.
    return nib.Nifti1Image(mask, header.get_best_affine(), header=header)


def mask_path(output_dir: str | Path, case_id: str) -> Path:
    """Where a case's mask goes: ``<output_dir>/<CaseID>_brainmask.nii.gz``."""
    return Path(output_dir) / f"{case_id}{MASK_SUFFIX}"


def save_mask(segmentation: VolumeSegmentation, path: str | Path) -> Path:
    """Write the mask (uint8, gzip) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(segmentation.mask, path)
    return path
