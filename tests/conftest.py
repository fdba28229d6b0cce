"""Shared fixtures: tiny NIfTI phantoms written on the fly, and the real composed config, shrunk."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@pytest.fixture(autouse=True)
def seeded_torch():
    """Every test starts from the same torch RNG state: random weights and inputs never make a test flaky."""
    import torch

    torch.manual_seed(0)


def write_nifti(path: Path, array: np.ndarray, affine: np.ndarray | None = None, slope=None, inter=None) -> Path:
    """Write ``array`` as NIfTI (sform and qform = ``affine``), creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    image = nib.Nifti1Image(array, np.eye(4) if affine is None else affine)
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    nib.save(image, path)
    if slope is not None:  # as scanners write it: raw stored values plus scl_slope/scl_inter
        raw = gzip.decompress(path.read_bytes()) if path.name.endswith(".gz") else path.read_bytes()
        raw = raw[:112] + struct.pack("<ff", slope, inter or 0.0) + raw[120:]
        path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)
    return path


def phantom(shape=(24, 20, 16), seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A head-like int16 HU volume (air, skull shell, brain with a bright vessel) and its mask."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt(((grid / np.array([0.9, 0.8, 0.9])[:, None, None, None]) ** 2).sum(0))
    image = np.full(shape, -1000, np.int16)
    image[radius < 1.0] = 1200  # skull
    brain = radius < 0.8
    image[brain] = 35 + rng.integers(-5, 5, brain.sum())
    image[shape[0] // 2, shape[1] // 2, :] = 300  # a vessel running along z
    return image, brain.astype(np.uint8)


def make_dataset(root: Path, layout: str = "cta", n: int = 3, shape=(24, 20, 16)) -> Path:
    """A dataset folder of ``n`` phantoms in the 'cta' or 'nnunet' layout."""
    affine = np.diag([0.8, 0.8, 2.0, 1.0])
    for i in range(n):
        image, mask = phantom(shape, seed=i)
        if layout == "cta":
            write_nifti(root / "CTA images" / f"case{i:02d}.nii.gz", image, affine)
            write_nifti(root / "brain masks" / f"case{i:02d}_ROI.nii.gz", mask, affine)
        else:
            write_nifti(root / "imagesTr" / f"case{i:02d}_0000.nii.gz", image, affine)
            write_nifti(root / "labelsTr" / f"case{i:02d}.nii.gz", mask, affine)
    return root


def compose_config(overrides: list[str], tmp_path: Path, config_name: str = "train") -> DictConfig:
    """The real config, composed as `python train.py` would, with run outputs under ``tmp_path``."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=overrides)
    with open_dict(cfg):
        cfg.paths.output_dir = str(tmp_path / "run")
        cfg.paths.data_dir = str(tmp_path / "data")
    return cfg


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A small synthetic dataset shared by the training tests (generated once per session)."""
    from brainseg.synthetic import synthesize_dataset

    root = tmp_path_factory.mktemp("synthetic")
    synthesize_dataset(root, n=16, seed=123, progress=False)
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory) -> Path:
    """A tiny U-Net trained once per session (10 phantoms, 32 px, 2 epochs, a few seconds).

    Returns its run folder: ``checkpoints/{best,last}.ckpt``, ``split.json``, ``data_report.json``,
    ``metrics.json``; the dataset is ``<run>/../dataset``.
    """
    from brainseg.training.train import train

    tmp = tmp_path_factory.mktemp("trained_run")
    dataset = make_dataset(tmp / "dataset", n=10, shape=(40, 36, 10))
    overrides = [
        "data=folder", f"data.root={dataset}", f"data.cache_dir={tmp / 'cache'}", "data.image_size=32",
        "data.batch_size=4", "model.net.channels=[4,8]", "trainer.max_epochs=2", "logger=csv",
        "callbacks.validation_panel=null", "callbacks.progress_bar=null",
    ]
    cfg = compose_config(overrides, tmp)
    train(cfg)
    return Path(cfg.paths.output_dir)
