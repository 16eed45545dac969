"""Procedure-learning metrics (EgoProceL protocol) of discovered steps against true steps.

Per video: frame labels of the truth (steps and background) and of the prediction (discovered steps
and background) on one frame grid. Hungarian matching (maximum frame overlap) between the true classes
and the predicted classes, background included as a class on both sides. For every true step (not
background) of the video: precision = |matched prediction & step| / |matched prediction|, recall =
|matched prediction & step| / |step|, IoU = |intersection| / |union|; a step with no matched
prediction scores 0 on all three. P, R and IoU are averaged over the video's true steps, then over
videos; F1 = 2 P R / (P + R) of the averaged P and R (the EgoProceL definition). A video without any
true step is left out (it has nothing to recall). The pooled variant (ProceL / CrossTask) stacks the
frames of all videos of a task and matches once; its P, R and IoU are averaged over the task's steps.
Scores are fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKGROUND = -1


@dataclass(frozen=True)
class ProcedureScores:
    precision: float
    recall: float
    iou: float
    videos: int  # videos (or tasks, pooled) averaged over

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _classes(labels: np.ndarray) -> list:
    return sorted(set(labels.tolist()), key=str)


def match(pred: np.ndarray, true: np.ndarray) -> dict:
    """Hungarian matching true class -> predicted class maximising frame overlap (background included)."""
    from scipy.optimize import linear_sum_assignment

    pred, true = np.asarray(pred), np.asarray(true)
    tc, pc = _classes(true), _classes(pred)
    if not tc or not pc:
        return {}
    overlap = np.array([[np.sum((true == t) & (pred == p)) for p in pc] for t in tc])
    rows, cols = linear_sum_assignment(-overlap)
    return {tc[r]: pc[c] for r, c in zip(rows, cols) if overlap[r, c] > 0}


def step_scores(pred, true, background=BACKGROUND) -> list[tuple[float, float, float]]:
    """(precision, recall, IoU) of each true step (background excluded) after matching."""
    pred, true = np.asarray(pred), np.asarray(true)
    if pred.shape != true.shape:
        raise ValueError(f"prediction has {pred.shape[0]} frames, truth {true.shape[0]}")
    mapping = match(pred, true)
    out = []
    for t in _classes(true):
        if t == background:
            continue
        is_t = true == t
        if t not in mapping:
            out.append((0.0, 0.0, 0.0))
            continue
        is_p = pred == mapping[t]
        inter = float(np.sum(is_t & is_p))
        out.append((inter / is_p.sum(), inter / is_t.sum(), inter / np.sum(is_t | is_p)))
    return out


def _average(rows: list[list[tuple[float, float, float]]]) -> ProcedureScores:
    rows = [r for r in rows if r]
    if not rows:
        return ProcedureScores(0.0, 0.0, 0.0, 0)
    means = np.array([np.mean(r, axis=0) for r in rows])
    p, r, iou = means.mean(0)
    return ProcedureScores(float(p), float(r), float(iou), len(rows))


def procedure_scores(preds: list, trues: list, background=BACKGROUND) -> ProcedureScores:
    """Per-video matching, P / R / IoU averaged over each video's true steps, then over videos."""
    return _average([step_scores(p, t, background) for p, t in zip(preds, trues)])


def pooled_scores(preds: list, trues: list, background=BACKGROUND) -> ProcedureScores:
    """One matching over the stacked frames of all given videos (one task), averaged over its steps."""
    if not preds:
        return ProcedureScores(0.0, 0.0, 0.0, 0)
    return _average([step_scores(np.concatenate(preds), np.concatenate(trues), background)])
