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
    """Raised under ``on_bad_case=fail``; the message lists each bad file on its own line.

    Args:
        bad_files: file -> one-line reason, for every file left out.
    """

    def __init__(self, bad_files: dict[str, str]):
        self.bad_files = dict(bad_files)
        lines = "\n".join(f"  {path}: {reason}" for path, reason in self.bad_files.items())
        super().__init__(f"{len(self.bad_files)} bad file(s) under data.on_bad_case=fail:\n{lines}")

    def __reduce__(self):
        return type(self), (self.bad_files,)


class WorkerError(RuntimeError):
    """An unexpected error in a worker process whose exception does not survive pickling, so it
    cannot cross back as itself: its type, message and the worker's traceback, as text. A bug,
    not a bad case: it is not one of the expected errors, and keeps the worker's traceback."""

    def __init__(self, kind: str, message: str, traceback: str, task: str = ""):
        self.kind, self.message, self.traceback, self.task = kind, message, traceback, task
        where = f" (in a worker process, on {task})" if task else " (in a worker process)"
        super().__init__(f"{kind}: {message}{where}\n\nThe worker's traceback:\n{traceback}")

    def __reduce__(self):
        return type(self), (self.kind, self.message, self.traceback, self.task)
