"""Key-step boundary detectors behind one interface (see :mod:`procvid.segment.base`).

    from procvid.segment import get_detector
    segments = get_detector("uvd", min_segment_s=4.0).detect(X, timestamps)          # unknown K
    segments = get_detector("kcpd").detect(X, timestamps, num_segments=7)             # known K

To add a detector, subclass :class:`Detector` as a dataclass, decorate it with
`@DETECTORS.register(name, description)` (procvid.registry) and add its module to DETECTORS' modules;
a detector's module is imported on first use, so heavy dependencies of one detector do not slow down
the others. `procvid list detectors` lists them.
"""

from __future__ import annotations

from procvid.segment.base import Detector, Segment, detector_class, get_detector, make_segments


__all__ = ["Detector", "Segment", "detector_class", "get_detector", "make_segments"]
