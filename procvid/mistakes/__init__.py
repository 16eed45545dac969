"""Online mistake detection against graph scripts: each new step is judged from the steps before it.

* base.py: the interface (Detector.check(task, done, step) -> Verdict(flag, score, reason, steps)),
  reasons, settings, per-step labels of annotated videos (StepSegment.errors).
* precondition.py: the published precondition rule on a graph from any induction method ("precondition").
* probability.py: flag a step whose next-step probability is below a threshold ("probability").
* select.py: settings chosen by cross-validation on mistake-free training sequences only.
* batch.py: the stage (`procvid mistakes` over datasets, the grounded paths of `procvid run`).

`procvid list mistake-detectors` lists the detectors (procvid.registry.MISTAKES).
"""

from procvid.mistakes.base import REASONS, Detector, Verdict, labels_of

__all__ = ["REASONS", "Detector", "Verdict", "labels_of", "get_detector"]


def get_detector(name: str):
    """The detector class registered as `name` (procvid.registry.MISTAKES)."""
    from procvid.registry import MISTAKES

    return MISTAKES.get(name)
