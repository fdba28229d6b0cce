"""What every entry point shares: expected failures end in one clear line, not a traceback."""

from __future__ import annotations

import logging
import sys

from brainseg.config import ConfigError
from brainseg.data.nifti import BadCaseError
from brainseg.data.preparation import BadDatasetError
from brainseg.sweeps import in_multirun

log = logging.getLogger("brainseg")

# Errors whose message says all a user needs; anything else is a bug and keeps its traceback.
EXPECTED_ERRORS = (BadCaseError, BadDatasetError, ConfigError, FileNotFoundError)


def run_safely(function, *args, **kwargs):
    """Call ``function``; on an expected error print its message and exit with status 1."""
    try:
        return function(*args, **kwargs)
    except EXPECTED_ERRORS as error:
        log.error("%s", error)
        if in_multirun():
            raise  # Hydra records the job as failed and the sweep goes on; sys.exit would end the sweep
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
