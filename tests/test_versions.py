"""The installed dependencies meet pyproject.toml's floors (and ceilings): a run on versions the
project does not support fails here, by name, rather than somewhere deep in training.

Reads ``[project] dependencies`` only; installs nothing.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: pytest brings tomli there
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def requirements(pyproject: Path = PYPROJECT) -> list[Requirement]:
    """``[project] dependencies`` that apply to this interpreter and platform (environment markers)."""
    with open(pyproject, "rb") as file:
        listed = tomllib.load(file)["project"]["dependencies"]
    return [req for req in map(Requirement, listed) if req.marker is None or req.marker.evaluate()]


def unmet(requirement: Requirement) -> str | None:
    """Why the installed distribution does not satisfy ``requirement``, or ``None`` when it does."""
    try:
        installed = version(requirement.name)
    except PackageNotFoundError:
        return f"{requirement.name} is not installed (needs {requirement})"
    # prereleases=True: a nightly or release candidate above the floor (torch 2.14.0.dev...) meets it
    if not requirement.specifier.contains(installed, prereleases=True):
        return f"{requirement.name} {installed} is installed; pyproject.toml needs {requirement}"
    return None


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_the_installed_version_meets_pyproject(requirement):
    problem = unmet(requirement)
    assert problem is None, problem


def test_pyproject_lists_the_core_dependencies():
    names = {req.name for req in requirements()}
    assert {"torch", "pytorch-lightning", "torchmetrics", "hydra-core", "omegaconf", "numpy"} <= names


def test_an_unmet_floor_is_reported_with_both_versions():
    installed = version("numpy")
    assert unmet(Requirement("numpy>=999")) == f"numpy {installed} is installed; pyproject.toml needs numpy>=999"
    assert unmet(Requirement(f"numpy<={installed}")) is None


def test_a_ceiling_a_local_build_and_a_missing_package():
    assert unmet(Requirement("torch<0.1")) is not None
    assert unmet(Requirement(f"torch=={version('torch')}")) is None  # e.g. 2.13.0+cpu: a local version label
    assert "is not installed" in unmet(Requirement("brainseg-no-such-package>=1"))
