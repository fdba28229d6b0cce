"""What every entry point shares: expected failures end in one clear line, not a traceback."""

from __future__ import annotations

import logging
import re
import sys

from hydra.errors import InstantiationException

from brainseg.errors import BadCaseError, BadDatasetError, ConfigError
from brainseg.training.sweeps import in_multirun

log = logging.getLogger("brainseg")

# Errors whose message says all a user needs; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (BadCaseError, BadDatasetError, ConfigError, FileNotFoundError)


def run_safely(function, *args, **kwargs):
    """Call ``function``; on an expected error print its message and exit with status 1."""
    try:
        return function(*args, **kwargs)
    except (*EXPECTED_ERRORS, InstantiationException) as error:
        message = expected_message(error)
        if message is None:
            raise  # a bug: keep its traceback
        log.error("%s", message)
        if in_multirun():
            raise  # Hydra records the job as failed and the sweep goes on; sys.exit would end the sweep
        print(f"error: {message}", file=sys.stderr)
        sys.exit(1)


def expected_message(error: BaseException) -> str | None:
    """The message of an expected error, else ``None``. A constructor refusing a config value
    (a ValueError inside Hydra's ``instantiate``) is expected too, shown with its config key."""
    if isinstance(error, EXPECTED_ERRORS):
        return str(error)
    cause = error.__cause__
    if not isinstance(error, InstantiationException) or not isinstance(cause, (*EXPECTED_ERRORS, ValueError)):
        return None
    key = re.search(r"full_key: (\S+)", str(error))
    return f"{key.group(1)}: {cause}" if key and not str(cause).startswith(key.group(1)) else str(cause)
