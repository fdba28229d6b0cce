"""The preprocessing a model was trained with: what turns a new scan into its network input.

A :class:`Preprocessing` is made once by the DataModule, validated here, saved in every
checkpoint (``checkpoint["brainseg"]["preprocessing"]``, plain types) and read back by
predict, evaluate and export, so training and inference cannot drift apart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from brainseg.data.extra_projections import check_extra_projections, normalize_extra
from brainseg.data.normalization import normalize_hu

MODES = ("mip", "slices")  # mip: 2-D footprint from a MIP along S | slices: axial slices -> 3-D mask
NORMALIZATIONS = ("window", "zscore")


@dataclass(frozen=True)
class Preprocessing:
    """How a model's input is made from HU.

    Args:
        mode: 'mip' (one MIP along S per case) or 'slices' (axial slices, 3-D masks).
        hu_window: ``(low, high)`` HU clipped and scaled to [0, 1] by the 'window' normalization.
        normalization: 'window' or 'zscore' (nnU-Net's CT scheme, with ``statistics``).
        statistics: foreground ``low``/``high``/``mean``/``std`` of the training split (zscore only).
        input_size: side of the square the network trained on, pixels. MIP inference resizes
            every MIP to it; slice inference runs whole slices, and export uses it as the
            example shape.
        spacing_mm: in-plane pixel size of the slices, mm (slices only).
        context_slices: neighbouring slices on each side stacked as channels (slices only; 2.5-D).
        extra_projections: projections along S stacked after the MIP as input channels (MIP only;
            names of :data:`~brainseg.data.projection.EXTRA_PROJECTIONS`, each with its own
            fixed normalization). Empty for checkpoints written before they existed.
    """

    mode: str
    hu_window: tuple[float, float]
    input_size: int
    normalization: str = "window"
    statistics: dict | None = None
    spacing_mm: float | None = None
    context_slices: int = 0
    extra_projections: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}")
        low, high = (float(v) for v in self.hu_window)
        if not low < high:
            raise ValueError(f"hu_window must be [low, high] with low < high, got {[low, high]}")
        object.__setattr__(self, "hu_window", (low, high))
        if self.normalization == "zscore" and not self.statistics:
            raise ValueError("zscore normalization needs the training split's statistics")
        if self.mode == "slices" and not (self.spacing_mm or 0) > 0:
            raise ValueError(f"slices need spacing_mm > 0, got {self.spacing_mm}")
        if self.context_slices < 0 or (self.mode == "mip" and self.context_slices):
            raise ValueError(f"context_slices must be >= 0 (and 0 for MIPs), got {self.context_slices}")
        object.__setattr__(self, "extra_projections", check_extra_projections(self.extra_projections))
        if self.extra_projections and self.mode != "mip":
            raise ValueError(f"extra_projections are MIP inputs; mode {self.mode!r} takes none")

    @property
    def in_channels(self) -> int:
        """Network input channels: the slice and its neighbours, or the MIP and the extra projections."""
        return 2 * self.context_slices + 1 + len(self.extra_projections)

    def normalize(self, hu: np.ndarray) -> np.ndarray:
        """HU -> network input (float32), with this scheme, window and statistics."""
        return normalize_hu(hu, self.normalization, self.hu_window, self.statistics)

    def normalize_planes(self, planes: np.ndarray) -> np.ndarray:
        """(C, H, W) fitted MIP (HU) and extra projections (their units) -> the (C, H, W) network input."""
        return np.concatenate([self.normalize(planes[:1]), normalize_extra(planes[1:], self.extra_projections)])

    def to_dict(self) -> dict:
        """Plain types, as stored in a checkpoint."""
        values = asdict(self)
        values["hu_window"] = list(self.hu_window)
        values["extra_projections"] = list(self.extra_projections)
        return values

    @classmethod
    def from_dict(cls, values: dict) -> "Preprocessing":
        """Read a checkpoint's record, including those written before this class existed
        (``window``, ``image_size`` and ``in_channels`` keys; no ``mode`` meant MIP).

        Raises:
            ValueError: a missing or invalid value.
        """
        v = dict(values)
        try:
            return cls(
                mode=v.get("mode", "mip"),
                hu_window=tuple(v["hu_window"] if "hu_window" in v else v["window"]),
                input_size=int(v["input_size"] if "input_size" in v else v["image_size"]),
                normalization=v.get("normalization", "window"),
                statistics=v.get("statistics"),
                spacing_mm=v.get("spacing_mm"),
                context_slices=int(v.get("context_slices", (int(v.get("in_channels", 1)) - 1) // 2)),
                extra_projections=tuple(v.get("extra_projections") or ()),
            )
        except KeyError as missing:
            raise ValueError(f"preprocessing record lacks {missing}") from None
