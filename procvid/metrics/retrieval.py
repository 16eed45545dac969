"""Encoder metrics on labelled frames.

- Zero-shot step accuracy: each frame is classified against the step texts *of its own task*
  (argmax cosine similarity); accuracy is the share of frames whose predicted step is the true one.
- Accuracy by position in the step: the same per-frame correctness, binned by where the frame lies
  within its run of consecutive frames of one step (0 = the step's first frame, 1 = its last).
- Text-to-frame retrieval recall@k: each step text queries all frames; a query counts as a hit at k
  if any of its top-k frames shows that step (of that task). Averaged over texts that have frames.
"""

from __future__ import annotations

import numpy as np


def zero_shot_step_correct(frame_emb: np.ndarray, text_emb: np.ndarray, frame_text: np.ndarray,
                           task_ranges: list[range], frame_task: np.ndarray, shared: tuple[int, ...] = ()
                           ) -> np.ndarray:
    """Per frame: is the most similar step text of its task its own step's text. `shared`: texts
    every frame is also compared with (e.g. an idle text)."""
    correct = np.zeros(len(frame_emb), dtype=bool)
    for t, r in enumerate(task_ranges):
        sel = np.flatnonzero(frame_task == t)
        if len(sel):
            candidates = np.r_[np.arange(r.start, r.stop), np.asarray(shared, dtype=int)]
            sims = frame_emb[sel] @ text_emb[candidates].T
            correct[sel] = candidates[sims.argmax(1)] == frame_text[sel]
    return correct


def zero_shot_step_accuracy(frame_emb: np.ndarray, text_emb: np.ndarray, frame_text: np.ndarray,
                            task_ranges: list[range], frame_task: np.ndarray) -> float:
    correct = zero_shot_step_correct(frame_emb, text_emb, frame_text, task_ranges, frame_task)
    return float(correct.mean()) if len(correct) else 0.0


def position_in_step(frame_video: np.ndarray, frame_step: np.ndarray) -> np.ndarray:
    """Relative position (0..1, bin centres) of each frame within its run of consecutive frames
    of one step in one video; frames are in video order."""
    key = np.stack([frame_video, frame_step], axis=1)
    starts = np.flatnonzero(np.r_[True, (key[1:] != key[:-1]).any(1)])
    lengths = np.diff(np.r_[starts, len(key)])
    offset = np.arange(len(key)) - np.repeat(starts, lengths)
    return (offset + 0.5) / np.repeat(lengths, lengths)


def accuracy_by_position(correct: np.ndarray, position: np.ndarray, bins: int = 10) -> np.ndarray:
    """Mean correctness of the frames in each of `bins` equal parts of their step (NaN where empty)."""
    index = np.minimum((position * bins).astype(int), bins - 1)
    counts = np.bincount(index, minlength=bins)
    hits = np.bincount(index, weights=correct.astype(float), minlength=bins)
    return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan)


def text_to_frame_recall(frame_emb: np.ndarray, text_emb: np.ndarray, frame_text: np.ndarray,
                         ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    present = np.unique(frame_text)
    top = np.argsort(-(text_emb[present] @ frame_emb.T), axis=1)[:, : max(ks)]
    hits = frame_text[top] == present[:, None]
    return {k: float(hits[:, :k].any(1).mean()) for k in ks}
