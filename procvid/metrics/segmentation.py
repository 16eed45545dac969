"""Temporal segmentation metrics for key-step detection, with the field's definitions.

Inputs. Every metric accepts, for the prediction and the ground truth alike, either

* a per-frame label sequence (one label per sampled frame; any hashable labels), or
* a segment list: :class:`procvid.segment.Segment` objects, ``(start, end)`` or
  ``(start, end, label)`` tuples, or dicts with ``start``/``end``/``label`` (seconds),
  which are painted onto the frame grid given by ``timestamps`` (:func:`frame_labels`).

Segment lists are sorted by start time (NIV, for one, ships unsorted annotations); where two
segments overlap the later-starting one takes the shared frames. A frame covered by no
segment gets the ``background`` label. Unlabeled segments (``label`` None or 2-tuples) are
labeled by their rank, which is what the Hungarian matching below expects of detector output.
An empty list means "no segments": every frame is background.

Background. Frames labeled ``background`` (default ``"background"``) are not steps: they never
form segments for F1/Edit/segment counts (MS-TCN's ``bg_class``). MoF counts every frame by
default, background included as one more class (like SIL in Breakfast); with
``ignore_background=True`` frames whose true label is background are left out of MoF and of
the matching (the usual YouTube-Instructions protocol).

Hungarian matching (``hungarian=True``, the default, for unlabeled predictions): per video,
predicted labels are mapped one-to-one to true labels by ``scipy.optimize.linear_sum_assignment``
on the frame-overlap matrix, maximising the number of agreeing frames; pairs that share no
frame are not mapped. Unmapped predicted labels get labels of their own, so their frames count
as wrong and their segments as false positives/insertions. A predicted label mapped to
background becomes background. MoF, F1@k and Edit all use this one mapping; pass
``hungarian=False`` for predictions that carry the ground truth's label vocabulary.

Boundaries are the times where the per-frame label changes (the video's start and end never
are), taken before any label mapping; they are matched one-to-one within a tolerance
(:func:`boundary_prf`). Segment counts are numbers of non-background runs; the count error is
predicted minus true.

Scales: MoF, Edit and F1@k are percentages (0..100) as in MS-TCN/ASFormer tables; boundary
precision/recall/F1 are fractions (0..1). Whenever a ratio has a zero denominator because
both sides are empty (no segments or boundaries in prediction nor truth) the score is perfect
(MS-TCN's script would report 0 or divide by zero there); if only one side is empty it is 0.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from procvid.errors import ProcvidError

BACKGROUND = "background"
DEFAULT_OVERLAPS = (0.1, 0.25, 0.5)


# ---------------------------------------------------------------------------- inputs


def frame_labels(segments, timestamps, background: Hashable = BACKGROUND) -> np.ndarray:
    """Per-frame labels (object array) of a segment list on the time grid ``timestamps``.

    Frame i belongs to a segment when ``start <= timestamps[i] < end``.
    """
    t = _timestamps(timestamps)
    spans = sorted((_span(s) for s in segments), key=lambda span: span[:2])
    labels = np.full(len(t), background, dtype=object)
    for rank, (start, end, label) in enumerate(spans):
        i0, i1 = np.searchsorted(t, [start, end], side="left")
        labels[i0:i1] = rank if label is None else label
    return labels


def boundary_times(x, timestamps=None, background: Hashable = BACKGROUND) -> np.ndarray:
    """Times at which the per-frame label changes (the time of the first frame after the change).

    The video's start and end are never boundaries; a step bordered by background has a
    boundary at both ends. Without ``timestamps`` times are frame indices.
    """
    labels, t = _grid_labels(x, timestamps, background)
    return _change_times(_encode([labels], background)[0][0], t)


def num_segments(x, timestamps=None, background: Hashable = BACKGROUND) -> int:
    """Number of non-background segments (runs of one label) on the frame grid."""
    labels, _ = _grid_labels(x, timestamps, background)
    return len(_runs(_encode([labels], background)[0][0])[0])


def _span(s) -> tuple[float, float, Hashable]:
    if hasattr(s, "start") and hasattr(s, "end"):
        start, end, label = s.start, s.end, getattr(s, "label", None)
    elif isinstance(s, dict):
        start, end, label = s.get("start"), s.get("end"), s.get("label")
    elif isinstance(s, (tuple, list)) and len(s) in (2, 3):
        start, end, label = s[0], s[1], (s[2] if len(s) == 3 else None)
    else:
        raise ProcvidError(
            f"cannot read a segment from {s!r}; expected (start, end[, label]), a dict or a Segment"
        )
    try:
        start, end = float(start), float(end)
    except (TypeError, ValueError):
        raise ProcvidError(f"segment {s!r}: start and end must be numbers") from None
    if not (np.isfinite(start) and np.isfinite(end) and end > start):
        raise ProcvidError(f"segment {s!r}: need finite start < end")
    return start, end, label


def _timestamps(timestamps) -> np.ndarray:
    if timestamps is None:
        raise ProcvidError("segment lists need the frame timestamps to be compared frame by frame")
    t = np.asarray(timestamps, dtype=np.float64)
    if t.ndim != 1 or len(t) == 0 or not np.isfinite(t).all() or (np.diff(t) <= 0).any():
        raise ProcvidError("timestamps must be a non-empty 1-D, finite, strictly increasing array")
    return t


def _is_segment_list(x) -> bool:
    if isinstance(x, np.ndarray):
        return False
    if len(x) == 0:
        return True
    first = x[0]
    return (hasattr(first, "start") and hasattr(first, "end")) or isinstance(first, (dict, tuple, list))


def _grid_labels(x, timestamps, background) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame labels of one input and its time grid (frame indices when no timestamps)."""
    if _is_segment_list(x):
        t = _timestamps(timestamps)
        return frame_labels(x, t, background), t
    labels = np.asarray(x, dtype=object)
    if labels.ndim != 1 or len(labels) == 0:
        raise ProcvidError(f"per-frame labels must be a non-empty 1-D sequence, got shape {labels.shape}")
    t = np.arange(len(labels), dtype=np.float64) if timestamps is None else _timestamps(timestamps)
    if len(t) != len(labels):
        raise ProcvidError(f"{len(labels)} frame labels but {len(t)} timestamps")
    return labels, t


