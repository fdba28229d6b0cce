"""Build the shipped models (``python scripts/release_models.py``): train each recipe, package the best checkpoint.

Per model (conf/release_models.yaml, ``models:``): compose the ``train`` config with the
recipe's overrides, exactly as ``python train.py <overrides>`` would, train it on the embedded
synthetic data into ``<run>/<name>/``, strip its best checkpoint to what inference reads
(the ``net.*`` weights and the ``brainseg`` section), score it on held-out synthetic cases as
``scripts/evaluate.py`` does, and record it in ``models.json`` (:mod:`brainseg.pretrained`).

The build is deterministic: the recipe's seed, the CPU trainer's deterministic algorithms, one
data-loading process and a fixed number of torch threads make the same weights, bit for bit,
on the same machine and versions; ``weights_sha256`` in ``models.json`` fingerprints them.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import platform
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from brainseg import pretrained
from brainseg.checkpoint import read_checkpoint
from brainseg.evaluation.evaluate import evaluate
from brainseg.synthetic import SyntheticConfig, synthesize_dataset
from brainseg.training.train import train

log = logging.getLogger(__name__)

TRAINING_SCORES = ("val/dice", "val/loss", "test/dice", "test/iou", "test/dice_baseline")
HELD_OUT_SCORES = ("dice/mean", "dice/min", "iou/mean", "hd95_mm/mean", "volume_difference_ml/mean", "cases", "cases_failed")


def compose_config(config_name: str, overrides: list[str], conf_dir: str | None = None) -> DictConfig:
    """A config composed as its entry point would compose it (inside a running Hydra app, or from ``conf_dir``)."""
    if GlobalHydra.instance().is_initialized():
        return compose(config_name=config_name, overrides=overrides)
    if conf_dir is None:
        raise ValueError("outside a Hydra app, give conf_dir (the repository's conf/ folder)")
    with initialize_config_dir(config_dir=str(Path(conf_dir).resolve()), version_base="1.3"):
        return compose(config_name=config_name, overrides=overrides)


def best_checkpoint(run: Path) -> Path:
    """The run's best checkpoint (``save_top_k=1``: the one that is not ``last.ckpt``)."""
    found = sorted(path for path in (run / "checkpoints").glob("*.ckpt") if not path.name.startswith("last"))
    if len(found) != 1:
        raise RuntimeError(f"{run / 'checkpoints'}: expected one best checkpoint, found {[p.name for p in found]}")
    return found[0]


def weights_sha256(state_dict: dict) -> str:
    """A fingerprint of the weights alone (names, dtypes, shapes and values), whatever file holds them."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def strip_checkpoint(source: Path, destination: Path) -> dict:
    """Write ``destination`` with only what inference reads; returns the stripped checkpoint."""
    checkpoint = read_checkpoint(source)
    stripped = {
        "state_dict": {name: value.clone() for name, value in checkpoint["state_dict"].items() if name.startswith("net.")},
        "brainseg": checkpoint["brainseg"],
    }
    destination.parent.mkdir(parents=True, exist_ok=True)
    torch.save(stripped, destination)  # same content and file name give the same bytes
    return stripped


def held_out_dataset(data_dir: Path, preset: str, n_cases: int, seed: int) -> Path:
    """Synthetic cases no model trained on, named as the generalization benchmark names them (and shared with it)."""
    root = Path(data_dir) / "synthetic" / f"{preset}-seed{seed}-n{n_cases}"
    synthesize_dataset(root, n_cases, seed, SyntheticConfig.preset(preset), progress=False)
    return root


def _figure(name: str, value) -> float | int:
    """A score rounded to 6 decimals; a count (``cases``, ``cases_failed``) as an integer."""
    return int(value) if name.startswith("cases") else round(float(value), 6)


def release_models(cfg: DictConfig) -> dict:
    """Train, strip, score and record every model of ``cfg.models`` (or ``cfg.only``); returns ``models.json``.

    ``cfg.output`` is the folder of the checkpoints and ``models.json`` (``null``: the installed
    package's ``brainseg/pretrained``). Models not rebuilt keep their entries.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(int(cfg.threads))
    try:
        return _release(cfg)
    finally:
        torch.set_num_threads(threads)


def _release(cfg: DictConfig) -> dict:
    folder = Path(cfg.output) if cfg.get("output") else pretrained.FOLDER
    names = list(cfg.only) if cfg.get("only") else list(cfg.models)
    unknown = sorted(set(names) - set(cfg.models))
    if unknown:
        raise ValueError(f"only: unknown model(s) {unknown}; known: {sorted(cfg.models)}")
    record = pretrained.registry(folder)
    run_dir, data_dir = Path(cfg.paths.output_dir), Path(cfg.paths.data_dir)
    held_out = cfg.held_out
    held_out_root = held_out_dataset(data_dir, held_out.preset, int(held_out.n_cases), int(held_out.seed))
    for name in names:
        recipe = list(cfg.models[name])
        started = time.perf_counter()
        train_cfg = compose_config("train", [*recipe, *cfg.run_overrides, f"paths.output_dir={run_dir / name}", f"paths.data_dir={data_dir}"], cfg.get("conf_dir"))
        log.info("%s: training `python train.py %s`", name, " ".join(recipe))
        metrics = train(train_cfg)
        train_seconds = time.perf_counter() - started
        best = best_checkpoint(run_dir / name)
        stripped = strip_checkpoint(best, folder / f"{name}.ckpt")
        scores = evaluate(compose_config("evaluate", [
            f"ckpt_path={folder / f'{name}.ckpt'}", f"data.root={held_out_root}", f"paths.output_dir={run_dir / name / 'held_out'}",
            f"paths.data_dir={data_dir}",
        ], cfg.get("conf_dir")))
        path = folder / f"{name}.ckpt"
        record["models"][name] = {
            "file": path.name,
            "sha256": pretrained.file_sha256(path),
            "weights_sha256": weights_sha256(stripped["state_dict"]),
            "bytes": path.stat().st_size,
            "mode": stripped["brainseg"]["preprocessing"]["mode"],
            "recipe": f"python train.py {' '.join(recipe)}".strip(),
            "overrides": recipe,
            "run_overrides": list(cfg.run_overrides),
            "seed": int(train_cfg.seed),
            "source_checkpoint": best.name,
            "epoch": int(read_checkpoint(best).get("epoch", -1)),
            "date": datetime.date.today().isoformat(),
            "training": {key: _figure(key, metrics[key]) for key in TRAINING_SCORES if key in metrics},
            "held_out": {
                "data": f"synthetic preset={held_out.preset} seed={held_out.seed} n={held_out.n_cases}",
                **{key: _figure(key, scores[key]) for key in HELD_OUT_SCORES if key in scores},
            },
            "train_seconds": round(train_seconds, 1),
            "built_with": {"torch": torch.__version__, "python": platform.python_version(), "threads": int(cfg.threads)},
        }
        log.info("%s: %s (%d bytes), held-out Dice %.4f", name, path, path.stat().st_size, scores["dice/mean"])
    record["models"] = dict(sorted(record["models"].items()))
    (folder / pretrained.REGISTRY).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({name: {"bytes": m["bytes"], "training": m["training"], "held_out": m["held_out"]} for name, m in record["models"].items()}, indent=2))
    return record
