"""Pictures a person would rather look at than read: MIPs with mask outlines, side by side."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image
from scipy import ndimage

TRUTH_COLOUR = (60, 220, 60)  # green: ground truth
PREDICTION_COLOUR = (255, 60, 60)  # red: prediction


def to_gray_uint8(image: np.ndarray) -> np.ndarray:
    """Scale an image to 0-255 from its 1st to 99.9th percentile."""
    low, high = np.percentile(image, [1, 99.9])
    scaled = (np.asarray(image, dtype=np.float32) - low) / max(float(high - low), 1e-6)
    return (np.clip(scaled, 0, 1) * 255).astype(np.uint8)


def outline(mask: np.ndarray, width: int = 1) -> np.ndarray:
    """Boolean outline of a binary mask, ``width`` pixels wide, inside the mask."""
    mask = np.asarray(mask) > 0
    return mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=0)


def overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray] = (),
    colours: Sequence[tuple[int, int, int]] = (TRUTH_COLOUR, PREDICTION_COLOUR),
    width: int = 1,
) -> np.ndarray:
    """RGB uint8 picture of ``image`` (any range) with each mask drawn as a coloured outline."""
    gray = image if image.dtype == np.uint8 else to_gray_uint8(image)
    rgb = np.repeat(gray[..., None], 3, axis=2)
    for mask, colour in zip(masks, colours):
        rgb[outline(mask, width)] = colour
    return rgb


def error_map(truth: np.ndarray, prediction: np.ndarray, image: np.ndarray) -> np.ndarray:
    """RGB picture: dimmed image, false negatives green, false positives red, agreement white."""
    gray = (to_gray_uint8(image) // 3)[..., None].repeat(3, axis=2)
    truth, prediction = truth > 0, prediction > 0
    gray[truth & prediction] = (200, 200, 200)
    gray[truth & ~prediction] = TRUTH_COLOUR
    gray[~truth & prediction] = PREDICTION_COLOUR
    return gray


def grid(rows: Sequence[Sequence[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Tile equally sized RGB tiles into one picture with ``gap``-pixel black borders."""
    height, width = rows[0][0].shape[:2]
    columns = max(len(row) for row in rows)
    canvas = np.zeros((len(rows) * (height + gap) + gap, columns * (width + gap) + gap, 3), np.uint8)
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            top, left = gap + r * (height + gap), gap + c * (width + gap)
            canvas[top : top + height, left : left + width] = tile
    return canvas


def save_png(rgb: np.ndarray, path) -> None:
    Image.fromarray(rgb).save(path)


def enlarge(gray: np.ndarray, masks: Sequence[np.ndarray], min_side: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Enlarge a small uint8 image (bilinear) and its masks (pixel replication) by the integer factor
    that brings its longer side to at least ``min_side``, so outlines drawn afterwards stay thin."""
    scale = max(1, -(-min_side // max(gray.shape)))
    if scale == 1:
        return gray, list(masks)
    block = np.ones((scale, scale), np.uint8)
    big_masks = [np.kron(np.asarray(mask, np.uint8), block) for mask in masks]
    size = (gray.shape[1] * scale, gray.shape[0] * scale)
    return np.asarray(Image.fromarray(gray).resize(size, Image.BILINEAR)), big_masks