def _encode(label_arrays: Sequence[np.ndarray], background) -> tuple[list[np.ndarray], dict]:
    """Map labels to integer codes shared by all arrays; background -> -1."""
    vocab: dict = {}
    out = []
    for labels in label_arrays:
        codes = np.empty(len(labels), dtype=np.int64)
        for i, label in enumerate(labels):
            codes[i] = -1 if label == background else vocab.setdefault(label, len(vocab))
        out.append(codes)
    return out, vocab


def _prepare(pred, true, timestamps, background):
    """Codes of prediction and truth on one frame grid, the grid, and the label vocabulary."""
    pred_labels, t = _grid_labels(pred, timestamps, background)
    true_labels, _ = _grid_labels(true, timestamps, background)
    if len(pred_labels) != len(true_labels):
        raise ProcvidError(f"prediction has {len(pred_labels)} frames but ground truth has {len(true_labels)}")
    (p, g), vocab = _encode([pred_labels, true_labels], background)
    return p, g, t, vocab


def _change_times(codes: np.ndarray, t: np.ndarray) -> np.ndarray:
    return t[1:][codes[1:] != codes[:-1]]


# ---------------------------------------------------------------------------- matching


def _hungarian(pred: np.ndarray, true: np.ndarray, ignore_background: bool) -> np.ndarray:
    """Relabel predicted codes with the true codes that maximise frame agreement (one-to-one)."""
    p_ids = np.unique(pred[pred >= 0])
    g_ids = np.unique(true[true >= 0] if ignore_background else true)
    fresh = max(pred.max(initial=-1), true.max(initial=-1)) + 1
    mapping = np.full(len(p_ids), -2, dtype=np.int64)
    if len(p_ids) and len(g_ids):
        frames = pred >= 0
        if ignore_background:
            frames &= true >= 0
        pi = np.searchsorted(p_ids, pred[frames])
        gi = np.searchsorted(g_ids, true[frames])
        shape = (len(p_ids), len(g_ids))
        overlap = np.bincount(pi * len(g_ids) + gi, minlength=shape[0] * shape[1]).reshape(shape)
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        shared = overlap[rows, cols] > 0
        mapping[rows[shared]] = g_ids[cols[shared]]
    unmapped = mapping == -2
    mapping[unmapped] = fresh + np.arange(unmapped.sum())
    out = pred.copy()
    step = pred >= 0
    out[step] = mapping[np.searchsorted(p_ids, pred[step])]
    return out


