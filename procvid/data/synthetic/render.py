"""Rendering: scene state, shape drawing, the moving hand and camera effects, video frames."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterator, Sequence

import numpy as np

from .plan import VideoPlan
from .tasks import RGB, Action, Obj, Point, Scene, TaskSpec

CARRY = ("place", "move")  # the hand carries the object along its path
TOOL = ("grow", "recolor", "reshape")  # the hand circles over the object with a tool


@dataclass
class _ObjState:
    present: bool
    pos: Point
    scale: float
    color: RGB
    roundness: float


def _initial_state(spec: TaskSpec) -> dict[str, _ObjState]:
    return {o.name: _ObjState(False, (0.5, 0.5), 1.0, o.color, o.roundness) for o in spec.objects}


def _advance(st: _ObjState, action: Action, u: float, carried_at: Point | None = None):
    """Object state after fraction u of the action (u = 1: done); carried ones follow the hand."""
    kind, value = action.kind, action.value
    if kind in CARRY:
        pos = value if carried_at is None or u >= 1 else carried_at
        return replace(st, present=True, pos=pos)
    if kind == "grow":
        return replace(st, present=True, pos=value, scale=u)
    if kind == "recolor":
        return replace(st, color=tuple(a + (b - a) * u for a, b in zip(st.color, value)))
    if kind == "reshape":
        return replace(st, roundness=st.roundness + (value[0] - st.roundness) * u)
    raise ValueError(f"unknown action kind {kind!r}")


def _apply_steps(spec: TaskSpec, steps: Sequence[int], actions=None) -> dict[str, _ObjState]:
    state = _initial_state(spec)
    for step in steps:
        action = (actions or spec.actions)[step - 1]
        state[action.obj] = _advance(state[action.obj], action, 1.0)
    return state


def _smoothstep(u: float) -> float:
    u = min(max(u, 0.0), 1.0)
    return u * u * (3 - 2 * u)


def _sdf(shape, dx, dy, size, roundness=0.0, angle=0.0):
    """Signed distance (normalised units) from pixel offsets dx (1, w), dy (h, 1) to a shape."""
    if angle:
        c, s = math.cos(angle), math.sin(angle)
        dx, dy = c * dx + s * dy, c * dy - s * dx
    if shape == "disc":
        return np.sqrt(dx * dx + dy * dy) - size[0]
    if shape == "ring":
        return np.abs(np.sqrt(dx * dx + dy * dy) - size[0]) - size[1]
    if shape == "box":
        corner = roundness * min(size)
        qx = np.abs(dx) - (size[0] - corner)
        qy = np.abs(dy) - (size[1] - corner)
        outside = np.sqrt(np.maximum(qx, 0) ** 2 + np.maximum(qy, 0) ** 2)
        return outside + np.minimum(np.maximum(qx, qy), 0) - corner
    if shape == "tri":  # equilateral, pointing up (Inigo Quilez's formula with y flipped)
        r, k = size[0], math.sqrt(3.0)
        px, py = np.abs(dx) - r, r / k - dy
        fold = px + k * py > 0
        px, py = np.where(fold, (px - k * py) / 2, px), np.where(fold, (-k * px - py) / 2, py)
        px = px - np.clip(px, -2 * r, 0)
        return -np.sqrt(px * px + py * py) * np.sign(py)
    raise ValueError(f"unknown shape {shape!r}")


def _extent(obj: Obj, scale: float) -> float:
    """Radius of a circle around the object's centre that contains it."""
    if obj.shape == "ring":
        return (obj.size[0] + obj.size[1]) * scale
    if obj.shape == "box":
        return math.hypot(*obj.size) * scale
    return obj.size[0] * (1.2 if obj.shape == "tri" else 1.0) * scale


