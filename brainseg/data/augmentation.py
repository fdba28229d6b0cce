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
        draw = _Draw(generator)
        air = image.amin()  # CT's minimum is air, whatever the normalization
        image, mask = self._geometry(image, mask, air, draw)
        image, mask = self._field_of_view(image, mask, air, draw)
        image = self._resolution(image, draw)
        return self._intensity(image, draw), mask

    def _geometry(self, image, mask, air, draw: "_Draw"):
        angle = math.radians(draw.uniform(self.rotate_deg))
        zoom = 1.0 + draw.uniform(self.scale)
        flip_x, flip_y = draw.chance(self.flip_lr), draw.chance(self.flip_ap)
        shift = [2 * draw.uniform(self.translate), 2 * draw.uniform(self.translate)]
        if not (angle or zoom != 1.0 or flip_x or flip_y or any(shift)):
            return image, mask
        theta = torch.cat([similarity_matrix(angle, zoom, flip_x, flip_y), torch.tensor(shift)[:, None]], dim=1)[None]
        grid = F.affine_grid(theta, [1, *image.shape], align_corners=False)
        # Sample (image - air) with zero padding: what comes in from outside the image is air.
        image = F.grid_sample((image - air)[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0] + air
        mask = F.grid_sample(mask[None], grid, mode="nearest", padding_mode="zeros", align_corners=False)[0]
        return image, mask

    def _field_of_view(self, image, mask, air, draw: "_Draw"):
        if not (self.fov_crop and draw.chance(self.fov_crop_prob)):
            return image, mask
        sides = 1 if self.fov_crop_sides <= 1 else 1 + min(self.fov_crop_sides - 1, int(draw.uniform_between(0, self.fov_crop_sides)))
        image, mask = image.clone(), mask.clone()
        for _ in range(min(sides, 4)):  # a side drawn twice is cut twice: by the larger band
            side = min(3, int(draw.uniform_between(0, 4)))  # top, bottom, left, right
            length = image.shape[-2] if side < 2 else image.shape[-1]
            cut = int(round(draw.uniform_between(0.0, self.fov_crop) * length))
            if cut == 0:
                continue
            band = slice(0, cut) if side % 2 == 0 else slice(length - cut, None)
            rows, cols = (band, slice(None)) if side < 2 else (slice(None), band)
            image[..., rows, cols] = air
            mask[..., rows, cols] = 0
        return image, mask

    def _resolution(self, image, draw: "_Draw"):
        if not ((self.blur_sigma or self.low_resolution) and draw.chance(self.resolution_prob)):
            return image
        use_blur = bool(self.blur_sigma) and (not self.low_resolution or draw.chance(0.5))
        if use_blur:
            sigma = draw.uniform_between(0.0, self.blur_sigma)
            return gaussian_blur(image, sigma) if sigma > 0.05 else image
        factor = 1.0 + draw.uniform_between(0.0, self.low_resolution)
        height, width = image.shape[-2:]
        small = [max(4, round(height / factor)), max(4, round(width / factor))]
        low = F.interpolate(image[None], size=small, mode="bilinear", align_corners=False, antialias=True)
        return F.interpolate(low, size=(height, width), mode="bilinear", align_corners=False)[0]

    def _intensity(self, image, draw: "_Draw"):
        if self.gamma:
            low, high = image.amin(), image.amax()
            if high > low:
                gamma = math.exp(draw.uniform(math.log1p(self.gamma)))
                image = low + (high - low) * ((image - low) / (high - low)) ** gamma
        if self.intensity_scale or self.intensity_shift:
            image = image * (1.0 + draw.uniform(self.intensity_scale)) + draw.uniform(self.intensity_shift)
        if self.noise_std:
            std = draw.uniform_between(0.0, self.noise_std)
            image = image + torch.randn(image.shape, generator=draw.generator) * std
        return image


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
