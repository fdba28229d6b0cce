"""From NIfTI files to batches: discovery, validation, projection, normalization, caching, loading."""

from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.errors import BadCaseError

__all__ = ["BadCaseError", "CaseRecord", "MipDataModule", "discover_cases"]


def __getattr__(name: str):
    # Imported on first use: the DataModule pulls in torch and Lightning (seconds and ~300 MiB),
    # which each preprocessing worker process would otherwise pay without needing them.
    if name == "MipDataModule":
        from brainseg.data.datamodule import MipDataModule

        return MipDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