class _Canvas:
    """Pixel grid of a frame plus a margin that the camera jitter crops from."""

    def __init__(self, size: int, margin: int = 0):
        self.size, self.margin = size, margin
        self.side = size + 2 * margin
        self.coords = ((np.arange(self.side) - margin + 0.5) / size).astype(np.float32)

    def window(self, cx: float, cy: float, radius: float):
        """Pixel slices and coordinate offsets of the square around (cx, cy); None if off-canvas."""
        r = radius + 1.5 / self.size
        lo = lambda c: max(0, int((c - r) * self.size) + self.margin)  # noqa: E731
        hi = lambda c: min(self.side, int((c + r) * self.size) + self.margin + 2)  # noqa: E731
        x0, x1, y0, y1 = lo(cx), hi(cx), lo(cy), hi(cy)
        if x0 >= x1 or y0 >= y1:
            return None
        dx = (self.coords[x0:x1] - cx)[None, :]
        dy = (self.coords[y0:y1] - cy)[:, None]
        return (slice(y0, y1), slice(x0, x1)), dx, dy

    def paint(self, rgb, alpha, where, dist, color, opacity=1.0):
        """Alpha-composite a shape given its distance field; alpha (if given) accumulates it."""
        cover = np.clip(0.5 - dist * self.size, 0.0, 1.0)
        if opacity < 1.0:
            cover *= opacity
        region = rgb[where]
        region += (np.asarray(color, np.float32) - region) * cover[..., None]
        if alpha is not None:
            alpha[where] += (1.0 - alpha[where]) * cover

    def draw(self, rgb, obj: Obj, pos: Point, color=None, scale=1.0, roundness=None, alpha=None,
             opacity=1.0):
        if scale <= 0:
            return
        win = self.window(pos[0], pos[1], _extent(obj, scale))
        if win is None:
            return
        where, dx, dy = win
        size = (obj.size[0] * scale, obj.size[1] * scale)
        rnd = obj.roundness if roundness is None else roundness
        dist = _sdf(obj.shape, dx, dy, size, rnd, obj.angle)
        self.paint(rgb, alpha, where, dist, obj.color if color is None else color, opacity)

    def draw_state(self, rgb, obj: Obj, st: _ObjState, alpha=None):
        if st.present:
            self.draw(rgb, obj, st.pos, st.color, st.scale, st.roundness, alpha)

    def capsule(self, rgb, a: Point, b: Point, radius: float, color, opacity=1.0):
        """A thick line segment from a to b (arm, tool)."""
        cx, cy = (a[0] + b[0]) / 2, (a[1] + b[1]) / 2
        win = self.window(cx, cy, math.hypot(b[0] - a[0], b[1] - a[1]) / 2 + radius)
        if win is None:
            return
        where, dx, dy = win
        # Offsets from a; project onto the segment and clamp to its ends.
        ax, ay = dx + (cx - a[0]), dy + (cy - a[1])
        bx, by = b[0] - a[0], b[1] - a[1]
        t = np.clip((ax * bx + ay * by) / max(bx * bx + by * by, 1e-12), 0.0, 1.0)
        dist = np.sqrt((ax - t * bx) ** 2 + (ay - t * by) ** 2) - radius
        self.paint(rgb, None, where, dist, color, opacity)


def _background(scene: Scene, canvas: _Canvas) -> np.ndarray:
    """Floor, table (with optional wood grain) and decor as a float32 image."""
    y = canvas.coords[:, None]
    x = canvas.coords[None, :]
    x0, y0, x1, y1 = scene.table_box
    on_table = ((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))[..., None]
    table = np.asarray(scene.table, np.float32) * np.ones_like(x)[..., None]
    if scene.grain:
        stripes = np.sin(2 * np.pi * (scene.grain * y + 0.25 * np.sin(2 * np.pi * 1.3 * x)))
        table = table * (1 + 0.05 * stripes)[..., None]
    img = np.where(on_table, table, np.asarray(scene.floor, np.float32)).astype(np.float32)
    for obj, pos in scene.decor:
        canvas.draw(img, obj, pos)
    return img


def render_state(spec: TaskSpec, steps: Sequence[int], size: int = 96) -> np.ndarray:
    """Clean image (uint8 [H, W, 3]; no hand, noise or jitter) of the scene after `steps`."""
    canvas = _Canvas(size)
    img = _background(spec.scene, canvas)
    state = _apply_steps(spec, steps)
    for obj in spec.objects:
        canvas.draw_state(img, obj, state[obj.name])
    return _to_uint8(img)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    np.clip(img, 0, 255, out=img)
    img += 0.5
    return img.astype(np.uint8)


def _wobble(rng: np.random.Generator, n: int, fps: float, count=3, lo=0.05, hi=0.5):
    """Smooth random signal in [-1, 1]: a few sinusoids with random frequencies (Hz) and phases."""
    t = np.arange(n) / fps
    freq = rng.uniform(lo, hi, (count, 1))
    phase = rng.uniform(0, 2 * np.pi, (count, 1))
    amp = rng.uniform(0.5, 1.0, (count, 1))
    return (amp * np.sin(2 * np.pi * freq * t + phase)).sum(0) / amp.sum()


