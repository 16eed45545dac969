"""Video planning: step order and frame-exact step timing of each video, before any pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from procvid.errors import ProcvidError

from .tasks import _TASKS, TaskSpec, sample_order

MIN_STEP_FRAMES = 3  # a step must last long enough to show motion and a gradual change


@dataclass(frozen=True)
class VideoPlan:
    """Everything about a video except its pixels: order, step frames, length."""

    video_id: str
    task_id: str
    index: int
    fps: float
    num_frames: int
    segments: tuple[tuple[int, int, int], ...]  # (step id, start frame, end frame), temporal order

    @property
    def order(self) -> list[int]:
        return [step for step, _, _ in self.segments]

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def path(self) -> str:
        return f"videos/{self.video_id}.mp4"

    def labels(self) -> np.ndarray:
        """Per-frame step ids (0 = idle gap)."""
        labels = np.zeros(self.num_frames, dtype=np.int16)
        for step, start, end in self.segments:
            labels[start:end] = step
        return labels

    def annotation_csv(self) -> str:
        """CrossTask rows `step,start,end` in seconds."""
        rows = (f"{step},{s / self.fps:.2f},{e / self.fps:.2f}\n" for step, s, e in self.segments)
        return "".join(rows)

    def timeline(self) -> list[tuple[int, int, int]]:
        """Steps and the idle gaps between them (step 0) covering every frame."""
        out, cursor = [], 0
        for step, start, end in self.segments:
            out += [(0, cursor, start), (step, start, end)]
            cursor = end
        return out + [(0, cursor, self.num_frames)]


def frame_grid(fps: float) -> int:
    """Smallest frame stride whose times are exact multiples of 0.01 s (boundaries snap to it)."""
    rate = Fraction(fps).limit_denominator(1000)
    if fps <= 0 or abs(float(rate) - fps) > 1e-9:
        raise ProcvidError(f"fps {fps} is not a simple rational number (use e.g. 10, 25 or 30)")
    grid = rate.numerator // math.gcd(rate.numerator, rate.denominator * 100)
    if grid > fps:
        raise ProcvidError(f"fps {fps} puts no frame on a 0.01 s grid within a second "
                           "(use e.g. 10, 25 or 30)")
    return grid


def _min_cells(num_steps: int, grid: int) -> int:
    """Fewest grid cells for num_steps steps with an idle gap before, between and after them."""
    return num_steps * math.ceil(MIN_STEP_FRAMES / grid) + num_steps + 1


def min_video_duration(fps: float) -> float:
    """Shortest video length (s) that fits the longest task at this frame rate."""
    grid = frame_grid(fps)
    return _min_cells(max(len(t.steps) for t in _TASKS), grid) * grid / fps


def plan_video(
    spec: TaskSpec,
    index: int,
    seed: int = 0,
    fps: float = 10.0,
    min_duration: float = 30.0,
    max_duration: float = 90.0,
) -> VideoPlan:
    """Order and step timing of video `index`; depends only on (seed, index), not on rendering."""
    rng = np.random.default_rng([seed, index, 0])
    order = sample_order(spec, rng)
    grid = frame_grid(fps)
    n = len(order)
    cells = max(round(rng.uniform(min_duration, max_duration) * fps / grid), _min_cells(n, grid))
    # Interleaved gap/step weights: gap, step, gap, ..., step, gap (idle time ~30%).
    weights = np.empty(2 * n + 1)
    weights[0::2] = rng.uniform(0.05, 0.8, n + 1)
    weights[1::2] = rng.uniform(0.7, 1.5, n)
    lengths = np.ones(2 * n + 1, dtype=np.int64)
    lengths[1::2] = math.ceil(MIN_STEP_FRAMES / grid)
    lengths += _split(cells - int(lengths.sum()), weights)
    bounds = np.concatenate([[0], np.cumsum(lengths)]) * grid
    segments = tuple(
        (step, int(bounds[2 * i + 1]), int(bounds[2 * i + 2])) for i, step in enumerate(order)
    )
    video_id = f"{spec.id}_{index:04d}"
    return VideoPlan(video_id, spec.id, index, float(fps), int(bounds[-1]), segments)


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of `total` proportional to weights (largest remainder)."""
    exact = total * weights / weights.sum()
    shares = np.floor(exact).astype(np.int64)
    shares[np.argsort(shares - exact, kind="stable")[: total - int(shares.sum())]] += 1
    return shares
