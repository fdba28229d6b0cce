"""From NIfTI files to batches: discovery, validation, projection, normalization, caching, loading."""

from brainseg.data.datamodule import MipDataModule
from brainseg.data.discovery import CaseRecord, discover_cases
from brainseg.data.nifti import BadCaseError

__all__ = ["BadCaseError", "CaseRecord", "MipDataModule", "discover_cases"]
