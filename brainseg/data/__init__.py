"""From dataset folders to batches: discovery, validation, the MIP and slice representations,
caching, normalization, the training-inference preprocessing contract and the DataModules."""

from brainseg.data.discovery import CaseRecord, discover_cases

__all__ = ["CaseRecord", "discover_cases"]