def _hermite(times: Sequence[float], points: Sequence[Point], n: int) -> np.ndarray:
    """Positions at frames 0..n-1 of a C1 (Catmull-Rom) curve through timed waypoints."""
    t_k = np.asarray(times, float)
    p_k = np.asarray(points, float)
    m_k = np.zeros_like(p_k)
    m_k[1:-1] = (p_k[2:] - p_k[:-2]) / (t_k[2:] - t_k[:-2])[:, None]
    t = np.arange(n, dtype=float)
    i = np.clip(np.searchsorted(t_k, t, side="right") - 1, 0, len(t_k) - 2)
    h = (t_k[i + 1] - t_k[i])[:, None]
    s = (t - t_k[i])[:, None] / h
    s2, s3 = s * s, s * s * s
    return ((2 * s3 - 3 * s2 + 1) * p_k[i] + (s3 - 2 * s2 + s) * h * m_k[i]
            + (3 * s2 - 2 * s3) * p_k[i + 1] + (s3 - s2) * h * m_k[i + 1])


SKIN = ((224, 182, 150), (198, 145, 110), (150, 100, 70), (235, 200, 175))
SLEEVES = ((40, 60, 120), (120, 40, 50), (60, 60, 60), (200, 200, 205), (40, 100, 70))
HAND_RADIUS = 0.05
ARM_RADIUS = 0.038
TOOL_TIP = (0.045, -0.065)  # tool tip relative to the hand: the tool is held pointing up-right
TOOL_COLOR = (95, 95, 105)


@dataclass
class _StepRun:
    """One step of a video: its frames, effect, and the scene state when it starts."""

    start: int
    end: int
    action: Action
    before: dict[str, _ObjState]
    done_at: float  # frame at which the change is complete

    def progress(self, t: int) -> float:
        return _smoothstep((t - self.start) / (self.done_at - self.start))


