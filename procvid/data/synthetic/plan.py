"""Video planning: step order and frame-exact step timing of each video, before any pixels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from procvid.errors import ProcvidError

from .tasks import _TASKS, TaskSpec, sample_order

MIN_STEP_FRAMES = 3  # a step must last long enough to show motion and a gradual change


MISTAKE_KINDS = ("order", "skip", "repeat")
# Error tag of the performed step that shows each kind (CaptainCook4D's tags where it has one).
MISTAKE_TAGS = {"order": "Order Error", "skip": "Missing Step", "repeat": "Repeated Step"}
SHOWN = ("place", "move", "grow")  # actions whose effect shows even when nothing was there before


@dataclass(frozen=True)
class Mistake:
    """One deviation from the task's graph: `step` is performed at segment `index` (temporal order)
    before one of its preconditions (order), after the required step `skipped` was left out (skip:
    `step` is the first performed step that needs it), or a second time (repeat)."""

    kind: str
    step: int
    index: int
    skipped: int | None = None

    @property
    def tag(self) -> str:
        return MISTAKE_TAGS[self.kind]

    def to_dict(self) -> dict:
        return {"kind": self.kind, "step": self.step, "index": self.index, "skipped": self.skipped,
                "tag": self.tag}


@dataclass(frozen=True)
class VideoPlan:
    """Everything about a video except its pixels: order, step frames, length."""

    video_id: str
    task_id: str
    index: int
    fps: float
    num_frames: int
    segments: tuple[tuple[int, int, int], ...]  # (step id, start frame, end frame), temporal order
    mistake: Mistake | None = None  # the deviation this video performs (worlds made with mistakes)

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
    mistakes: float = 0.0,
) -> VideoPlan:
    """Order and step timing of video `index`; depends only on (seed, index), not on rendering.
    mistakes: probability that the video deviates from its task's graph (with_mistake); 0 gives
    exactly the plans of a world without the option."""
    rng = np.random.default_rng([seed, index, 0])
    order = sample_order(spec, rng)
    mistake = None
    if mistakes > 0:  # own random stream: the order and timing draws above stay those of a clean world
        order, mistake = with_mistake(spec, order, mistakes, np.random.default_rng([seed, index, 3]))
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
    return VideoPlan(video_id, spec.id, index, float(fps), int(bounds[-1]), segments, mistake)


def with_mistake(spec: TaskSpec, order: list[int], probability: float,
                 rng: np.random.Generator) -> tuple[list[int], Mistake | None]:
    """`order` with, at `probability`, one mistake of a kind drawn uniformly among those possible:
    order: a step with a precondition moves to a random earlier place before that precondition,
      where its effect shows (a recolor or reshape only once its object is there);
    skip: a required step that a later step needs is left out (the first such later step is tagged);
    repeat: a step that places or grows something is performed again at a random later place.
    The renderer plays the order as given, so the video shows the deviation."""
    if rng.random() >= probability:
        return list(order), None
    pre = {s: {u for u, v in spec.edges if v == s} for s in spec.step_ids}
    pos = {s: i for i, s in enumerate(order)}
    options = {}
    moves = []  # (step, new position in the order without it)
    for s in order:
        rest = [x for x in order if x != s]
        latest = max((rest.index(u) for u in pre[s] if u in pos), default=-1)
        moves += [(s, p) for p in range(latest + 1) if _shows(spec, rest[:p], s)]
    if moves:
        options["order"] = moves
    skips = [s for s in order if s not in spec.optional
             and any(s in pre[v] for v in order[pos[s] + 1:])]
    if skips:
        options["skip"] = skips
    repeats = [(s, p) for s in order if spec.action(s).kind in ("place", "grow")
               for p in range(pos[s] + 1, len(order) + 1)]
    if repeats:
        options["repeat"] = repeats
    if not options:
        return list(order), None
    kind = sorted(options)[int(rng.integers(len(options)))]
    choice = options[kind][int(rng.integers(len(options[kind])))]
    if kind == "order":
        step, p = choice
        new = [x for x in order if x != step]
        new.insert(p, step)
        return new, Mistake(kind, step, p)
    if kind == "skip":
        new = [x for x in order if x != choice]
        first = next(i for i, v in enumerate(new) if i >= pos[choice] and choice in pre[v])
        return new, Mistake(kind, new[first], first, choice)
    step, p = choice
    new = list(order)
    new.insert(p, step)
    return new, Mistake(kind, step, p)


def _shows(spec: TaskSpec, done: list[int], step: int) -> bool:
    """Whether performing `step` after `done` changes what is on screen (its object is there after)."""
    obj = spec.action(step).obj
    return spec.action(step).kind in SHOWN or any(
        spec.action(s).obj == obj and spec.action(s).kind in SHOWN for s in done)


def _split(total: int, weights: np.ndarray) -> np.ndarray:
    """Integer shares of `total` proportional to weights (largest remainder)."""
    exact = total * weights / weights.sum()
    shares = np.floor(exact).astype(np.int64)
    shares[np.argsort(shares - exact, kind="stable")[: total - int(shares.sum())]] += 1
    return shares
