"""Ensembles: several checkpoints of one recipe predict together, their probabilities averaged.

``ckpt_path`` of predict and evaluate (:func:`~brainseg.inference.predict.load_predictors`) names one checkpoint, a list of them (``ckpt_path=[a,b,c]``),
a training run folder (its best checkpoint) or a multirun folder (the best checkpoint of every
job, e.g. the five models of a 5-fold cross-validation). Each member turns the input into its
own network input (its own normalization statistics, so z-scored folds combine) and gives its
probabilities; the ensemble averages them before the threshold. An :class:`EnsemblePredictor`
is a :class:`MipPredictor` or a :class:`VolumePredictor` (:func:`make_ensemble` picks), so
predict, evaluate and every output work as for one model; ``predictions.csv`` and
``per_case.csv`` gain a ``models`` column naming the members that voted.

Members must share their preprocessing (mode, HU window, normalization scheme, input size,
spacing, context slices, extra projections); only the statistics of a z-score normalization, fitted on each
member's own training split, may differ. Their thresholds must agree, unless ``threshold`` is given.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from math import lcm
from pathlib import Path

import numpy as np
import torch

from brainseg.errors import ConfigError
from brainseg.inference.mip import MipPredictor
from brainseg.inference.volume import VolumePredictor

Predictor = MipPredictor | VolumePredictor


class EnsemblePredictor:
    """The mean of its members' probabilities; the rest of prediction is its members' kind's.

    Not built directly: :func:`make_ensemble` returns a :class:`MipEnsemble` or a :class:`VolumeEnsemble`.

    Args:
        members: predictors of one mode with the same preprocessing (see the module docstring).
        names: one label per member, for the ``models`` column.
        threshold: applies to the mean probability; ``None`` takes the members' (which must agree).

    Raises:
        ConfigError: members of different kinds or preprocessing, or disagreeing thresholds.
    """

    def __init__(self, members: list[Predictor], names: list[str], threshold: float | None = None):
        check_compatible(members, names)
        thresholds = sorted({member.threshold for member in members})
        if threshold is None and len(thresholds) > 1:
            raise ConfigError(f"the checkpoints' thresholds differ ({', '.join(map(str, thresholds))}); give threshold=VALUE for the ensemble")
        self.members, self.names = members, names
        self.threshold = float(thresholds[0] if threshold is None else threshold)
        self.preprocessing = members[0].preprocessing
        self.image_size = self.preprocessing.input_size
        self.tta = members[0].tta
        self.postprocessing = getattr(members[0], "postprocessing", None)  # MIP: cleans the mean footprint

    @property
    def models(self) -> str:
        """Who voted: the members' labels, for the ``models`` column."""
        return " + ".join(self.names)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.members)} members: {self.models})"

    # ---- one network's view of a normalized input has no meaning here: members normalize their own
    def normalized(self, planes: np.ndarray) -> torch.Tensor:
        raise TypeError("each member of an ensemble normalizes its own input: call network_probability(planes) or slice_probabilities(hu)")

    probabilities = _sigmoid = normalized

    # ---- MIP: the mean of the members' probabilities on the network grid --------------------
    def network_probability(self, planes: np.ndarray) -> torch.Tensor:
        return torch.stack([member.network_probability(planes) for member in self.members]).mean(0)

    # ---- slices: the mean of the members' probabilities of a batch of HU slices ---------------
    @property
    def size_divisor(self) -> int:
        return lcm(*(member.size_divisor for member in self.members))

    def slice_probabilities(self, hu: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        return torch.stack([member.slice_probabilities(hu, bf16) for member in self.members]).mean(0)

    # ---- outputs ----------------------------------------------------------------------------
    @property
    def outputs(self) -> tuple[str, ...]:
        return (*super().outputs, "models")

    def row(self, case, result) -> dict:
        return {**super().row(case, result), "models": self.models}


class MipEnsemble(EnsemblePredictor, MipPredictor):
    """An ensemble of MIP models: a :class:`MipPredictor` whose probability is its members' mean."""


class VolumeEnsemble(EnsemblePredictor, VolumePredictor):
    """An ensemble of slice models: a :class:`VolumePredictor` whose probability is its members' mean."""


def check_compatible(members: list[Predictor], names: list[str]) -> None:
    """Refuse members that cannot vote on one grid: other kinds, or other preprocessing.

    Raises:
        ConfigError: one line naming the first member that differs from the first, and how.
    """
    if not members:
        raise ConfigError("an ensemble needs at least one checkpoint")
    first = asdict(members[0].preprocessing)
    first.pop("statistics")  # fitted on each member's training split; each member normalizes its own input
    for member, name in zip(members[1:], names[1:]):
        other = asdict(member.preprocessing)
        other.pop("statistics")
        differ = [f"{key} {first[key]} vs {other[key]}" for key in first if first[key] != other[key]]
        if differ:
            raise ConfigError(f"the checkpoints' preprocessing differs: {names[0]} and {name} ({'; '.join(differ)}); an ensemble needs one recipe")


def make_ensemble(members: list[Predictor], names: list[str], threshold: float | None = None) -> EnsemblePredictor:
    """A :class:`MipEnsemble` or :class:`VolumeEnsemble` of ``members``."""
    kind = MipEnsemble if members and isinstance(members[0], MipPredictor) else VolumeEnsemble
    return kind(members, names, threshold)


def best_checkpoint(run: Path) -> Path:
    """A training run's best checkpoint: ``metrics.json``'s ``best_checkpoint``, else its only
    checkpoint other than ``last.ckpt``.

    Raises:
        ConfigError: none, or several to choose from.
    """
    metrics = run / "metrics.json"
    if metrics.is_file():
        recorded = json.loads(metrics.read_text()).get("best_checkpoint")
        for candidate in (run / "checkpoints" / Path(recorded).name, Path(recorded)) if recorded else ():  # the run may have moved
            if candidate.is_file():
                return candidate
    found = sorted(path for path in (run / "checkpoints").glob("*.ckpt") if path.name != "last.ckpt")
    if len(found) != 1:
        what = "no checkpoint" if not found else f"{len(found)} checkpoints and no metrics.json naming the best"
        raise ConfigError(f"{run}: {what}; give the checkpoint files as ckpt_path=[a.ckpt,b.ckpt]")
    return found[0]


def _job_order(path: Path) -> tuple:
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def resolve_checkpoints(ckpt_path) -> list[Path]:
    """The checkpoint files ``ckpt_path`` names: a file, a list of files or folders, a training
    run folder (its best checkpoint) or a multirun folder (every job's best, in job order).

    Raises:
        ConfigError: an empty list, or a folder holding no training run.
    """
    entries = [ckpt_path] if isinstance(ckpt_path, (str, Path)) else list(ckpt_path)
    if not entries:
        raise ConfigError("ckpt_path is an empty list; give one checkpoint or several")
    found: list[Path] = []
    for entry in map(Path, entries):
        if not entry.is_dir():
            found.append(entry)  # a checkpoint file; a missing one is refused when it is read
        elif (entry / "checkpoints").is_dir():
            found.append(best_checkpoint(entry))
        elif entry.is_dir():
            jobs = sorted((job for job in entry.iterdir() if (job / "checkpoints").is_dir()), key=_job_order)
            if not jobs:
                raise ConfigError(f"ckpt_path={entry}: no training run (checkpoints/) in it or in its sub-folders")
            found += [best_checkpoint(job) for job in jobs]
    return found


def member_names(paths: list[Path]) -> list[str]:
    """Short labels for checkpoints: their paths below the folder they share (e.g. ``0/checkpoints/best.ckpt``)."""
    if len(paths) == 1:
        return [str(paths[0])]
    resolved = [path.resolve() for path in paths]
    common = Path(os.path.commonpath(resolved))
    return [str(path.relative_to(common)) for path in resolved]