def _mapped(pred, true, timestamps, background, hungarian: bool, ignore_background: bool):
    p, g, _, _ = _prepare(pred, true, timestamps, background)
    return (_hungarian(p, g, ignore_background) if hungarian else p), g


def hungarian_mapping(
    pred, true, timestamps=None, *, background: Hashable = BACKGROUND, ignore_background: bool = False
) -> dict:
    """The predicted-label -> true-label mapping the metrics use (unmapped labels are left out)."""
    p, g, _, vocab = _prepare(pred, true, timestamps, background)
    names = {code: label for label, code in vocab.items()}
    names[-1] = background
    pairs = set(zip(p.tolist(), _hungarian(p, g, ignore_background).tolist()))
    return {names[a]: names[b] for a, b in pairs if a >= 0 and b in names}


# ---------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class BoundaryScores:
    """Boundary detection within a tolerance; precision/recall/f1 are fractions in [0, 1]."""

    matched: int
    num_pred: int
    num_true: int

    @property
    def precision(self) -> float:
        return _ratio(self.matched, self.num_pred, self.num_true)

    @property
    def recall(self) -> float:
        return _ratio(self.matched, self.num_true, self.num_pred)

    @property
    def f1(self) -> float:
        return _f1(self.matched, self.num_pred, self.num_true)


def boundary_prf(pred_times, true_times, tolerance: float) -> BoundaryScores:
    """Boundary precision/recall/F1: a predicted boundary is correct if it is matched to a true
    boundary at most ``tolerance`` seconds away, one-to-one (each true boundary is matched at most
    once). Inputs are boundary times (e.g. from :func:`boundary_times`), sorted here; the video's
    start and end should not be included.

    The matching has maximum cardinality: with one tolerance for all boundaries, walking both
    sorted lists and pairing the earliest compatible boundaries is optimal (no Hungarian needed).
    """
    p = np.sort(np.asarray(pred_times, dtype=np.float64).ravel())
    g = np.sort(np.asarray(true_times, dtype=np.float64).ravel())
    if not (np.isfinite(p).all() and np.isfinite(g).all()):
        raise ProcvidError("boundary times must be finite")
    if tolerance < 0:
        raise ProcvidError(f"tolerance must be >= 0 seconds, got {tolerance}")
    i = j = matched = 0
    while i < len(p) and j < len(g):
        if abs(p[i] - g[j]) <= tolerance:
            matched += 1
            i += 1
            j += 1
        elif g[j] < p[i]:
            j += 1
        else:
            i += 1
    return BoundaryScores(matched=matched, num_pred=len(p), num_true=len(g))