class _VideoRenderer:
    """Renders one planned video frame by frame; static layers are cached per timeline segment."""

    MARGIN = 0.03  # canvas margin (fraction of the frame) that the camera may move into

    def __init__(self, spec: TaskSpec, plan: VideoPlan, rng: np.random.Generator, size: int,
                 difficulty: float):
        self.spec, self.plan, self.size = spec, plan, size
        self.objects = {o.name: o for o in spec.objects}
        self.z = {o.name: i for i, o in enumerate(spec.objects)}
        margin = math.ceil(self.MARGIN * size) + 2
        self.canvas = _Canvas(size, margin)
        self.background = _background(spec.scene, self.canvas)
        self.actions = _jitter_actions(spec, rng)
        self.runs = self._step_runs()
        self.skin = SKIN[rng.integers(len(SKIN))]
        self.sleeve = SLEEVES[rng.integers(len(SLEEVES))]
        self.anchor = (0.5 + rng.uniform(-0.15, 0.15), 1.3)
        self.hand = self._hand_path(rng)
        self._camera_signals(rng, difficulty, margin)

    def _step_runs(self) -> list[_StepRun]:
        runs, done = [], []
        for step, start, end in self.plan.segments:
            before = _apply_steps(self.spec, done, self.actions)
            done_at = start + 0.8 * (end - 1 - start)
            runs.append(_StepRun(start, end, self.actions[step - 1], before, done_at))
            done.append(step)
        return runs

    # -- hand

    def _hand_path(self, rng: np.random.Generator) -> np.ndarray:
        """Waypoints of every step (carry, or circling with a tool) joined by idle wandering, as one
        C1 curve: the hand never jumps, at step boundaries included."""
        n, fps = self.plan.num_frames, self.plan.fps
        rest = (self.anchor[0] + rng.uniform(-0.1, 0.1), 0.86)
        times, points = [0.0], [rest]
        for run in self.runs:
            waypoints = self._step_waypoints(run, rng)
            self._wander(times, points, run.start, waypoints[0][1], rest, rng, fps)
            for t, p in waypoints:
                times.append(t)
                points.append(p)
        self._wander(times, points, n, rest, rest, rng, fps)
        times.append(float(n))
        points.append(rest)
        return _hermite(times, points, n).astype(np.float32)

    @staticmethod
    def _wander(times, points, until, goal, rest, rng, fps):
        """Idle motion until frame `until`: drift towards `goal` with a detour about every 1.5 s."""
        start, p0 = times[-1], np.asarray(points[-1])
        p1 = np.asarray(goal)
        count = int((until - start) / (1.5 * fps))
        for j in range(count):
            frac = (j + 1) / (count + 1)
            p = p0 + (p1 - p0) * frac
            p = 0.75 * p + 0.25 * np.asarray(rest) + rng.normal(0, 0.05, 2)
            times.append(start + (until - start) * frac)
            points.append(tuple(np.clip(p, -0.1, 1.1)))

    def _step_waypoints(self, run: _StepRun, rng: np.random.Generator):
        action, obj = run.action, self.objects[run.action.obj]
        st = run.before[action.obj]
        if action.kind in CARRY:
            p1 = np.asarray(action.value)
            p0 = np.asarray(st.pos if action.kind == "move" else _entry_point(action.value))
            normal = np.array([p0[1] - p1[1], p1[0] - p0[0]]) / max(np.linalg.norm(p1 - p0), 1e-6)
            mid = (p0 + p1) / 2 + normal * rng.uniform(-0.08, 0.08)
            settle = p1 + rng.normal(0, 0.02, 2)
            return [(float(run.start), tuple(p0)), ((run.start + run.done_at) / 2, tuple(mid)),
                    (run.done_at, tuple(p1)), (float(run.end), tuple(settle))]
        # Tool steps: circle so that the tool tip sweeps over the object.
        target = action.value if action.kind == "grow" else st.pos
        centre = np.asarray(target) - np.asarray(TOOL_TIP)
        radius = 0.4 * _extent(obj, 1.0) + 0.02
        loops = max(1, round((run.end - run.start) / self.plan.fps / 1.5))
        phase = rng.uniform(0, 2 * np.pi)
        times = np.linspace(run.start, run.end, 4 * loops + 1)
        angles = phase + np.linspace(0, 2 * np.pi * loops, 4 * loops + 1)
        return [(float(t), (centre[0] + radius * math.cos(a), centre[1] + radius * math.sin(a)))
                for t, a in zip(times, angles)]

    def _draw_hand(self, img: np.ndarray, t: int, tool_opacity: float):
        hand = (float(self.hand[t, 0]), float(self.hand[t, 1]))
        self.canvas.capsule(img, self.anchor, hand, ARM_RADIUS, self.sleeve)
        self.canvas.capsule(img, hand, hand, HAND_RADIUS, self.skin)
        if tool_opacity > 0:
            tip = (hand[0] + TOOL_TIP[0], hand[1] + TOOL_TIP[1])
            self.canvas.capsule(img, hand, tip, 0.012, TOOL_COLOR, tool_opacity)

    # -- camera

    def _camera_signals(self, rng: np.random.Generator, difficulty: float, margin: int):
        n, fps, size = self.plan.num_frames, self.plan.fps, self.size
        amp = min(difficulty * 0.025 * size, margin - 1)
        shake = np.stack([_wobble(rng, n, fps) + 0.3 * _wobble(rng, n, fps, lo=1.0, hi=3.0)
                          for _ in range(2)], axis=1) / 1.3
        self.offsets = (margin + amp * shake).astype(np.float32)  # crop origin (x, y) in pixels
        level = 1 + 0.15 * difficulty * _wobble(rng, n, fps)
        tint = np.stack([1 + 0.06 * difficulty * _wobble(rng, n, fps) for _ in range(3)], axis=1)
        self.gain = (level[:, None] * tint).astype(np.float32)
        slope = np.stack([_wobble(rng, n, fps) for _ in range(2)], axis=1)
        self.slope = (0.25 * difficulty * slope).astype(np.float32)
        centred = (np.arange(size, dtype=np.float32) + 0.5) / size - 0.5
        self.cx, self.cy = centred[None, :], centred[:, None]
        self.noise = 10.0 * difficulty
        self.rng = rng

    def _camera(self, img: np.ndarray, t: int) -> np.ndarray:
        """Sub-pixel jittered crop, lighting drift and sensor noise."""
        s = self.size
        ox, oy = self.offsets[t]
        ix, iy = int(ox), int(oy)
        fx, fy = ox - ix, oy - iy
        cols = slice(ix, ix + s + 1)
        rows = img[iy:iy + s, cols] * (1 - fy) + img[iy + 1:iy + s + 1, cols] * fy
        out = rows[:, :s] * (1 - fx) + rows[:, 1:] * fx
        light = 1 + self.slope[t, 0] * self.cx + self.slope[t, 1] * self.cy
        out *= light[..., None] * self.gain[t]
        if self.noise:
            out += self.rng.standard_normal(out.shape, dtype=np.float32) * np.float32(self.noise)
        return _to_uint8(out)

    # -- frames

    def _layers(self, state, active: str | None):
        """Static scene below the active object, premultiplied RGBA layer above it (or None)."""
        below = self.background.copy()
        above_rgb = np.zeros_like(below)
        above_alpha = np.zeros(below.shape[:2], np.float32)
        has_above = False
        cut = self.z[active] if active else len(self.spec.objects)
        for obj in self.spec.objects:
            z = self.z[obj.name]
            if z < cut:
                self.canvas.draw_state(below, obj, state[obj.name])
            elif z > cut and state[obj.name].present:
                self.canvas.draw_state(above_rgb, obj, state[obj.name], alpha=above_alpha)
                has_above = True
        return below, ((above_rgb, 1 - above_alpha[..., None]) if has_above else None)

    def frames(self) -> Iterator[np.ndarray]:
        runs = {run.start: run for run in self.runs}
        done = 0  # steps finished so far
        for step, start, end in self.plan.timeline():
            if not step:
                state = _apply_steps(self.spec, self.plan.order[:done], self.actions)
                layers = self._layers(state, None)
                for t in range(start, end):
                    yield self._frame(layers, t)
                continue
            run = runs[start]
            layers = self._layers(run.before, run.action.obj)
            obj, st0 = self.objects[run.action.obj], run.before[run.action.obj]
            carry = run.action.kind in CARRY
            ramp = max(1.0, 0.15 * (end - start))  # the tool fades in and out, no pop at boundaries
            for t in range(start, end):
                held = tuple(self.hand[t]) if carry else None
                st = self._active_state(run, st0, t, held)
                tool = 0.0 if carry else min(1.0, (t - start + 1) / ramp, (end - t) / ramp)
                yield self._frame(layers, t, (obj, st), tool)
            done += 1

    def _active_state(self, run: _StepRun, st0: _ObjState, t: int, held) -> _ObjState:
        """State at frame t of the object the step `run` acts on (v2 overrides it)."""
        return _advance(st0, run.action, run.progress(t), held)

    def _frame(self, layers, t: int, active=None, tool: float = 0.0) -> np.ndarray:
        below, above = layers
        img = below.copy()
        if active:
            self.canvas.draw_state(img, *active)
        if above:
            rgb, keep = above
            img *= keep
            img += rgb
        self._draw_hand(img, t, tool)
        return self._camera(img, t)


