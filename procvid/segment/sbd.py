"""SBD: surprise-based boundary detection with a learned next-embedding predictor.

A small causal transformer (sliding-window attention over the last ``window`` frames per layer)
predicts the embedding of frame t from the frames before it, as a correction of frame t-1, so
"nothing changes" is the easy default. It is trained self-supervised on unlabeled features
(:mod:`procvid.train.sbd`) with a trimmed loss that leaves the largest errors out, so it learns
what ordinary motion within a step looks like and not how a step change unfolds; its
prediction error ("surprise") 1 - cos(prediction, x_t) should be low inside a step and jump where
a new step starts, or where the ongoing change stops, because neither can be foreseen from the
past. How well it does depends on the features: see checkpoints/procvid-sbd/MODEL_CARD.md.
With clip-level features a step change builds up over a few frames; ``peak_s`` moves each
boundary from where the rule fires to the highest error shortly after.

Unknown K, read online from the start of the video: frame t opens a new segment when its error
exceeds the mean of the errors since the last boundary by ``threshold`` times their spread
(standard deviation, at least ``min_spread``) and by at least ``min_jump`` in absolute terms,
and the current segment is at least ``min_segment_s`` long. After a boundary the statistics
restart; the errors of the first ``settle_s`` seconds after it are left out of them, because the
predictor's context still holds the previous segment there and they run high (on the tuning
world with the frame encoder's features: boundary F1 0.52 when they are counted, 0.61 when the
first second is left out). Restarting the predictor's context at a boundary as well made no
difference there (0.602 vs 0.605) and costs a forward pass per boundary, so errors come from one
pass over the video.
Score: the error's gap above the mean in units of the spread.

Known K: the peaks of the error curve with non-maximum suppression (peaks closer than
``min_segment_s`` keep only the higher), scored by their error; the base class keeps the
K-1 highest.

The predictor is tied to its encoder: the shipped checkpoint (checkpoints/procvid-sbd/) was
trained on features of the `video` encoder, and its config.json records that encoder's id;
:attr:`SBDDetector.encoder` exposes it so callers can warn when features come from another one.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import find_peaks
from torch import nn

from procvid.checkpoint import CONFIG_NAME, WEIGHTS_NAME, Pretrained, model_folder
from procvid.errors import ProcvidError
from procvid.paths import CHECKPOINTS_DIR
from procvid.registry import DETECTORS
from procvid.segment.base import Detector, seconds_to_frames
from procvid.threads import torch_threads

DEFAULT_CHECKPOINT = CHECKPOINTS_DIR / "procvid-sbd"


class WindowBlock(nn.Module):
    """Pre-norm transformer block in which token t attends to tokens t-window+1 .. t only (causal
    sliding window), with a learned bias per head and relative offset as position information.
    Every token is computed once, so a T-frame video costs O(T * window * width), not O(T^2)."""

    def __init__(self, width: int, heads: int, window: int):
        super().__init__()
        self.heads, self.window = heads, window
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.bias = nn.Parameter(torch.zeros(heads, window))  # [head, offset], offset 0 = the token itself
        self.ff = nn.Sequential(nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, width))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """[B, T, width] -> [B, T, width]."""
        B, T, C = h.shape
        H, W = self.heads, self.window
        q, k, v = self.qkv(self.norm1(h)).chunk(3, dim=-1)

        def windows(x):  # [B, T, C] -> [B, T, W, H, C/H], slot w holds token t - (W-1) + w
            x = F.pad(x, (0, 0, W - 1, 0))
            return x.unfold(1, W, 1).transpose(-1, -2).reshape(B, T, W, H, C // H)

        scores = torch.einsum("bthd,btwhd->bthw", q.reshape(B, T, H, C // H), windows(k)) / math.sqrt(C // H)
        scores = scores + self.bias.flip(-1)  # slot w is offset W-1-w
        before_start = torch.arange(T, device=h.device)[:, None] - (W - 1) + torch.arange(W, device=h.device) < 0
        scores = scores.masked_fill(before_start[None, :, None, :], float("-inf"))
        out = torch.einsum("bthw,btwhd->bthd", scores.softmax(-1), windows(v)).reshape(B, T, C)
        h = h + self.proj(out)
        return h + self.ff(self.norm2(h))


class NextEmbeddingPredictor(Pretrained, nn.Module):
    """Causal sliding-window transformer: embeddings [.., T, D] -> unit predictions of frames 1..T.

    The prediction of frame t+1 is read from token t; it sees frames t - layers * (window - 1) .. t.
    A model folder (procvid.checkpoint) records the training features' `encoder` id in its `info`.
    """

    KIND = "sbd-predictor"

    def __init__(self, dim: int, window: int = 8, width: int = 64, layers: int = 2, heads: int = 4):
        super().__init__()
        self.config = dict(dim=dim, window=window, width=width, layers=layers, heads=heads)
        self.inp = nn.Linear(dim, width)
        self.blocks = nn.Sequential(*(WindowBlock(width, heads, window) for _ in range(layers)))
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)  # start as "copy the last frame"
        nn.init.zeros_(self.out.bias)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """[B, T, D] unit rows -> [B, T, D]: row t predicts frame t+1 (a correction of frame t)."""
        return F.normalize(X + self.out(self.blocks(self.inp(X))), dim=-1)

    def errors(self, X: torch.Tensor) -> torch.Tensor:
        """Surprise 1 - cos(prediction, x_t) of every frame of X [T, D] given the frames before it
        in X; the first frame, with no past, has error 0."""
        if len(X) < 2:
            return X.new_zeros(len(X))
        pred = self(X[None, :-1])[0]
        return torch.cat([X.new_zeros(1), 1.0 - (pred * X[1:]).sum(-1)])


@functools.lru_cache(maxsize=4)
def _load(folder: str, stamp: tuple) -> NextEmbeddingPredictor:
    return NextEmbeddingPredictor.from_pretrained(folder).eval().requires_grad_(False)


def predictor(checkpoint: str | Path | None = None) -> NextEmbeddingPredictor:
    """The predictor of a model folder (default: the shipped one), cached until its files change."""
    folder = model_folder(checkpoint or DEFAULT_CHECKPOINT)
    if not folder.exists():
        hint = " (train it: procvid train sbd --config configs/train/sbd.yaml)" if not checkpoint else ""
        raise ProcvidError(f"sbd: checkpoint not found: {folder}{hint}")
    stamp = tuple(f.stat().st_mtime_ns if f.exists() else 0 for f in (folder / CONFIG_NAME, folder / WEIGHTS_NAME))
    return _load(str(folder.resolve()), stamp)


@DETECTORS.register("sbd", "surprise of a learned next-embedding predictor (default; shipped predictor)")
@dataclass
class SBDDetector(Detector):
    """Boundaries where the learned predictor's surprise jumps above the current segment's level."""

    name: ClassVar[str] = "sbd"

    checkpoint: str = ""
    """Predictor model folder (config.json + model.safetensors, or that model.safetensors);
    empty: the shipped one."""
    # Defaults: the best of 216 settings on a tuning world (seed 3) with the shipped checkpoint and
    # `video` features (`tools/bench_segment.py --tune`): boundary F1 (+-1 s) 0.878.
    merge: float = 0.2  # chosen on the tuning worlds (seed 3, v1 and v1 long steps); see Detector
    threshold: float = 0.5
    """How many spreads above the segment's mean error a boundary's error must be."""
    min_jump: float = 0.0
    """Smallest absolute rise of the error (1 - cosine) over the segment's mean that counts."""
    min_spread: float = 0.03
    """Floor of the spread, so a very steady segment does not make every wobble a boundary."""
    min_segment_s: float = 1.0
    """Minimum segment length, and no boundary closer than this to the video's end."""
    settle_s: float = 0.5
    """Errors this soon after a boundary are left out of the new segment's statistics."""
    peak_s: float = 1.0
    """A boundary moves to the highest error within this many seconds after the rule fires."""

    @property
    def input_dim(self) -> int:
        """Embedding size the predictor was trained on (features must match it)."""
        return predictor(self.checkpoint).config["dim"]

    @property
    def encoder(self) -> str | None:
        """Id of the encoder whose features the predictor was trained on."""
        return predictor(self.checkpoint).info.get("encoder")

    @property
    def domain(self) -> str | None:
        """The footage the predictor was trained on (procvid.domain)."""
        return predictor(self.checkpoint).info.get("domain")

    def find_boundaries(self, X, step, num_segments):
        model = predictor(self.checkpoint)
        dim = self.input_dim
        if X.shape[1] != dim:
            raise ProcvidError(
                f"sbd: features have {X.shape[1]} dims but the predictor expects {dim}; "
                f"embed with the encoder it was trained on ({self.encoder})"
            )
        gap = seconds_to_frames(self.min_segment_s, step)
        Xt = torch.from_numpy(X)
        with torch_threads(1), torch.inference_mode():  # tiny matrices (procvid.threads)
            errors = model.errors(Xt).numpy().astype(np.float64)
        if num_segments is not None:
            candidates = errors.copy()
            candidates[:gap] = -np.inf  # no segment shorter than `gap` at either end
            candidates[len(X) - gap + 1 :] = -np.inf
            peaks, _ = find_peaks(candidates, distance=gap)
            return peaks, errors[peaks]
        settle = seconds_to_frames(self.settle_s, step, minimum=0)
        peak = seconds_to_frames(self.peak_s, step, minimum=0)
        return surprise_boundaries(errors, gap, settle, self.threshold, self.min_jump, self.min_spread, peak)


