"""A randomized head and neck: which shapes to paint, in which order, with which parameters.

Shapes are defined in the anatomy frame: mm of a standard adult head, origin at the centre
of the cranial cavity, +x to the patient's right, +y anterior, +z superior (RAS). The case's
head size and proportions scale this frame into the head frame; painting order matters,
later shapes overwrite earlier ones only where they say so.
"""

from __future__ import annotations

import numpy as np

from . import extras, face_neck, head, vessels
from .cavity_prior import load_prior
from .config import SyntheticConfig
from .defects import sample_defects
from .voxels import Shape


def sample_head(
    rng: np.random.Generator,
    config: SyntheticConfig,
    anatomy_to_world: np.ndarray,
    fov_z_world: tuple[float, float],
    surgery_rng: np.random.Generator | None = None,
    atlas: bool = False,
) -> tuple[list[Shape], dict]:
    """Shapes of one head in painting order; also the pathology present, skull defects and dental metal positions.

    Skull defects are drawn from ``surgery_rng`` (none without it), so switching them on
    leaves the rest of the head as it was. ``atlas``: the cranial cavity is the MNI152 brain's
    (``cavity_prior``), whose taller vault the scalp is raised to cover.
    """
    vault = rng.uniform(*config.skull_thickness_mm)
    defects = sample_defects(surgery_rng, config, head.CAVITY_SEMI, vault) if surgery_rng is not None else []
    atrophy = rng.uniform(*config.atrophy)
    tortuosity = rng.uniform(*config.vessel_tortuosity)
    with_shoulders = bool(rng.random() < config.shoulders_prob)
    dental_metal = bool(rng.random() < config.dental_metal_prob)

    lift = float(load_prior().box[1][2]) - head.CAVITY_SEMI[2] if atlas else 0.0
    shapes: list[Shape] = face_neck.body(vault, rng.uniform(4.0, 8.0), with_shoulders, vault_lift_mm=lift)
    shapes += face_neck.airway_and_neck()
    shapes += face_neck.spine()
    shapes.append(
        head.Cranium(
            rng_state=int(rng.integers(2**31)),
            vault_mm=vault,
            base_mm=vault + rng.uniform(6.0, 12.0),
            csf_mm=1.0 + 2.5 * atrophy,
            sulcus_mm=0.5 + 1.5 * atrophy,
            fissure_mm=1.0 + 2.0 * atrophy,
            defects=tuple(defects),
            atlas=atlas,
        )
    )
    face_shapes, metal = face_neck.face(rng, dental_metal)
    shapes += face_shapes
    if with_shoulders:
        shapes += face_neck.shoulders()
    shapes += head.deep_structures(rng, atrophy)
    shapes += vessels.veins(rng, with_neck=True)
    shapes += vessels.arteries(rng, tortuosity, with_arch=True)

    pathology = {
        "hemorrhage": bool(rng.random() < config.hemorrhage_prob),
        "subdural": bool(rng.random() < config.subdural_prob),
        "infarct": bool(rng.random() < config.infarct_prob),
    }
    if pathology["infarct"]:
        shapes.append(extras.infarct(rng))
    if pathology["hemorrhage"]:
        shapes += extras.hemorrhage(rng)
    if pathology["subdural"]:
        shapes.append(extras.subdural(rng))
    if rng.random() < config.table_prob:
        centre = anatomy_to_world[:3, 3]
        radius = float(np.linalg.norm(anatomy_to_world[:3, 1])) * 100 + rng.uniform(8, 25)
        shapes.append(extras.HeadHolder(anatomy_to_world, centre, radius, fov_z_world))
    return shapes, {"pathology": pathology, "dental_metal": [m.tolist() for m in metal],
                    "skull_defects": [d.meta() for d in defects]}
