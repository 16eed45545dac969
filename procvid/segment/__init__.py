"""Key-step boundary detectors behind one interface (see :mod:`procvid.segment.base`).

    from procvid.segment import get_detector
    segments = get_detector("uvd", min_segment_s=4.0).detect(X, timestamps)          # unknown K
    segments = get_detector("kcpd").detect(X, timestamps, num_segments=7)             # known K

To add a detector, subclass :class:`Detector` as a dataclass and add one line to DETECTORS
(name -> "module:Class"); modules are imported on first use, so heavy dependencies of one
detector do not slow down the others.
"""

from __future__ import annotations

import dataclasses
import importlib

from procvid.errors import ProcvidError
from procvid.segment.base import Detector, Segment, make_segments

DETECTORS: dict[str, str] = {
    "uvd": "procvid.segment.uvd:UVDDetector",
    "novelty": "procvid.segment.baselines:NoveltyDetector",
    "kcpd": "procvid.segment.baselines:KernelCPDDetector",
    "uniform": "procvid.segment.baselines:UniformDetector",
    "sbd": "procvid.segment.sbd:SBDDetector",
}


def detector_class(name: str) -> type[Detector]:
    if name not in DETECTORS:
        raise ProcvidError(f"unknown detector {name!r}; choose from {', '.join(sorted(DETECTORS))}")
    module, attr = DETECTORS[name].split(":")
    return getattr(importlib.import_module(module), attr)


def get_detector(name: str, **params) -> Detector:
    """A detector by registry name with its parameters (unknown parameters are an error)."""
    cls = detector_class(name)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - known)
    if unknown:
        raise ProcvidError(
            f"unknown parameter(s) for detector {name!r}: {', '.join(unknown)}; "
            f"expected: {', '.join(sorted(known))}"
        )
    return cls(**params)


__all__ = ["DETECTORS", "Detector", "Segment", "detector_class", "get_detector", "make_segments"]
