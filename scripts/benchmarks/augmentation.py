"""Augmentation cost per sample: brainseg's against the same transforms composed from MONAI.

    PYTHONPATH=scripts python -m benchmarks.augmentation      # needs MONAI (the optional extra `bench`)

One thread, a 1x128x128 sample (the MIP network input) and its mask, the fastest of 5 x 100
calls. The figures and the reason for the choice are in docs/augmentation.md.
"""

from __future__ import annotations

import time
import warnings

import torch

from brainseg.data.augmentation import Augmentation

OURS = dict(flip_lr=0.5, rotate_deg=15, scale=0.1, translate=0.05, fov_crop=0.15, fov_crop_prob=0.2, blur_sigma=1.0,
            low_resolution=0.5, resolution_prob=0.3, intensity_scale=0.1, intensity_shift=0.05, gamma=0.3, noise_std=0.02)


def monai_equivalent():
    """The nearest MONAI composition: flip, affine (rotation, zoom, shift), blur, gamma, scale, shift, noise."""
    from monai import transforms as t

    keys = ["image", "mask"]
    return t.Compose([
        t.RandFlipd(keys=keys, prob=0.5, spatial_axis=1),
        t.RandAffined(keys=keys, prob=1.0, rotate_range=0.26, scale_range=0.1, translate_range=6,
                      mode=("bilinear", "nearest"), padding_mode="zeros"),
        t.RandGaussianSmoothd(keys=["image"], prob=0.3, sigma_x=(0, 1), sigma_y=(0, 1)),
        t.RandAdjustContrastd(keys=["image"], prob=1.0, gamma=(0.77, 1.3)),
        t.RandScaleIntensityd(keys=["image"], prob=1.0, factors=0.1),
        t.RandShiftIntensityd(keys=["image"], prob=1.0, offsets=0.05),
        t.RandGaussianNoised(keys=["image"], prob=1.0, std=0.02),
    ])


def seconds_per_sample(function, calls: int = 100, repeats: int = 5) -> float:
    for _ in range(20):  # warm-up
        function()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            function()
        best = min(best, (time.perf_counter() - start) / calls)
    return best


def main() -> dict:
    torch.set_num_threads(1)
    image, mask = torch.rand(1, 128, 128), (torch.rand(1, 128, 128) > 0.5).float()
    ours = Augmentation(**OURS)
    results = {"brainseg": seconds_per_sample(lambda: ours(image, mask))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            monai = monai_equivalent()
            results["monai"] = seconds_per_sample(lambda: monai({"image": image, "mask": mask}))
        except ImportError:
            pass
    for name, seconds in results.items():
        print(f"{name:9s} {1000 * seconds:6.2f} ms per sample")
    return results


if __name__ == "__main__":
    main()
