"""The shared interface of step-discovery methods.

A method reads the segments of many videos of one task (each a list of feature-frame ranges with
their frame embeddings) and returns K discovered steps shared across the videos: every segment
gets a step id in 0..K-1 or -1 (background: no shared step). The base class owns what every method
shares: segment embeddings (mean feature per segment, L2-normalised), relative positions, the choice
of K when it is not given, the prototypes and the per-video step paths.

    from procvid.discover import get_discoverer, VideoUnits
    result = get_discoverer("order-kmeans").discover(videos, num_steps=None)   # K = auto
    result.paths()        # per video: discovered step ids in time order, consecutive repeats merged
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from procvid.errors import ProcvidError

BACKGROUND = -1
MIN_K, MAX_K = 2, 20


@dataclass
class VideoUnits:
    """One video: its stem, frame embeddings (T x D) and segments as frame ranges (end exclusive)."""

    stem: str
    X: np.ndarray
    units: list[tuple[int, int]]

    def __post_init__(self) -> None:
        self.units = [(int(a), int(b)) for a, b in self.units if b > a]
        if not self.units:
            self.units = [(0, len(self.X))]


@dataclass
class Discovery:
    """What a method found: per video one step id per segment (BACKGROUND for none), the K
    prototypes (K x D, L2-normalised) and how K was chosen."""

    method: str
    num_steps: int
    labels: list[np.ndarray]
    prototypes: np.ndarray
    k_choice: dict = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def paths(self, videos: list[VideoUnits]) -> list[list[int]]:
        """Per video: discovered step ids in time order, background left out, consecutive repeats merged."""
        out = []
        for v, labels in zip(videos, self.labels):
            order = np.argsort([a for a, _ in v.units], kind="stable")
            seq = [int(labels[i]) for i in order if labels[i] != BACKGROUND]
            out.append([s for i, s in enumerate(seq) if i == 0 or seq[i - 1] != s])
        return out

    def frame_labels(self, videos: list[VideoUnits]) -> list[np.ndarray]:
        """Per video: one discovered step id per feature frame (BACKGROUND outside every step)."""
        out = []
        for v, labels in zip(videos, self.labels):
            frames = np.full(len(v.X), BACKGROUND, dtype=np.int64)
            for (a, b), lab in zip(v.units, labels):
                frames[a:b] = lab
            out.append(frames)
        return out


def normalise(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


def segment_table(videos: list[VideoUnits]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings N x D L2-normalised, relative mid positions N in [0, 1], video index N, duration share N)
    of every segment of every video, in video then segment order."""
    if not videos:
        raise ProcvidError("no videos to discover steps in")
    dims = {np.shape(v.X)[1] if np.ndim(v.X) == 2 else None for v in videos}
    if len(dims) != 1 or None in dims:
        raise ProcvidError(f"features of one task must share one dimension; found {sorted(map(str, dims))}")
    emb, pos, vid, share = [], [], [], []
    for i, v in enumerate(videos):
        X = np.asarray(v.X, dtype=np.float64)
        T = max(len(X), 1)
        for a, b in v.units:
            emb.append(X[a:b].mean(0))
            pos.append((a + b) / 2 / T)
            vid.append(i)
            share.append((b - a) / T)
    return normalise(np.stack(emb)), np.asarray(pos), np.asarray(vid), np.asarray(share)


def prototypes_of(emb: np.ndarray, labels: np.ndarray, k: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Mean (weighted) embedding of each step's member segments, L2-normalised (zeros for an empty step)."""
    weights = np.ones(len(emb)) if weights is None else weights
    P = np.zeros((k, emb.shape[1]))
    for c in range(k):
        m = labels == c
        if m.any():
            P[c] = (emb[m] * weights[m, None]).sum(0)
    return normalise(P) * (np.linalg.norm(P, axis=1, keepdims=True) > 0)


def split_labels(labels: np.ndarray, vid: np.ndarray, n: int) -> list[np.ndarray]:
    return [labels[vid == i] for i in range(n)]


def relabel(labels: np.ndarray) -> tuple[np.ndarray, int]:
    """Step ids made consecutive 0..K-1 in order of mean first appearance (background kept)."""
    ids = [c for c in dict.fromkeys(labels.tolist()) if c != BACKGROUND]
    mapping = {c: i for i, c in enumerate(ids)}
    out = np.array([mapping.get(c, BACKGROUND) for c in labels.tolist()], dtype=np.int64)
    return out, len(ids)


def order_by_position(labels: np.ndarray, pos: np.ndarray) -> tuple[np.ndarray, int]:
    """Renumber steps 0..K-1 by their mean relative position (step 0 tends to come first)."""
    ids = sorted({int(c) for c in labels if c != BACKGROUND}, key=lambda c: pos[labels == c].mean())
    mapping = {c: i for i, c in enumerate(ids)}
    return np.array([mapping.get(int(c), BACKGROUND) for c in labels], dtype=np.int64), len(ids)


class Discoverer(ABC):
    """A step-discovery method. Subclasses are dataclasses whose fields are their parameters."""

    name: ClassVar[str] = ""

    def params(self) -> dict[str, Any]:
        return dataclasses.asdict(self) if dataclasses.is_dataclass(self) else {}

    def discover(self, videos: list[VideoUnits], num_steps: int | None = None) -> Discovery:
        """K (num_steps, or chosen automatically when None) steps shared across `videos`."""
        if num_steps is not None and num_steps < 1:
            raise ProcvidError(f"--num-steps must be a positive number or auto, got {num_steps}")
        emb, pos, vid, share = segment_table(videos)
        labels, k_choice = self.cluster(emb, pos, vid, share, num_steps, len(videos))
        labels, k = order_by_position(np.asarray(labels), pos)
        return Discovery(self.name, k, split_labels(labels, vid, len(videos)),
                         prototypes_of(emb, labels, k, share), k_choice, self.params())

    @abstractmethod
    def cluster(self, emb: np.ndarray, pos: np.ndarray, vid: np.ndarray, share: np.ndarray,
                num_steps: int | None, num_videos: int) -> tuple[np.ndarray, dict]:
        """(one step id or BACKGROUND per segment, how K was chosen) for the segment table."""


def discoverer_class(name: str) -> type[Discoverer]:
    from procvid.registry import DISCOVERERS

    return DISCOVERERS.get(name)


def get_discoverer(name: str, **params) -> Discoverer:
    cls = discoverer_class(name)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = set(params) - fields
    if unknown:
        raise ProcvidError(f"discovery method {name!r} has no parameter {sorted(unknown)[0]!r}; "
                           f"parameters: {', '.join(sorted(fields)) or '(none)'}")
    return cls(**params)