def _entry_point(target: Point) -> Point:
    """Where the hand picks up a new object: just off the nearer side edge."""
    return (-0.12 if target[0] < 0.5 else 1.12, target[1])


def _jitter_actions(spec: TaskSpec, rng: np.random.Generator) -> tuple[Action, ...]:
    """Per-video placement variation: every object lands slightly off its nominal spot."""
    offsets = {o.name: np.clip(rng.normal(0, 0.01, 2), -0.02, 0.02) for o in spec.objects}
    out = []
    for action in spec.actions:
        if action.kind in ("place", "move", "grow"):
            dx, dy = offsets[action.obj]
            action = replace(action, value=(action.value[0] + dx, action.value[1] + dy))
        out.append(action)
    return tuple(out)


def iter_video_frames(
    spec: TaskSpec,
    plan: VideoPlan,
    rng: np.random.Generator,
    size: int = 96,
    difficulty: float = 0.5,
) -> Iterator[np.ndarray]:
    """Frames (uint8 [size, size, 3]) of a planned video, one at a time."""
    return _VideoRenderer(spec, plan, rng, size, difficulty).frames()


def render_video_frames(
    spec: TaskSpec,
    plan: VideoPlan,
    rng: np.random.Generator,
    size: int = 96,
    difficulty: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """All frames (uint8 [T, H, W, 3]) and per-frame step labels (int16 [T]) of a planned video."""
    frames = np.stack(list(iter_video_frames(spec, plan, rng, size, difficulty)))
    return frames, plan.labels()
