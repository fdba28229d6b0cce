"""brainseg: brain segmentation in head CT angiography.

``brainseg.segment(path)``, ``brainseg.mip(path)``, ``brainseg.footprint(path)`` and
``brainseg.predict(input, output)``
(:mod:`brainseg.api`) predict with the shipped models; they are imported on first use, so
``import brainseg`` stays light.
"""

__all__ = ["segment", "mip", "footprint", "predict"]


def __getattr__(name: str):
    if name in __all__:
        from brainseg import api

        return getattr(api, name)
    raise AttributeError(f"module 'brainseg' has no attribute {name!r}")
