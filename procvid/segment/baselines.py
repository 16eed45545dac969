"""Baseline boundary detectors: embedding novelty (ABD-style), kernel change points, uniform."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.signal import find_peaks

from procvid.errors import ProcvidError
from procvid.registry import DETECTORS
from procvid.segment.base import Detector, seconds_to_frames, segment_sums, smooth


@DETECTORS.register("novelty", "adjacent-window embedding novelty peaks (ABD-style)")
@dataclass
class NoveltyDetector(Detector):
    """Adjacent-window novelty, in the spirit of ABD (Du et al., CVPR 2022, "Fast and
    Unsupervised Action Boundary Detection for Action Segmentation").

    For every candidate boundary b the novelty is the cosine distance between the mean
    embedding of the ``window_s`` seconds before b and of those from b on (windows are clipped
    at the video ends). The curve is smoothed and its peaks are picked with non-maximum
    suppression: of two peaks closer than ``min_segment_s`` only the higher survives, and no
    boundary lies closer than that to either end. Unknown K keeps peaks above
    max(mean + ``threshold`` * std of the curve, ``min_novelty``) -- the floor keeps a video
    without steps in one piece; known K keeps the K-1 highest peaks. Score: the peak's novelty.
    """

    name: ClassVar[str] = "novelty"

    window_s: float = 3.0
    smoothing_s: float = 1.0
    min_segment_s: float = 3.0
    threshold: float = 1.0
    min_novelty: float = 0.05

    def find_boundaries(self, X, step, num_segments):
        T = len(X)
        w = seconds_to_frames(self.window_s, step)
        gap = seconds_to_frames(self.min_segment_s, step)
        curve = smooth(novelty_curve(X, w), self.smoothing_s / step)  # curve[i]: boundary i + 1
        height = None
        if num_segments is None:
            height = max(curve.mean() + self.threshold * curve.std(), self.min_novelty)
        # Boundaries closer than `gap` to an end are masked before suppression, so they cannot
        # suppress a valid peak next to them.
        candidates = curve.copy()
        candidates[: gap - 1] = -np.inf
        candidates[T - gap :] = -np.inf
        peaks, _ = find_peaks(candidates, height=height, distance=gap)
        return peaks + 1, curve[peaks]


def novelty_curve(X: np.ndarray, window: int) -> np.ndarray:
    """Cosine distance between the mean of ``window`` frames before and after each boundary 1..T-1."""
    T = len(X)
    # sums[j] = X[j - window + 1] + ... + X[j] (clipped at the ends), as one sparse band product:
    # numpy's cumsum along axis 0 is several times slower than this for windows of a few frames.
    band = sp.diags(
        [1.0] * window, offsets=range(0, -window, -1), shape=(T + window - 1, T), format="csr", dtype=X.dtype
    )
    sums = np.asarray(band @ X)
    before = sums[0 : T - 1]  # frames b - window .. b - 1 for b = 1 .. T-1
    after = sums[window : T - 1 + window]  # frames b .. b + window - 1
    # Means and sums point the same way, so the window lengths cancel in the cosine.
    cos = np.einsum("td,td->t", before, after) / (
        np.linalg.norm(before, axis=1) * np.linalg.norm(after, axis=1) + 1e-12
    )
    return 1.0 - cos


KCPD_COSTS = ("mean", "trend")


@DETECTORS.register("kcpd", "kernel change-point detection with a cosine kernel (exact DP for known K, else PELT); "
                            "cost=trend: a straight line per segment")
@dataclass
class KernelCPDDetector(Detector):
    """Kernel change-point detection with a cosine kernel (``ruptures.KernelCPD``).

    Known K solves the exact dynamic programme for K-1 change points; unknown K runs PELT with
    penalty ``penalty * noise * log(n)``, where ``noise`` estimates the cost a frame adds to its
    segment (half the median squared distance between frames one minimum segment length apart;
    most such pairs lie in one step, and the lag keeps temporally correlated neighbours from
    hiding the spread) and n is the number of frames: a BIC-like penalty that adapts to the
    embedding model's spread. Raise ``penalty`` if it over-segments.

    KernelCPD with the cosine kernel costs O(n^2) time (about 3 s for 3600 frames with few
    change points), so longer inputs are first average-pooled into at most ``max_frames`` bins
    of f consecutive frames; boundaries are then on the f-frame grid (at most f-1 frames off).
    Score: cosine distance between the mean embeddings of the two segments at the boundary.

    ``cost`` is what a segment is assumed to look like. ``"mean"`` (the above): frames scattered
    around one point, so a step that changes the scene gradually is cut into pieces along its
    ramp. ``"trend"``: frames around a straight line in time (per dimension; least squares), so an
    idle stretch (flat) and a step in progress (a ramp) are one segment each and the change points
    are where the trend bends (:func:`trend_change_points`: the video's ``components`` leading
    principal components, exact DP for known K, PELT otherwise with penalty ``penalty * noise *
    log(n)``, ``noise`` from second differences one minimum segment apart, which a linear trend
    leaves at zero).
    """

    name: ClassVar[str] = "kcpd"

    merge: float = 0.2  # chosen on the tuning worlds (seed 3, v1 and v1 long steps); see Detector
    min_segment_s: float = 3.0
    penalty: float = 1.0
    max_frames: int = 1000
    cost: str = "mean"
    components: int = 16  # cost "trend" only

    def __post_init__(self):
        super().__post_init__()
        if self.max_frames < 2:
            raise ProcvidError(f"kcpd: max_frames must be >= 2, got {self.max_frames}")
        if self.cost not in KCPD_COSTS:
            raise ProcvidError(f"kcpd: cost must be one of {', '.join(KCPD_COSTS)}, got {self.cost!r}")
        if self.components < 1 or self.components != int(self.components):
            raise ProcvidError(f"kcpd: components must be a whole number >= 1, got {self.components}")

    def find_boundaries(self, X, step, num_segments):
        import ruptures as rpt

        T = len(X)
        k = num_segments or 1
        factor = max(1, min(math.ceil(T / self.max_frames), T // k))
        Z = _pool(X, factor)
        n = len(Z)
        min_size = max(1, min(round(seconds_to_frames(self.min_segment_s, step) / factor), n // k))
        if self.cost == "trend":
            b = trend_change_points(principal_scores(Z, int(self.components)), min_size, num_segments,
                                    self.penalty) * factor
            return b, segment_contrast(X, b)
        algo = rpt.KernelCPD(kernel="cosine", min_size=min_size).fit(Z)
        if num_segments is not None:
            bkps = algo.predict(n_bkps=k - 1) if k > 1 else [n]
        elif n < 2 * min_size:
            bkps = [n]
        else:
            apart = Z[min_size:] - Z[:-min_size]
            noise = max(0.5 * float(np.median(np.einsum("td,td->t", apart, apart))), 1e-6)
            bkps = algo.predict(pen=self.penalty * noise * math.log(n))
        # ruptures returns segment ends with n last; boundaries are the inner ones.
        b = np.asarray(bkps[:-1], dtype=np.int64) * factor
        return b, segment_contrast(X, b)


def principal_scores(Z: np.ndarray, k: int) -> np.ndarray:
    """The video's centred frames on their ``k`` leading principal components (n x min(k, n), float64).

    Least-squares costs are rotation invariant, so this keeps them exact in the directions the video
    varies most and drops the many low-variance ones (and makes the cost O(k) per segment). The
    eigenproblem is solved on the smaller of the two Gram matrices.
    """
    Z = np.asarray(Z, dtype=np.float64)
    Z = Z - Z.mean(axis=0)
    k = min(k, *Z.shape)
    if len(Z) <= Z.shape[1]:
        w, V = np.linalg.eigh(Z @ Z.T)  # ascending; Z = U S V^T, so U S = eigenvectors * sqrt(w)
        return V[:, ::-1][:, :k] * np.sqrt(np.maximum(w[::-1][:k], 0.0))
    w, V = np.linalg.eigh(Z.T @ Z)
    return Z @ V[:, ::-1][:, :k]


class _TrendCost:
    """Residual sum of squares of a least-squares line (per dimension, against the frame index) through
    the rows ``Y[a:b]``, for many starts ``a`` at once, from prefix sums."""

    def __init__(self, Y: np.ndarray):
        t = np.arange(len(Y), dtype=np.float64)

        def prefix(v):
            return np.concatenate([np.zeros((1, *v.shape[1:])), np.cumsum(v, axis=0)])

        self.t, self.tt = prefix(t), prefix(t * t)
        self.x, self.tx = prefix(Y), prefix(t[:, None] * Y)
        self.xx = prefix(np.einsum("td,td->t", Y, Y))

    def __call__(self, a: np.ndarray, b: int) -> np.ndarray:
        n = (b - a).astype(np.float64)
        st, sx = self.t[b] - self.t[a], self.x[b] - self.x[a]
        t_spread = (self.tt[b] - self.tt[a]) - st**2 / n  # sum of (t - mean t)^2; 0 for one frame
        cov = (self.tx[b] - self.tx[a]) - (st / n)[:, None] * sx  # sum of (t - mean t) * x
        slope = np.einsum("ad,ad->a", cov, cov) / np.where(t_spread > 1e-9, t_spread, np.inf)
        return np.maximum((self.xx[b] - self.xx[a]) - np.einsum("ad,ad->a", sx, sx) / n - slope, 0.0)


def trend_change_points(Y: np.ndarray, min_size: int, num_segments: int | None, penalty: float) -> np.ndarray:
    """Change points (starts of segments 2..K) of the piecewise-linear least-squares fit of ``Y``.

    Known K (``num_segments``): the exact minimum-cost partition into K segments of at least
    ``min_size`` rows (dynamic programme over the n x n cost table). Otherwise the exact penalised
    optimum (PELT, Killick et al. 2012: a start is dropped once it cannot win any more, valid here
    since splitting a segment never raises its least-squares cost) with penalty
    ``penalty * noise * log(n)``.
    """
    n = len(Y)
    cost = _TrendCost(Y)
    if num_segments is not None:
        k = num_segments
        if k <= 1:
            return np.zeros(0, dtype=np.int64)
        table = np.full((n + 1, n + 1), np.inf)  # table[a, b]: cost of rows a..b-1
        for b in range(min_size, n + 1):
            a = np.arange(b - min_size + 1)
            table[a, b] = cost(a, b)
        best, back = np.full(n + 1, np.inf), []
        best[0] = 0.0
        for _ in range(k):
            total = best[:, None] + table
            back.append(np.argmin(total, axis=0))
            best = total[back[-1], np.arange(n + 1)]
        b, bounds = n, []
        for j in range(k - 1, 0, -1):
            b = int(back[j][b])
            bounds.append(b)
        return np.asarray(bounds[::-1], dtype=np.int64)
    if n < 2 * min_size or n < 3:
        return np.zeros(0, dtype=np.int64)
    lag = max(1, min(min_size, (n - 1) // 2))
    bend = Y[2 * lag :] - 2 * Y[lag:-lag] + Y[: -2 * lag]
    # For independent noise of variance s^2 (summed over dimensions) a second difference has 6 s^2.
    noise = max(float(np.median(np.einsum("td,td->t", bend, bend))) / 6.0, 1e-12)
    pen = penalty * noise * math.log(n)
    best = np.full(n + 1, np.inf)
    best[0] = -pen
    last = np.zeros(n + 1, dtype=np.int64)
    alive = np.zeros(n + 1, dtype=bool)  # starts that may still begin the last segment
    alive[0] = True
    beaten = {}
    for b in range(min_size, n + 1):
        # A start beaten at b' loses to "via b'" only once [b', b) can be a segment, so it goes
        # min_size rows later: the result stays the exact optimum under the minimum length.
        alive[beaten.pop(b - min_size, [])] = False
        ready = np.flatnonzero(alive[: b - min_size + 1])
        c = best[ready] + cost(ready, b)
        i = int(np.argmin(c))
        best[b], last[b] = c[i] + pen, ready[i]
        beaten[b] = ready[c > best[b]]
        alive[b] = True
    bounds, b = [], n
    while (b := int(last[b])) > 0:
        bounds.append(b)
    return np.asarray(bounds[::-1], dtype=np.int64)


def _pool(X: np.ndarray, factor: int) -> np.ndarray:
    """Means of consecutive ``factor``-frame bins, renormalised to unit rows."""
    if factor == 1:
        return X
    Z = segment_sums(X, np.arange(0, len(X), factor))
    return Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)


def segment_contrast(X: np.ndarray, boundaries: np.ndarray) -> np.ndarray:
    """Cosine distance between the mean embeddings of the segments either side of each boundary."""
    if len(boundaries) == 0:
        return np.zeros(0)
    sums = segment_sums(X, np.concatenate([[0], boundaries]))
    sums /= np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    return 1.0 - np.einsum("kd,kd->k", sums[:-1], sums[1:])


@DETECTORS.register("uniform", "equal-length segments (baseline: uses no evidence)")
@dataclass
class UniformDetector(Detector):
    """Equal-length segments: K of them when K is known, else one per ``segment_s`` seconds.
    Boundaries carry score 0.0 (no evidence was used)."""

    name: ClassVar[str] = "uniform"

    segment_s: float = 30.0

    def __post_init__(self):
        super().__post_init__()
        if self.segment_s <= 0:
            raise ProcvidError(f"uniform: segment_s must be > 0, got {self.segment_s}")

    def find_boundaries(self, X, step, num_segments):
        T = len(X)
        k = num_segments or min(T, max(1, round(T * step / self.segment_s)))
        b = np.arange(1, k, dtype=np.int64) * T // k  # integer floor: strictly increasing for k <= T
        return b, np.zeros(len(b))
