"""Online mistake detection metrics.

Step level (Assembly101-O protocol of "Differentiable Task Graph Learning", Seminara et al., NeurIPS
2024): every step of every scored sequence is one sample, labelled 1 (mistake) or 0 (correct), and
flagged 1 or 0 by the detector from the steps before it. Precision, recall and F1 are computed per
class and pooled over all steps of all sequences (class "correct": label 0 flagged 0 is a true
positive); "Avg F1" is the mean of the two classes' F1 (sklearn's macro average). Each score is 0
when its denominator is 0. Optional weights make a sample count w times (cross-validation's
simulated mistakes, procvid.mistakes.select).

Note on the published numbers: the DTGL code calls sklearn's precision_score(preds, gts) and
recall_score(preds, gts), i.e. with predictions and labels swapped, so its printed precision is the
recall and vice versa. F1 is symmetric in the two and unaffected. `published_view` returns the
numbers as that code prints them. Scores are fractions in [0, 1].

Recording level (CaptainCook4D, tools/bench_mistake.py): `tag_recall` is the share of performed
steps carrying an error tag (e.g. "Order Error") that the detector flags; `missing_recall` the share
of steps tagged "Missing Step" that the detector reports absent by the end of the recording (named as
a missing precondition of a later step, or unfinished at the end); false alarms are flags in
recordings without errors.
"""

from __future__ import annotations

import numpy as np


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def mistake_scores(labels, flags, weights=None) -> dict:
    """Per-class precision/recall/F1, Avg F1 and counts over pooled steps (module doc)."""
    y = np.asarray(labels, dtype=bool)
    f = np.asarray(flags, dtype=bool)
    if y.shape != f.shape:
        raise ValueError(f"{y.size} labels but {f.size} flags")
    w = np.ones(y.shape) if weights is None else np.asarray(weights, dtype=float)
    # the whole confusion table from five weighted sums (cross-validation calls this once per setting); a
    # difference that should be 0 sums the same elements twice, so it is exactly 0
    mistakes, flagged, hit = w[y].sum(), w[f].sum(), w[y & f].sum()
    counts = {"mistake": (hit, flagged - hit, mistakes - hit, mistakes),  # tp, fp, fn, support
              "correct": (w[~y & ~f].sum(), mistakes - hit, flagged - hit, w[~y].sum())}
    out = {}
    for name in ("correct", "mistake"):
        tp, fp, fn, support = counts[name]
        p, r = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        out[name] = {"precision": p, "recall": r, "f1": _ratio(2 * p * r, p + r), "support": float(support)}
    out["avg_f1"] = (out["correct"]["f1"] + out["mistake"]["f1"]) / 2
    out["steps"] = int(y.size)
    out["flagged"] = int(f.sum())
    return out


def published_view(scores: dict) -> dict:
    """The scores as the DTGL code prints them: precision and recall exchanged in each class."""
    out = dict(scores)
    for name in ("correct", "mistake"):
        s = scores[name]
        out[name] = {**s, "precision": s["recall"], "recall": s["precision"]}
    return out


def format_scores(scores: dict) -> str:
    """One line: Avg F1 and each class's P/R/F1, in percent."""
    c, m = scores["correct"], scores["mistake"]
    return (f"Avg F1 {100 * scores['avg_f1']:.1f} | correct P {100 * c['precision']:.1f} R {100 * c['recall']:.1f} "
            f"F1 {100 * c['f1']:.1f} | mistake P {100 * m['precision']:.1f} R {100 * m['recall']:.1f} "
            f"F1 {100 * m['f1']:.1f} | {scores['steps']} steps, {scores['flagged']} flagged")


def tag_recall(videos, flags: dict, tag: str) -> tuple[int, int]:
    """(flagged, total) performed steps carrying `tag`; flags: video id -> per-step flags."""
    hit = total = 0
    for video in videos:
        for segment, flag in zip(video.segments, flags.get(video.video_id, [])):
            if tag in segment.errors:
                total += 1
                hit += bool(flag)
    return hit, total


def missing_recall(videos, absent: dict, tag: str = "Missing Step") -> tuple[int, int]:
    """(reported, total) not-performed steps tagged `tag`; absent: video id -> steps the detector
    reported missing by the end of the recording."""
    hit = total = 0
    for video in videos:
        for step, tags in video.meta.get("missing_errors", {}).items():
            if tag in tags:
                total += 1
                hit += step in absent.get(video.video_id, ())
    return hit, total
