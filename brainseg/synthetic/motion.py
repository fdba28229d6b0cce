"""Patient motion during the scan: the head jumps to a new pose between groups of slices.

Each group of slices is painted with its own pose, so labels and mask follow the anatomy
slice by slice (sagittal and coronal views show stair steps where the head moved). The
slices acquired while it moved also get in-plane motion artifacts: a faint ghost of the
head at its other pose (a double contour) and streaks tangent to the skull.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .acquisition import rotation_matrix

F = np.float32
PIVOT_MM = (0.0, -20.0, -70.0)  # head frame: about the craniocervical junction, where the head turns


@dataclass(frozen=True)
class Motion:
    """Poses of the head during the scan: slice ``starts[n]`` onwards are at ``poses[n]`` (head frame, 4x4)."""

    starts: tuple[int, ...] = (0,)
    poses: tuple[np.ndarray, ...] = (np.eye(4),)
    ghost_weight: float = 0.0  # ghost intensity on the slices next to a jump
    ghost_mm: float = 0.0  # how far from the jump (along z) slices are affected
    streaks: tuple[tuple[float, float], ...] = ()  # (angle, HU) of the tangent streaks
    moves: tuple[tuple[tuple[float, ...], tuple[float, ...]], ...] = ()  # per jump: (rotation deg, shift mm) drawn

    @property
    def moved(self) -> bool:
        return len(self.starts) > 1

    def segments(self, n_slices: int) -> list[tuple[int, int, np.ndarray]]:
        """(first slice, stop, pose) of each group of slices."""
        stops = (*self.starts[1:], n_slices)
        return [(a, b, pose) for a, b, pose in zip(self.starts, stops, self.poses)]

    def meta(self) -> dict:
        return {"jumps_at_slice": list(self.starts[1:]),
                "rotation_deg": [tuple(round(v, 2) for v in angles) for angles, _ in self.moves],
                "shift_mm": [tuple(round(v, 2) for v in shift) for _, shift in self.moves]}


def rigid(angles_deg, shift_mm) -> np.ndarray:
    """4x4 head-frame motion: rotation about ``PIVOT_MM``, then a shift."""
    m = np.eye(4)
    r = rotation_matrix(angles_deg)
    pivot = np.asarray(PIVOT_MM)
    m[:3, :3] = r
    m[:3, 3] = pivot - r @ pivot + np.asarray(shift_mm)
    return m


def sample_motion(rng: np.random.Generator, config, n_slices: int) -> Motion:
    """No motion, or 1-3 jumps to poses within the config's amplitude, at random slices."""
    if rng.random() >= config.motion_prob or n_slices < 8:
        return Motion()
    n = int(rng.integers(1, 4))
    starts = sorted(int(k) for k in rng.choice(np.arange(n_slices // 10, n_slices * 9 // 10), n, replace=False))
    moves = tuple((tuple(float(v) for v in rng.uniform(-config.motion_max_deg, config.motion_max_deg, 3)),
                   tuple(float(v) for v in rng.uniform(-config.motion_max_mm, config.motion_max_mm, 3))) for _ in starts)
    poses = tuple(rigid(angles, shift) for angles, shift in moves)
    streaks = tuple((float(a), float(h)) for a, h in zip(rng.uniform(0, np.pi, 6), rng.uniform(-120, 120, 6)))
    return Motion((0, *starts), (np.eye(4), *poses), float(rng.uniform(0.2, 0.45)), float(rng.uniform(1.0, 4.0)), streaks,
                  moves)


def ghosts(motion: Motion, segment: int, ks: np.ndarray, slice_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """For slices ``ks`` of group ``segment``: the ghost's weight (0 away from a jump) and the group it comes from."""
    weight, other = np.zeros(len(ks)), np.full(len(ks), -1)
    for b in (segment, segment + 1):  # the jumps into and out of this group
        if not 1 <= b < len(motion.starts):
            continue
        dist = np.abs(ks - (motion.starts[b] - 0.5)) * slice_mm - slice_mm / 2  # 0 for the slices either side
        w = motion.ghost_weight * np.clip(1 - dist / motion.ghost_mm, 0, 1)
        closer = w > weight
        weight[closer], other[closer] = w[closer], b - 1 if b == segment else b
    return weight, other


def add_motion_artifact(hu: np.ndarray, mask: np.ndarray, shift_px: np.ndarray, weight: float, motion: Motion,
                        pixel_mm: float) -> None:
    """Ghost (the slice shifted by ``shift_px`` (j, i), blended in at ``weight``) and skull-tangent streaks, in place."""
    ghost = ndimage.shift(hu, shift_px, order=1, mode="nearest")
    hu += F(weight) * (ghost - hu)
    if not mask.any():
        return
    cj, ci = ndimage.center_of_mass(mask)
    radius = np.sqrt(mask.sum() / np.pi) + 6.0 / pixel_mm  # to the outer table
    j, i = np.ogrid[: hu.shape[0], : hu.shape[1]]
    width = F(max(0.6, 0.8 / pixel_mm))
    for angle, amp in motion.streaks:
        dist = (i - F(ci)) * F(np.cos(angle)) + (j - F(cj)) * F(np.sin(angle)) - F(radius)
        hu += F(amp * weight / motion.ghost_weight) * np.exp(-0.5 * (dist / width) ** 2)
