"""Intensity normalization of CT images (never of masks).

Two schemes:

* ``window``: clip to an HU window and scale it to [0, 1]. The default window for CTA MIPs,
  [-100, 1900] HU, keeps soft tissue, contrast-filled vessels (150-500 HU) and bone apart.
* ``zscore``: nnU-Net's CT scheme. Clip to the 0.5th and 99.5th percentiles of foreground
  pixels and subtract their mean, divide by their std; the statistics are pooled over the
  training split once (:func:`ct_statistics`) and travel with the model.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

FOREGROUND_HU = -500.0  # pixels above this are the head, below it air


def window_hu(hu: np.ndarray, window: Sequence[float]) -> np.ndarray:
    """Clip HU to ``window = (low, high)`` and scale to [0, 1] as float32."""
    low, high = float(window[0]), float(window[1])
    if not low < high:
        raise ValueError(f"HU window must have low < high, got {list(window)}")
    return ((np.clip(hu, low, high) - low) / (high - low)).astype(np.float32)


def ct_statistics(images: Iterable[np.ndarray], max_samples: int = 2_000_000, seed: int = 0) -> dict[str, float]:
    """Foreground intensity statistics pooled over images, for :func:`zscore_hu`."""
    rng = np.random.default_rng(seed)
    pooled = np.concatenate([image[image > FOREGROUND_HU].ravel() for image in images])
    if pooled.size == 0:
        raise ValueError("no foreground pixels (HU > -500) to compute statistics from")
    if pooled.size > max_samples:
        pooled = rng.choice(pooled, max_samples, replace=False)
    low, high = np.percentile(pooled, [0.5, 99.5])
    clipped = np.clip(pooled, low, high)
    return {"low": float(low), "high": float(high), "mean": float(clipped.mean()), "std": float(clipped.std() + 1e-6)}


def zscore_hu(hu: np.ndarray, statistics: dict[str, float]) -> np.ndarray:
    """Clip to the pooled percentiles and standardise with the pooled mean and std, as float32."""
    clipped = np.clip(hu, statistics["low"], statistics["high"])
    return ((clipped - statistics["mean"]) / statistics["std"]).astype(np.float32)


def normalize_hu(hu: np.ndarray, scheme: str, window: Sequence[float], statistics: dict | None = None) -> np.ndarray:
    """Dispatch on ``scheme`` ('window' or 'zscore')."""
    if scheme == "window":
        return window_hu(hu, window)
    if scheme == "zscore":
        if statistics is None:
            raise ValueError("zscore normalization needs statistics from the training split")
        return zscore_hu(hu, statistics)
    raise ValueError(f"unknown normalization {scheme!r}; expected 'window' or 'zscore'")
