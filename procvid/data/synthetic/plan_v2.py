"""Video planning for the v2 world: step durations, idle gaps and repeated steps drawn from a real
dataset's annotation statistics (timing.json), on the same frame grid as v1."""

from __future__ import annotations

import math

import numpy as np

from procvid.errors import ProcvidError

from .plan import MIN_STEP_FRAMES, VideoPlan, frame_grid
from .tasks import TaskSpec, sample_order
from .timing import TIMINGS, load_timing, sample_quantiles

MAX_DURATION = 3600.0  # a v2 video never runs longer (s): the timing's tails would allow hours
MAX_REPEATS = 3  # extra performances of one step at most
REDRAWS = 20  # timelines drawn before one outside [min, max] duration is scaled into it


def check_timing(timing: str) -> str:
    if timing not in TIMINGS:
        raise ProcvidError(f"unknown timing {timing!r} (choose {', '.join(TIMINGS)})")
    return timing


def with_repeats(spec: TaskSpec, order: list[int], rate: float, immediate: float,
                 rng: np.random.Generator) -> list[int]:
    """`order` with some steps performed again: each step gets a geometric number of extra
    performances (continuation probability `rate`, so about that share of all performed steps are
    repeats, as in the dataset), right after the last one with probability `immediate`, else at a
    later place before the next step acting on the same object. A repeat redoes the step without
    changing the scene's lasting state, so any such place renders consistently."""
    rate = min(max(rate, 0.0), 0.5)
    seq = list(order)
    for step in order:
        obj = spec.action(step).obj
        extra = 0
        while extra < MAX_REPEATS and rng.random() < rate:
            extra += 1
        for _ in range(extra):
            last = max(i for i, s in enumerate(seq) if s == step)
            limit = next((i for i in range(last + 1, len(seq))
                          if seq[i] != step and spec.action(seq[i]).obj == obj), len(seq))
            later = rng.random() >= immediate and limit > last + 1
            at = int(rng.integers(last + 2, limit + 1)) if later else last + 1
            seq.insert(at, step)
    return seq


def _draw(stats: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Interleaved seconds: lead, step, gap, step, ..., step, tail (gaps clipped at 0)."""
    levels = stats["levels"]
    out = np.empty(2 * n + 1)
    out[1::2] = sample_quantiles(stats["step_duration"], levels, rng, n)
    out[0] = sample_quantiles(stats["lead"], levels, rng)
    out[2:-1:2] = sample_quantiles(stats["gap"], levels, rng, n - 1)
    out[-1] = sample_quantiles(stats["tail"] or stats["gap"], levels, rng)
    return np.maximum(out, 0.0)


def plan_video_v2(
    spec: TaskSpec,
    index: int,
    seed: int = 0,
    fps: float = 10.0,
    timing: str = "crosstask",
    min_duration: float | None = None,
    max_duration: float | None = None,
) -> VideoPlan:
    """Order (with repeats) and step timing of v2 video `index`; depends only on (seed, index).

    Step durations, the gaps between steps, the lead before the first step and the tail after the
    last are drawn independently from `timing`'s quantiles (CrossTask states no video lengths, so
    its tail follows its gaps), then snapped to the frame grid: a step lasts at least
    MIN_STEP_FRAMES, every gap at least one grid cell (overlapping real steps become adjacent ones).
    The video's length is what they add up to. With min/max duration, up to REDRAWS timelines are
    drawn until one fits; if none does, the last is scaled as a whole into the bounds (which shortens
    or stretches every step alike), the longest parts giving up what the grid minimums add above the
    maximum. Lengths are capped at MAX_DURATION the same way.
    """
    stats = load_timing(check_timing(timing))
    order = sample_order(spec, np.random.default_rng([seed, index, 0]))
    rng = np.random.default_rng([seed, index, 2])
    seq = with_repeats(spec, order, stats["repeat_rate"], stats["immediate_repeat_share"], rng)
    n = len(seq)
    lo = 0.0 if min_duration is None else float(min_duration)
    hi = MAX_DURATION if max_duration is None else min(float(max_duration), MAX_DURATION)
    for _ in range(REDRAWS):
        secs = _draw(stats, n, rng)
        if lo <= secs.sum() <= hi:
            break
    else:
        secs *= min(max(secs.sum(), lo), hi) / max(secs.sum(), 1e-9)
    grid = frame_grid(fps)
    least = np.ones(2 * n + 1, dtype=np.int64)
    least[1::2] = math.ceil(MIN_STEP_FRAMES / grid)
    cells = np.maximum(np.round(secs * fps / grid).astype(np.int64), least)
    excess = int(cells.sum()) - max(int(hi * fps / grid), int(least.sum()))
    while excess > 0:  # minimum lengths pushed a bounded video over: take it from the longest parts
        i = int(np.argmax(cells - least))
        take = min(excess, int(cells[i] - least[i]))
        cells[i] -= take
        excess -= take
    bounds = np.concatenate([[0], np.cumsum(cells)]) * grid
    segments = tuple((step, int(bounds[2 * i + 1]), int(bounds[2 * i + 2]))
                     for i, step in enumerate(seq))
    return VideoPlan(f"{spec.id}_{index:04d}", spec.id, index, float(fps), int(bounds[-1]), segments)
