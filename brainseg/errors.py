"""The errors brainseg expects: each one's message is one line that says what is wrong and where.

They live here, below every other module, so that any stage can raise them and the entry
points (:mod:`brainseg.cli`) can turn them into one line without importing the stages. Each
survives a trip through ``pickle`` intact, as it must when a worker process raises it.
"""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key and the reason."""


class BadCaseError(ValueError):
    """A file or case that cannot be used; ``str()`` is one line naming the file and the problem."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")

    def __reduce__(self):
        # Exceptions unpickle as ``cls(*self.args)``, and ``args`` holds the one formatted message.
        return type(self), (self.path, self.problem)


class BadCheckpointError(BadCaseError):
    """A checkpoint that cannot be used (not weights-only, not brainseg's, wrong weights); one line."""


class BadDatasetError(RuntimeError):
    """Raised under ``on_bad_case=fail``; the message lists each bad file on its own line."""
