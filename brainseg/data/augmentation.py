"""Training-time augmentation of a normalized image and its mask, in torch, in the SynthSeg spirit.

What a scanner, a reconstruction and a patient change, drawn anew for every sample:

* **geometry**, applied to image and mask together by one sampling grid: a left-right (and
  optionally anterior-posterior) flip, an in-plane rotation and an isotropic zoom, i.e. a
  similarity transform (:func:`similarity_matrix`: a rotation times a flip times a scale, never
  a shear), plus a shift. What the transform brings in from outside the image is air;
* **field of view**: a band along one border cut off (air in the image, no brain in the mask),
  as when the scan is truncated or the patient lies off-centre;
* **resolution**: a Gaussian blur (softer reconstruction kernel) or a down-and-up sampling (a
  coarser matrix);
* **intensity**, on the image only: contrast and brightness (an HU scale and shift of the
  window), a gamma curve between the image's own minimum and maximum, and Gaussian noise.

Masks are sampled by nearest neighbour and stay {0, 1}. All randomness comes from one
``torch.Generator`` when given, so a sample's augmentation can be reproduced.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def similarity_matrix(angle_rad: float, zoom: float, flip_x: bool = False, flip_y: bool = False) -> torch.Tensor:
    """The 2x2 map from output to input coordinates: rotation @ flip / zoom.

    Its columns are orthogonal with length ``1 / zoom`` and its determinant is ``±1 / zoom²``:
    shapes are turned, mirrored and resized, never sheared.
    """
    cos, sin = math.cos(angle_rad), math.sin(angle_rad)
    rotation = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float32)
    flip = torch.diag(torch.tensor([-1.0 if flip_x else 1.0, -1.0 if flip_y else 1.0]))
    return rotation @ flip / zoom


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a ``(C, H, W)`` image, ``sigma`` in pixels, edges replicated."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(image.dtype)
    channels = image.shape[0]
    out = F.pad(image[None], (radius, radius, radius, radius), mode="replicate")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)
    return out[0]


@dataclass
class Augmentation:
    """Random training augmentation; each knob at 0 switches that part off.

    Intensities are in normalized units: with the default window normalization [-100, 1900] HU
    maps to [0, 1], so 0.05 is 100 HU.

    Args:
        flip_lr: probability of a left-right flip (anatomically plausible for axial views).
        flip_ap: probability of an anterior-posterior flip. Defaults to 0 (not plausible).
        rotate_deg: maximum absolute in-plane rotation, degrees.
        scale: maximum relative zoom in or out (0.1 = 0.9x to 1.1x), the same along both axes.
        translate: maximum shift as a fraction of the image size.
        fov_crop: maximum fraction of the image cut off along one border (drawn side), with
            probability ``fov_crop_prob``.
        fov_crop_prob: probability of a field-of-view cut.
        fov_crop_sides: up to this many borders are cut (1-4, drawn), each by up to ``fov_crop``:
            2 makes corners, as when a small reconstruction field holds a quarter of the head.
        blur_sigma: maximum Gaussian blur, pixels (drawn uniformly up to it), with probability
            ``resolution_prob``.
        low_resolution: maximum downsampling factor minus 1 (0.5: down to 1/1.5 of the matrix and
            back), with probability ``resolution_prob``; blur or low resolution, not both.
        resolution_prob: probability of a resolution loss (blur or low resolution).
        intensity_scale: maximum relative change of contrast.
        intensity_shift: maximum additive shift, in normalized units.
        gamma: maximum log-gamma magnitude as a fraction (0.3: gamma from 1/1.3 to 1.3).
        noise_std: maximum standard deviation of added Gaussian noise, in normalized units.
    """

    flip_lr: float = 0.5
    flip_ap: float = 0.0
    rotate_deg: float = 15.0
    scale: float = 0.1
    translate: float = 0.05
    fov_crop: float = 0.0
    fov_crop_prob: float = 0.0
    fov_crop_sides: int = 1
    blur_sigma: float = 0.0
    low_resolution: float = 0.0
    resolution_prob: float = 0.0
    intensity_scale: float = 0.1
    intensity_shift: float = 0.05
    gamma: float = 0.0
    noise_std: float = 0.01

    def __call__(
        self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment a ``(C, H, W)`` image and its ``(1, H, W)`` float mask together."""
        images, masks = self.batch(image[None], mask[None], [generator])
        return images[0], masks[0]

    def batch(
        self, images: torch.Tensor, masks: torch.Tensor, generators: list[torch.Generator | None]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Augment ``(N, C, H, W)`` images and their ``(N, 1, H, W)`` float masks, sample ``i``
        drawn from ``generators[i]``: each sample as :meth:`__call__` augments it alone, bit for
        bit, with one sampling grid and one intensity change for the whole batch (two thirds of
        the time of eight samples one by one). The inputs are left as they are."""
        draws = [self._draw(images.shape[1:], _Draw(generator)) for generator in generators]
        air = images.amin(dim=(1, 2, 3), keepdim=True)  # CT's minimum is air, whatever the normalization
        images, masks = self._geometry(images, masks, air, draws)
        for i, draw in enumerate(draws):
            self._cut_field_of_view(images[i], masks[i], air[i], draw.cuts)
            if draw.blur_sigma is not None or draw.low_resolution is not None:
                images[i] = self._resolution(images[i], draw)
        return self._intensity(images, draws), masks

    def _draw(self, shape: torch.Size, draw: "_Draw") -> "SampleDraw":
        """Every random number of one sample, in the order they have always been drawn."""
        angle = math.radians(draw.uniform(self.rotate_deg))
        zoom = 1.0 + draw.uniform(self.scale)
        flip_x, flip_y = draw.chance(self.flip_lr), draw.chance(self.flip_ap)
        shift = [2 * draw.uniform(self.translate), 2 * draw.uniform(self.translate)]
        theta = None
        if angle or zoom != 1.0 or flip_x or flip_y or any(shift):
            theta = torch.cat([similarity_matrix(angle, zoom, flip_x, flip_y), torch.tensor(shift)[:, None]], dim=1)
        sample = SampleDraw(theta=theta, cuts=self._draw_cuts(shape, draw))
        if (self.blur_sigma or self.low_resolution) and draw.chance(self.resolution_prob):
            if bool(self.blur_sigma) and (not self.low_resolution or draw.chance(0.5)):
                sample.blur_sigma = draw.uniform_between(0.0, self.blur_sigma)
            else:
                sample.low_resolution = draw.uniform_between(0.0, self.low_resolution)
        if self.gamma:
            sample.gamma = math.exp(draw.uniform(math.log1p(self.gamma)))
        if self.intensity_scale or self.intensity_shift:
            sample.contrast = 1.0 + draw.uniform(self.intensity_scale)
            sample.brightness = draw.uniform(self.intensity_shift)
        if self.noise_std:
            std = draw.uniform_between(0.0, self.noise_std)
            sample.noise = torch.randn(tuple(shape), generator=draw.generator) * std
        return sample

    def _draw_cuts(self, shape: torch.Size, draw: "_Draw") -> list[tuple[int, int]]:
        """Field-of-view cuts as ``(side, pixels)``: side 0-3 is top, bottom, left, right."""
        if not (self.fov_crop and draw.chance(self.fov_crop_prob)):
            return []
        sides = 1 if self.fov_crop_sides <= 1 else 1 + min(self.fov_crop_sides - 1, int(draw.uniform_between(0, self.fov_crop_sides)))
        cuts = []
        for _ in range(min(sides, 4)):  # a side drawn twice is cut twice: by the larger band
            side = min(3, int(draw.uniform_between(0, 4)))
            length = shape[-2] if side < 2 else shape[-1]
            cuts.append((side, int(round(draw.uniform_between(0.0, self.fov_crop) * length))))
        return [cut for cut in cuts if cut[1]]

    @staticmethod
    def _geometry(images, masks, air, draws: list["SampleDraw"]):
        moved = [i for i, draw in enumerate(draws) if draw.theta is not None]
        if not moved:
            return images.clone(), masks.clone()
        index = torch.tensor(moved)
        theta = torch.stack([draws[i].theta for i in moved])
        grid = F.affine_grid(theta, [len(moved), *images.shape[1:]], align_corners=False)
        # Sample (image - air) with zero padding: what comes in from outside the image is air.
        sampled = F.grid_sample(images[index] - air[index], grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        sampled_masks = F.grid_sample(masks[index], grid, mode="nearest", padding_mode="zeros", align_corners=False)
        if len(moved) == len(draws):
            return sampled + air, sampled_masks
        images, masks = images.clone(), masks.clone()
        images[index], masks[index] = sampled + air[index], sampled_masks
        return images, masks

    @staticmethod
    def _cut_field_of_view(image, mask, air, cuts: list[tuple[int, int]]) -> None:
        """Air in the image and no brain in the mask along each cut border, in place."""
        for side, cut in cuts:
            length = image.shape[-2] if side < 2 else image.shape[-1]
            band = slice(0, cut) if side % 2 == 0 else slice(length - cut, None)
            rows, cols = (band, slice(None)) if side < 2 else (slice(None), band)
            image[..., rows, cols] = air
            mask[..., rows, cols] = 0

    @staticmethod
    def _resolution(image, draw: "SampleDraw"):
        if draw.blur_sigma is not None:
            return gaussian_blur(image, draw.blur_sigma) if draw.blur_sigma > 0.05 else image
        factor = 1.0 + draw.low_resolution
        height, width = image.shape[-2:]
        small = [max(4, round(height / factor)), max(4, round(width / factor))]
        low = F.interpolate(image[None], size=small, mode="bilinear", align_corners=False, antialias=True)
        return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)[0]

    @staticmethod
    def _intensity(images, draws: list["SampleDraw"]):
        for i, draw in enumerate(draws):
            if draw.gamma is not None:
                low, high = images[i].amin(), images[i].amax()
                if high > low:
                    images[i] = low + (high - low) * ((images[i] - low) / (high - low)) ** draw.gamma
        if draws[0].contrast is not None:
            contrast = torch.tensor([draw.contrast for draw in draws], dtype=images.dtype).view(-1, 1, 1, 1)
            brightness = torch.tensor([draw.brightness for draw in draws], dtype=images.dtype).view(-1, 1, 1, 1)
            images = images * contrast + brightness
        if draws[0].noise is not None:
            images = images + torch.stack([draw.noise for draw in draws])
        return images


@dataclass
class SampleDraw:
    """What one sample's augmentation drew: everything :meth:`Augmentation.batch` needs to apply it."""

    theta: torch.Tensor | None  # (2, 3) affine map from output to input coordinates; None: no change
    cuts: list[tuple[int, int]]  # field-of-view cuts, (side, pixels)
    blur_sigma: float | None = None  # Gaussian blur, pixels
    low_resolution: float | None = None  # downsampling factor - 1, and back up
    gamma: float | None = None
    contrast: float | None = None  # the image times this, plus brightness
    brightness: float | None = None
    noise: torch.Tensor | None = None  # added, already scaled by the drawn standard deviation


class _Draw:
    """Random numbers from one generator (or torch's global one)."""

    def __init__(self, generator: torch.Generator | None):
        self.generator = generator

    def uniform_between(self, low: float, high: float) -> float:
        return low + (high - low) * torch.rand((), generator=self.generator).item()

    def uniform(self, limit: float) -> float:
        """Uniform in [-limit, limit]; 0 without drawing when ``limit`` is 0."""
        return self.uniform_between(-limit, limit) if limit else 0.0

    def chance(self, probability: float) -> bool:
        return bool(probability) and torch.rand((), generator=self.generator).item() < probability
