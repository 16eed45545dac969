"""The shared interface of key-step boundary detectors.

A detector reads frame embeddings ``X`` (T x D, one row per sampled frame) with their
``timestamps`` (T seconds, strictly increasing, roughly uniform) and returns a list of
:class:`Segment` that tiles the video: ``[0, b1), [b1, b2), ..., [bk, T)`` in frame indices.

Subclasses only propose boundaries (:meth:`Detector.find_boundaries`); the base class owns
input validation, the known-K contract (exactly K segments when ``num_segments`` is given)
and the conversion to segments, so every detector behaves the same at the edges.
Time parameters are in seconds and converted with the median sampling step, so one
configuration works at any sampling rate.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.ndimage import gaussian_filter1d

from procvid.errors import ProcvidError

# Gaussian smoothing kernels are cut at this many standard deviations.
KERNEL_TRUNCATE = 4.0


@dataclass
class Segment:
    """One key-step segment.

    ``start``/``end`` are seconds; ``end`` is the start time of the next segment's first frame
    (for the last segment: last timestamp + one sampling step). ``start_frame``/``end_frame``
    index the embeddings (end exclusive). ``score`` is the confidence of the boundary at the
    segment's start (1.0 for the first segment; 0.0 where a detector had no evidence), its scale
    is detector specific. ``keyframe`` is the frame nearest (cosine) to the segment's mean
    embedding.
    """

    start: float
    end: float
    start_frame: int
    end_frame: int
    score: float
    keyframe: int
    label: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if self.label is None:
            del d["label"]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Segment:
        try:
            return cls(
                start=float(d["start"]),
                end=float(d["end"]),
                start_frame=int(d["start_frame"]),
                end_frame=int(d["end_frame"]),
                score=float(d["score"]),
                keyframe=int(d["keyframe"]),
                label=d.get("label"),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ProcvidError(f"invalid segment record {d!r}: {e}") from None


def check_inputs(X, timestamps) -> tuple[np.ndarray, np.ndarray, float]:
    """Validate detector inputs; return float32 L2-normalised X, float64 timestamps, step (s)."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] == 0:
        raise ProcvidError(f"embeddings must be a 2-D array (frames x dims), got shape {X.shape}")
    if X.shape[0] < 2:
        raise ProcvidError(f"need at least 2 frames to segment, got {X.shape[0]}")
    if not np.issubdtype(X.dtype, np.number):
        raise ProcvidError(f"embeddings must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float32, copy=False)
    if not np.isfinite(X).all():
        raise ProcvidError("embeddings contain NaN or infinite values")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ProcvidError(f"embedding row {int(np.argmin(norms[:, 0]))} is all zeros")
    # Inputs should already be unit rows; renormalising is cheap and makes distances meaningful.
    X = X / norms

    t = np.asarray(timestamps, dtype=np.float64)
    if t.shape != (X.shape[0],):
        raise ProcvidError(
            f"timestamps must have shape ({X.shape[0]},) to match the embeddings, got {t.shape}"
        )
    if not np.isfinite(t).all():
        raise ProcvidError("timestamps contain NaN or infinite values")
    steps = np.diff(t)
    if (steps <= 0).any():
        i = int(np.argmax(steps <= 0))
        raise ProcvidError(f"timestamps must be strictly increasing (t[{i}]={t[i]} >= t[{i + 1}]={t[i + 1]})")
    return X, t, float(np.median(steps))


def seconds_to_frames(seconds: float, step: float, minimum: int = 1) -> int:
    """A duration in seconds as a whole number of sampling steps (at least ``minimum``)."""
    return max(minimum, int(round(seconds / step)))


def smooth(y: np.ndarray, sigma: float) -> np.ndarray:
    """Nadaraya-Watson regression of ``y`` on its index with an RBF kernel of width ``sigma`` frames.

    On a uniform grid this is a Gaussian filter renormalised by the kernel mass inside the signal,
    so the ends are not pulled towards zero. Linear time, unlike the dense kernel matrix.
    """
    y = np.asarray(y, dtype=np.float64)
    if sigma < 0.1:  # narrower than a tenth of a frame: a no-op up to rounding
        return y
    kw = dict(sigma=sigma, mode="constant", cval=0.0, truncate=KERNEL_TRUNCATE)
    return gaussian_filter1d(y, **kw) / gaussian_filter1d(np.ones_like(y), **kw)


def smoothing_radius(sigma: float) -> int:
    """How many frames on each side :func:`smooth` reads (its kernel's half-width)."""
    return int(KERNEL_TRUNCATE * sigma + 0.5) if sigma >= 0.1 else 0


def segment_sums(X: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sum of the rows of each run ``X[starts[i]:starts[i+1]]`` (the last run ends at len(X)).

    A sparse indicator product: it streams the rows once, where ``np.add.reduceat`` and
    ``cumsum`` along axis 0 are tens of times slower on a 3600 x 512 array.
    """
    T = len(X)
    lengths = np.diff(np.append(starts, T))
    rows = np.repeat(np.arange(len(starts)), lengths)
    member = sp.csr_matrix((np.ones(T, dtype=X.dtype), (rows, np.arange(T))), shape=(len(starts), T))
    return np.asarray(member @ X)


def select_k(boundaries, scores, num_frames: int, num_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``num_segments - 1`` boundaries: keep the highest-scoring ones; if there are too few,
    split the longest segment in half (score 0.0) until there are enough."""
    b = np.asarray(boundaries, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    want = num_segments - 1
    if len(b) > want:
        keep = np.sort(np.argsort(-s, kind="stable")[:want])
        b, s = b[keep], s[keep]
    b, s = list(b), list(s)
    while len(b) < want:
        edges = [0, *b, num_frames]
        i = int(np.argmax(np.diff(edges)))
        b.insert(i, (edges[i] + edges[i + 1]) // 2)
        s.insert(i, 0.0)
    return np.asarray(b, dtype=np.int64), np.asarray(s, dtype=np.float64)


def make_segments(X: np.ndarray, timestamps: np.ndarray, boundaries, scores, step: float) -> list[Segment]:
    """Turn boundary frame indices (starts of segments 2..K) and their scores into Segments."""
    T = len(X)
    b = np.asarray(boundaries, dtype=np.int64)
    if len(b) and (b[0] <= 0 or b[-1] >= T or (np.diff(b) <= 0).any()):
        raise ValueError(f"boundaries must be strictly increasing frame indices in (0, {T}): {b.tolist()}")
    starts = np.concatenate([[0], b])
    ends = np.concatenate([b, [T]])
    seg_scores = np.concatenate([[1.0], np.asarray(scores, dtype=np.float64)])
    if len(seg_scores) != len(starts):
        raise ValueError(f"{len(b)} boundaries but {len(seg_scores) - 1} scores")
    end_times = np.append(timestamps[b], timestamps[-1] + step)

    # Keyframes for all segments at once: cosine of each frame to its own segment's mean
    # direction, then the first arg-max within each segment.
    seg_of = np.repeat(np.arange(len(starts)), ends - starts)
    sums = segment_sums(X, starts)
    sims = np.einsum("td,td->t", X, sums[seg_of])
    best = np.maximum.reduceat(sims, starts)
    hits = np.flatnonzero(sims >= best[seg_of])
    _, first = np.unique(seg_of[hits], return_index=True)
    keyframes = hits[first]

    return [
        Segment(
            start=float(timestamps[s0]),
            end=float(e_t),
            start_frame=int(s0),
            end_frame=int(e0),
            score=float(sc),
            keyframe=int(k),
        )
        for s0, e0, e_t, sc, k in zip(starts, ends, end_times, seg_scores, keyframes)
    ]


def merge_similar(X: np.ndarray, bounds: np.ndarray, scores: np.ndarray, merge: float,
                  percentile: float = 90.0) -> tuple[np.ndarray, np.ndarray]:
    """Drop boundaries between adjacent segments whose mean embeddings are closer than ``merge`` x
    the ``percentile`` of the adjacent-segment distances of this video (see Detector)."""
    if len(bounds) < 2:
        return bounds, scores
    cum = np.concatenate([np.zeros((1, X.shape[1])), np.cumsum(X, axis=0)])
    bounds, scores = list(bounds), list(scores)

    def distances():
        edges = [0, *bounds, len(X)]
        means = np.stack([cum[b] - cum[a] for a, b in zip(edges[:-1], edges[1:])])
        means /= np.linalg.norm(means, axis=1, keepdims=True) + 1e-12
        return 1.0 - np.sum(means[:-1] * means[1:], axis=1)

    limit = merge * float(np.percentile(distances(), percentile))
    while len(bounds) > 1:
        d = distances()
        i = int(np.argmin(d))
        if d[i] >= limit:
            break
        del bounds[i], scores[i]
    return np.asarray(bounds, dtype=np.int64), np.asarray(scores, dtype=np.float64)


@dataclass
class Detector(ABC):
    """Base class of boundary detectors. Subclasses are dataclasses whose fields are parameters.

    Every detector takes ``merge`` (unknown K only): afterwards, adjacent segments whose mean
    embeddings are closer (cosine distance) than ``merge`` times the video's own 90th percentile of
    distances between adjacent segments are merged, closest pair first. The scale is the video's, so
    the rule does not depend on how long steps are; it removes the extra cuts a long step or a long
    idle stretch collects (tools/bench_segment.py --regimes).
    """

    name: ClassVar[str]
    merge: float = 0.0

    def __post_init__(self):
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and not (math.isfinite(v) and v >= 0):
                raise ProcvidError(f"{self.name}: parameter {f.name} must be a finite number >= 0, got {v}")

    def detect(self, X, timestamps, num_segments: int | None = None) -> list[Segment]:
        """Segment one video. With ``num_segments`` (known K) exactly that many segments are
        returned; without it the detector decides how many."""
        X, t, step = check_inputs(X, timestamps)
        if num_segments is not None:
            if isinstance(num_segments, bool) or int(num_segments) != num_segments:
                raise ProcvidError(f"num_segments must be an integer, got {num_segments!r}")
            num_segments = int(num_segments)
            if not 1 <= num_segments <= len(X):
                raise ProcvidError(
                    f"num_segments must be between 1 and the number of frames ({len(X)}), got {num_segments}"
                )
        b, s = self.find_boundaries(X, step, num_segments)
        order = np.argsort(b, kind="stable")
        b, s = np.asarray(b, dtype=np.int64)[order], np.asarray(s, dtype=np.float64)[order]
        if num_segments is not None:
            b, s = select_k(b, s, len(X), num_segments)
        elif self.merge > 0:
            b, s = merge_similar(X, b, s, self.merge)
        return make_segments(X, t, b, s, step)

    @abstractmethod
    def find_boundaries(
        self, X: np.ndarray, step: float, num_segments: int | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Boundary frame indices in (0, T) (each the first frame of a new segment) and their scores.

        ``X`` is validated and L2-normalised, ``step`` is the sampling step in seconds. With a known
        ``num_segments`` a detector may return more or fewer candidates than K-1: the base class
        keeps the strongest K-1 (:func:`select_k`).
        """

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready configuration; ``procvid.segment.get_detector(**d)`` rebuilds it."""
        return {"name": self.name, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Detector:
        params = dict(d)
        name = params.pop("name", None) or getattr(cls, "name", None)
        if name is None:
            raise ProcvidError(f"detector configuration has no 'name': {d!r}")
        det = get_detector(name, **params)
        if not isinstance(det, cls):
            raise ProcvidError(f"configuration is for detector {d.get('name')!r}, not {cls.__name__}")
        return det


def detector_class(name: str) -> type[Detector]:
    from procvid.registry import DETECTORS

    return DETECTORS.get(name)


def get_detector(name: str, **params) -> Detector:
    """A detector by registry name with its parameters (unknown parameters are an error)."""
    cls = detector_class(name)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - set(fields))
    if unknown:
        raise ProcvidError(
            f"unknown parameter(s) for detector {name!r}: {', '.join(unknown)}; "
            f"expected: {', '.join(sorted(fields))}"
        )
    for key, value in params.items():
        default = fields[key].default
        number = isinstance(default, (int, float)) and not isinstance(default, bool)
        if (number and (isinstance(value, bool) or not isinstance(value, (int, float)))) \
                or (isinstance(default, bool) and not isinstance(value, bool)) \
                or (isinstance(default, str) and not isinstance(value, str)):
            raise ProcvidError(f"detector {name!r}: parameter {key}={value!r} should be a {type(default).__name__} "
                               f"(default {default!r})")
    return cls(**params)