def surprise_boundaries(errors: np.ndarray, gap: int, settle: int, threshold: float, min_jump: float,
                        min_spread: float, peak: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The online rule on an error curve: boundaries (frame indices) and their scores.

    Frame t (with t - last boundary >= gap and T - t >= gap) is a boundary when
    errors[t] - mean >= max(threshold * max(std, min_spread), min_jump), mean/std taken over the
    errors of the current segment's frames so far, leaving out its first frame (the jump into it)
    and the ``settle`` frames after it. The video's first frame counts as a boundary.
    With ``peak`` > 0 a boundary found at t moves to the frame of highest error in t .. t + peak:
    a change that builds up over a few frames is placed where it is steepest, not where it starts.
    """
    T = len(errors)
    bounds, scores = [], []
    last = 0
    n = 0
    mean = m2 = 0.0
    for t in range(1, T):
        e = float(errors[t])
        if n and t - last >= gap and T - t >= gap:
            spread = max(math.sqrt(m2 / n), min_spread)
            if e - mean >= max(threshold * spread, min_jump):
                if peak:  # frames up to the moved boundary are then skipped: t - last <= settle
                    t += int(np.argmax(errors[t : min(t + peak + 1, T - gap + 1)]))
                    e = float(errors[t])
                bounds.append(t)
                scores.append((e - mean) / spread)
                last, n, mean, m2 = t, 0, 0.0, 0.0
                continue
        if t - last <= settle:
            continue
        n += 1  # Welford's running mean and variance of the segment's errors
        d = e - mean
        mean += d / n
        m2 += d * (e - mean)
    return np.asarray(bounds, dtype=np.int64), np.asarray(scores, dtype=np.float64)
