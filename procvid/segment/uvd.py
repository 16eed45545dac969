"""UVD: Universal Visual Decomposer (Zhang et al., 2023, "Universal Visual Decomposer:
Long-Horizon Manipulation Made Easy"), on frozen frame embeddings.

Idea: while a step is being carried out, the embedding moves steadily towards the state at
the step's end, so the distance to that goal frame decreases monotonically. Walking back
from the goal, the first place where this monotone decrease is broken (a local maximum of
the smoothed distance-to-goal curve) is a phase shift: the previous subgoal. Recursing with
that subgoal as the new goal decomposes the whole video from its last frame backwards.

As in the reference implementation: L2 distance to the goal embedding, RBF Nadaraya-Watson
smoothing of the curve, the latest local maximum at least a minimum interval away from the
goal (and from the video start), recursion on the prefix. A subgoal frame closes its
segment, so the boundary (first frame of the next segment) is the frame after it.

Additions: each subgoal is scored by the size of its phase shift, i.e. how far the smoothed
distance falls from the subgoal on its way to the goal (the progress of the step that
follows), and maxima whose shift is below ``min_shift`` are ignored as noise, so a video
without steps stays one segment and jitter within a step does not split it. The goal's own
zero distance is left out of the curve so smoothing does not create a dip at its end.

Known K: the recursion runs with the configured parameters and the K-1 strongest subgoals
are kept. If it finds fewer, it is rerun with ``min_shift`` = 0 and then with the minimum
interval halved (down to one frame) until it finds enough; anything still missing is filled
by the base class (longest segment split in half, score 0).

On step-like embeddings (each step a plateau, a jump between steps) the distance curve has no
clean maximum at the jump: the latest maximum is a noise bump on the previous plateau,
typically 3-5 smoothing widths before the jump, so boundaries come out that much early. On
steadily progressing embeddings (UVD's setting) they are found within a frame.

Cost: the curve is only computed back from the current goal as far as needed (a window that
doubles until a subgoal is found), so the total work is O(T * D) rather than O(T^2 * D).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from procvid.registry import DETECTORS
from procvid.segment.base import Detector, seconds_to_frames, smooth, smoothing_radius


@DETECTORS.register("uvd", "UVD (Universal Visual Decomposer): recursive subgoals from the last frame backwards")
@dataclass
class UVDDetector(Detector):
    """Recursive subgoal discovery from the last frame backwards."""

    name: ClassVar[str] = "uvd"

    smoothing_s: float = 1.0
    """Width (Gaussian sigma, seconds) of the RBF kernel regression on the distance curve."""
    min_segment_s: float = 3.0
    """Minimum interval between subgoals, and from a subgoal to the video start."""
    min_shift: float = 0.1
    """Smallest phase shift (fall of the smoothed L2 distance, range 0..2) that counts as a subgoal."""

    def find_boundaries(self, X, step, num_segments):
        sigma = self.smoothing_s / step
        interval = seconds_to_frames(self.min_segment_s, step)
        b, s = decompose(X, interval, sigma, self.min_shift)
        if num_segments is None:
            return b, s
        if len(b) < num_segments - 1:
            b, s = decompose(X, interval, sigma, 0.0)
        while len(b) < num_segments - 1 and interval > 1:
            interval = max(1, interval // 2)
            b, s = decompose(X, interval, sigma, 0.0)
        return b, s


def decompose(X: np.ndarray, interval: int, sigma: float, min_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries (frame after each subgoal) and phase-shift scores, in time order.

    ``X``: unit rows; ``interval``: minimum frames per segment; ``sigma``: smoothing width in frames.
    """
    goal = len(X) - 1
    bounds, scores = [], []
    while (found := _previous_subgoal(X, goal, interval, sigma, min_shift)) is not None:
        goal, score = found
        bounds.append(goal + 1)
        scores.append(score)
    return np.asarray(bounds[::-1], dtype=np.int64), np.asarray(scores[::-1], dtype=np.float64)


def _previous_subgoal(X, goal: int, interval: int, sigma: float, min_shift: float):
    """The latest valid subgoal before ``goal`` as (frame, phase shift), or None.

    Valid: a strict local maximum p of the smoothed distance-to-goal curve with
    goal - p >= interval, p + 1 >= interval and shift >= min_shift. The curve is computed on a
    window [lo, goal) that doubles until a valid maximum appears; values closer than the kernel
    radius to a cut at lo > 0 are not trusted, so the result equals that of the whole prefix.
    """
    if goal - interval < interval - 1:
        return None
    margin = smoothing_radius(sigma) + 1
    width = 4 * (margin + interval)
    while True:
        lo = max(0, goal - width)
        # Unit rows: ||x - g|| = sqrt(2 - 2 x.g), one matrix-vector product. The goal's own zero
        # distance is left out so the smoothed curve does not dip artificially at its end.
        dist = np.sqrt(np.maximum(2.0 - 2.0 * (X[lo:goal] @ X[goal]), 0.0))
        curve = smooth(dist, sigma)
        i = np.flatnonzero((curve[1:-1] > curve[:-2]) & (curve[1:-1] > curve[2:])) + 1
        p = i + lo
        i = i[(goal - p >= interval) & (p + 1 >= interval) & ((lo == 0) | (i >= margin))]
        # Phase shift: how far the curve falls from the maximum on its way to the goal.
        lowest_after = np.minimum.accumulate(curve[::-1])[::-1]
        shift = curve[i] - lowest_after[i]
        ok = np.flatnonzero(shift >= min_shift)
        if len(ok):
            j = ok[-1]
            return int(i[j] + lo), float(shift[j])
        if lo == 0:
            return None
        width *= 2