def _runs(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-background runs of equal codes as (labels, starts, ends), ends exclusive (MS-TCN's
    get_labels_start_end_time)."""
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [len(codes)]])
    labels = codes[starts]
    step = labels >= 0
    return labels[step], starts[step], ends[step]


def _frame_counts(p: np.ndarray, g: np.ndarray, ignore_background: bool) -> tuple[int, int, bool]:
    """(correct frames, evaluated frames, whether the prediction has step frames)."""
    frames = g >= 0 if ignore_background else np.ones(len(g), dtype=bool)
    return int((p[frames] == g[frames]).sum()), int(frames.sum()), bool((p >= 0).any())


def _mof(correct: int, total: int, pred_has_steps: bool) -> float:
    if total == 0:
        return 0.0 if pred_has_steps else 100.0
    return 100.0 * correct / total


def _edit(p: np.ndarray, g: np.ndarray) -> float:
    """MS-TCN segmental edit score: (1 - Levenshtein(P, Y) / max(|P|, |Y|)) * 100 on the run
    label sequences without background."""
    a, b = _runs(p)[0], _runs(g)[0]
    if max(len(a), len(b)) == 0:
        return 100.0
    # Row-by-row DP; the within-row insertion chain is a running minimum of (value - index).
    row = np.arange(len(b) + 1, dtype=np.int64)
    idx = np.arange(len(b) + 1)
    for i, label in enumerate(a, start=1):
        best = np.empty_like(row)
        best[0] = i
        best[1:] = np.minimum(row[1:] + 1, row[:-1] + (b != label))
        row = np.minimum.accumulate(best - idx) + idx
    return float((1.0 - row[-1] / max(len(a), len(b))) * 100.0)


def _f1_counts(p: np.ndarray, g: np.ndarray, overlap: float) -> tuple[int, int, int]:
    """MS-TCN segmental F1 counts at an IoU threshold: predicted segments in time order each take
    the same-label true segment of highest IoU (the first on ties); it is a true positive if that
    IoU >= ``overlap`` and the true segment is not yet taken, else a false positive."""
    pl, ps, pe = _runs(p)
    gl, gs, ge = _runs(g)
    hits = np.zeros(len(gl), dtype=bool)
    tp = fp = 0
    for label, s, e in zip(pl, ps, pe):
        if len(gl) == 0:
            fp += 1
            continue
        inter = np.minimum(e, ge) - np.maximum(s, gs)
        union = np.maximum(e, ge) - np.minimum(s, gs)
        iou = inter / union * (gl == label)
        k = int(np.argmax(iou))
        if iou[k] >= overlap and not hits[k]:
            tp += 1
            hits[k] = True
        else:
            fp += 1
    return tp, fp, len(gl) - int(hits.sum())


def _ratio(num: int, den: int, other: int) -> float:
    if den == 0:
        return 1.0 if other == 0 else 0.0
    return num / den


def _f1(tp: int, num_pred: int, num_true: int) -> float:
    if num_pred == 0 or num_true == 0:
        return 1.0 if num_pred == num_true == 0 else 0.0
    precision, recall = tp / num_pred, tp / num_true
    return 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)


def mof(
    pred, true, timestamps=None, *, hungarian: bool = True, ignore_background: bool = False,
    background: Hashable = BACKGROUND,
) -> float:
    """Mean over frames: the percentage of frames whose (mapped) predicted label is the true one."""
    p, g = _mapped(pred, true, timestamps, background, hungarian, ignore_background)
    return _mof(*_frame_counts(p, g, ignore_background))


def edit_score(
    pred, true, timestamps=None, *, hungarian: bool = True, ignore_background: bool = False,
    background: Hashable = BACKGROUND,
) -> float:
    """MS-TCN segmental edit score (percent)."""
    return _edit(*_mapped(pred, true, timestamps, background, hungarian, ignore_background))


def f1_at(
    pred, true, timestamps=None, *, overlaps: Sequence[float] = DEFAULT_OVERLAPS, hungarian: bool = True,
    ignore_background: bool = False, background: Hashable = BACKGROUND,
) -> dict[float, float]:
    """MS-TCN segmental F1@overlap (percent) for each IoU threshold, on one video."""
    p, g = _mapped(pred, true, timestamps, background, hungarian, ignore_background)
    out = {}
    for o in overlaps:
        tp, fp, fn = _f1_counts(p, g, o)
        out[o] = 100.0 * _f1(tp, tp + fp, tp + fn)
    return out


# ---------------------------------------------------------------------------- per video, per dataset


@dataclass
class VideoScores:
    """All segmentation metrics of one video, kept as counts so a dataset can be pooled exactly."""

    frames_correct: int
    frames_total: int
    pred_has_steps: bool
    edit: float
    f1_counts: dict[float, tuple[int, int, int]]
    boundaries: BoundaryScores
    num_pred_segments: int
    num_true_segments: int

    @property
    def mof(self) -> float:
        return _mof(self.frames_correct, self.frames_total, self.pred_has_steps)

    def f1(self, overlap: float) -> float:
        tp, fp, fn = self.f1_counts[overlap]
        return 100.0 * _f1(tp, tp + fp, tp + fn)

    @property
    def num_segments_error(self) -> int:
        """Predicted minus true number of segments (signed)."""
        return self.num_pred_segments - self.num_true_segments

    def to_dict(self) -> dict[str, float]:
        return {
            "mof": self.mof,
            "edit": self.edit,
            **{f"f1@{round(o * 100)}": self.f1(o) for o in self.f1_counts},
            "boundary_precision": self.boundaries.precision,
            "boundary_recall": self.boundaries.recall,
            "boundary_f1": self.boundaries.f1,
            "num_pred_segments": self.num_pred_segments,
            "num_true_segments": self.num_true_segments,
            "num_segments_error": self.num_segments_error,
        }


def evaluate(
    pred, true, timestamps=None, *, tolerance: float = 2.0, overlaps: Sequence[float] = DEFAULT_OVERLAPS,
    hungarian: bool = True, ignore_background: bool = False, background: Hashable = BACKGROUND,
) -> VideoScores:
    """Every metric for one video. ``tolerance`` (boundary matching) is in seconds, or in frames
    when only per-frame labels and no timestamps are given."""
    p_raw, g, t, _ = _prepare(pred, true, timestamps, background)
    p = _hungarian(p_raw, g, ignore_background) if hungarian else p_raw
    correct, total, has_steps = _frame_counts(p, g, ignore_background)
    return VideoScores(
        frames_correct=correct,
        frames_total=total,
        pred_has_steps=has_steps,
        edit=_edit(p, g),
        f1_counts={o: _f1_counts(p, g, o) for o in overlaps},
        boundaries=boundary_prf(_change_times(p_raw, t), _change_times(g, t), tolerance),
        num_pred_segments=len(_runs(p_raw)[0]),
        num_true_segments=len(_runs(g)[0]),
    )


def summarize(videos: Sequence[VideoScores]) -> dict[str, float]:
    """Dataset-level scores as the field pools them: MoF over all frames, F1@k from summed
    tp/fp/fn (MS-TCN), Edit averaged over videos, boundary P/R/F1 from summed counts, and the
    mean absolute error in the number of segments."""
    if not videos:
        raise ProcvidError("no videos to summarize")
    correct = sum(v.frames_correct for v in videos)
    total = sum(v.frames_total for v in videos)
    out = {
        "mof": _mof(correct, total, any(v.pred_has_steps for v in videos)),
        "edit": float(np.mean([v.edit for v in videos])),
    }
    for o in videos[0].f1_counts:
        tp, fp, fn = (sum(v.f1_counts[o][i] for v in videos) for i in range(3))
        out[f"f1@{round(o * 100)}"] = 100.0 * _f1(tp, tp + fp, tp + fn)
    pooled = BoundaryScores(
        matched=sum(v.boundaries.matched for v in videos),
        num_pred=sum(v.boundaries.num_pred for v in videos),
        num_true=sum(v.boundaries.num_true for v in videos),
    )
    out.update(
        boundary_precision=pooled.precision,
        boundary_recall=pooled.recall,
        boundary_f1=pooled.f1,
        num_segments_mae=float(np.mean([abs(v.num_segments_error) for v in videos])),
        num_videos=len(videos),
    )
    return out
