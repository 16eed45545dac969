"""Encoder metrics on labelled frames.

- Zero-shot step accuracy: each frame is classified against the step texts *of its own task*
  (argmax cosine similarity); accuracy is the share of frames whose predicted step is the true one.
- Text-to-frame retrieval recall@k: each step text queries all frames; a query counts as a hit at k
  if any of its top-k frames shows that step (of that task). Averaged over texts that have frames.
"""

from __future__ import annotations

import numpy as np


def zero_shot_step_accuracy(frame_emb: np.ndarray, text_emb: np.ndarray, frame_text: np.ndarray,
                            task_ranges: list[range], frame_task: np.ndarray) -> float:
    correct = 0
    for t, r in enumerate(task_ranges):
        sel = frame_task == t
        if not sel.any():
            continue
        sims = frame_emb[sel] @ text_emb[r.start : r.stop].T
        correct += int((sims.argmax(1) + r.start == frame_text[sel]).sum())
    return correct / max(1, len(frame_emb))


def text_to_frame_recall(frame_emb: np.ndarray, text_emb: np.ndarray, frame_text: np.ndarray,
                         ks: tuple[int, ...] = (1, 5)) -> dict[int, float]:
    present = np.unique(frame_text)
    top = np.argsort(-(text_emb[present] @ frame_emb.T), axis=1)[:, : max(ks)]
    hits = frame_text[top] == present[:, None]
    return {k: float(hits[:, :k].any(1).mean()) for k in ks}
