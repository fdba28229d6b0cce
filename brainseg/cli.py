"""What every entry point shares: expected failures end in one clear line, not a traceback."""

from __future__ import annotations

import logging
import re
import sys

from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from omegaconf.errors import MissingMandatoryValue

from brainseg.errors import BadCaseError, BadDatasetError, ConfigError
from brainseg.training.config import in_multirun

log = logging.getLogger("brainseg")

# Errors whose message says all a user needs; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (BadCaseError, BadDatasetError, ConfigError, FileNotFoundError)

# Lightning's refusals of an accelerator that this machine lacks (accelerator=gpu, cuda, mps).
_NO_ACCELERATOR = re.compile(r"No supported (gpu) backend found|`(\w+?)Accelerator` can not run on your system", re.I)
_ABOUT_DEVICES = re.compile(r"accelerator|devices|\b(gpu|cuda|mps|tpu|hpu)\b|backend", re.I)
_NEEDS = {"gpu": "a CUDA GPU", "cuda": "a CUDA GPU", "mps": "an Apple GPU (MPS)"}
_USE_CPU = "use trainer=cpu (or trainer=auto)"


def run_safely(function, *args, **kwargs):
    """Call ``function``; on an expected error print its message and exit with status 1."""
    try:
        return function(*args, **kwargs)
    except (*EXPECTED_ERRORS, InstantiationException, MissingMandatoryValue) as error:
        message = expected_message(error)
        if message is None:
            raise  # a bug: keep its traceback
        log.error("%s", message)
        if in_multirun():
            raise  # Hydra records the job as failed and the sweep goes on; sys.exit would end the sweep
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def expected_message(error: BaseException) -> str | None:
    """The message of an expected error, else ``None``. Expected too, inside Hydra's ``instantiate``:
    a constructor refusing a config value (a ValueError, shown with its config key), and Lightning's
    Trainer refusing its accelerator or devices. A mandatory value (``???``) left unset anywhere is
    shown with the key to add to the command."""
    if isinstance(error, MissingMandatoryValue):
        return missing_value_message(error)
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    if not isinstance(error, InstantiationException):
        return None
    cause = error.__cause__
    key = re.search(r"full_key: (\S+)", str(error))
    if isinstance(cause, MissingMandatoryValue):
        return missing_value_message(cause)
    if key and key.group(1).split(".")[0] == "trainer" and _is_lightning_misconfiguration(cause):
        return trainer_message(cause)
    if not isinstance(cause, (*EXPECTED_ERRORS, ValueError)):
        return None
    return f"{key.group(1)}: {cause}" if key and not str(cause).startswith(key.group(1)) else str(cause)


def missing_value_message(error: MissingMandatoryValue) -> str:
    """``ckpt_path is required: add ckpt_path=PATH to the command`` for a ``???`` left unset."""
    key = getattr(error, "full_key", None) or getattr(error, "key", None)
    if not key:
        found = re.search(r"Missing mandatory value: (\S+)", str(error))
        key = found.group(1) if found else None
    if not key:
        return "a required config value is missing: " + " ".join(str(error).split())
    placeholder = "PATH" if re.search(r"(path|root|dir|file|input)$", str(key)) else "VALUE"
    return f"{key} is required: add {key}={placeholder} to the command"


def trainer_message(cause: BaseException) -> str:
    """One line for Lightning's refusal of the trainer config, naming what chose it and what to type."""
    text = " ".join(str(cause).split()).rstrip(".!")
    chosen = _trainer_choice()
    absent = _NO_ACCELERATOR.search(text)
    if absent:
        accelerator = (absent.group(1) or absent.group(2)).lower()
        needs = _NEEDS.get(accelerator, f"the {accelerator} accelerator")
        return f"{chosen} needs {needs}, and none is available here; {_USE_CPU}"
    if _ABOUT_DEVICES.search(text):
        return f"{chosen}: {text}; {_USE_CPU}"
    return f"trainer: {text}"


def _trainer_choice() -> str:
    """How this run chose its trainer's hardware: the command line's overrides of it (``trainer=gpu``,
    ``trainer.devices=2``), else the config group option in effect (``trainer=gpu`` from an experiment)."""
    if not HydraConfig.initialized():
        return "the trainer config"
    hydra = HydraConfig.get()
    hardware = r"[+~]*trainer(\.(accelerator|devices|strategy|num_nodes))?="
    typed = [override.lstrip("+~") for override in hydra.overrides.task if re.match(hardware, override)]
    if typed:
        return " ".join(typed)
    option = hydra.runtime.choices.get("trainer")
    return f"trainer={option}" if option else "the trainer config"


def _is_lightning_misconfiguration(error: BaseException | None) -> bool:
    # Looked up, not imported: the entry points that never build a trainer need not import Lightning.
    module = sys.modules.get("lightning_fabric.utilities.exceptions")
    return module is not None and isinstance(error, module.MisconfigurationException)
