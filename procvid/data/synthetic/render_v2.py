"""Rendering of v2 videos: the v1 scene and hand plus nuisances that never touch the labels.

- background texture and clutter: the table and floor carry a procedural texture (value noise plus
  a checked or striped cloth, floor tiles) and a few static clutter shapes that no step acts on;
- camera pans and zoom: now and then the view glides (2-6 s, smoothstep) to a new pan and zoom
  (up to 1.2x) and holds, always keeping the middle of the table in view; v1's jitter stays on top;
- lighting: slow brightness and colour-temperature drifts plus a few abrupt changes (a light
  switched on or off: brightness and temperature jump from one frame to the next);
- distractors: a second hand reaching in and out from another edge, or an object sliding across;
- occlusion: a large soft-edged shape close to the camera briefly covering part of the view;
- repeated steps (planned in plan_v2): the hand redoes the step (a carried object is lifted and
  nudged and put back, a tool step circles again while its object pulses) without changing the
  lasting state.

Nuisance strength grows with difficulty (factor min(1, 0.5 + difficulty)); their frequency does
not. Their frame ranges are in `_VideoRendererV2.events` (written to nuisances/<video>.json).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Iterator

import numpy as np

from .plan import VideoPlan
from .render import (
    ARM_RADIUS,
    CARRY,
    HAND_RADIUS,
    SKIN,
    SLEEVES,
    _advance,
    _extent,
    _ObjState,
    _smoothstep,
    _StepRun,
    _VideoRenderer,
    _wobble,
)
from .tasks import Obj, TaskSpec

PAN_VIEW = 0.33  # the view always covers [0.5 - PAN_VIEW, 0.5 + PAN_VIEW] of the scene
MAX_ZOOM = 1.2
CAMERA_EVERY = 20.0  # mean seconds between camera moves (and the other nuisances below)
LIGHT_EVERY = 45.0
DISTRACTOR_EVERY = 25.0
OCCLUSION_EVERY = 40.0


def _upsample(grid: np.ndarray, side: int) -> np.ndarray:
    """Bilinear upsampling of a small 2-D grid to side x side."""
    g = np.arange(grid.shape[0])
    xs = np.linspace(0, grid.shape[0] - 1, side)
    rows = np.stack([np.interp(xs, g, row) for row in grid])
    return np.stack([np.interp(xs, g, col) for col in rows.T], axis=1)


def _value_noise(rng: np.random.Generator, side: int, cells: int) -> np.ndarray:
    return _upsample(rng.uniform(-1, 1, (cells + 1, cells + 1)), side).astype(np.float32)


def _events(rng: np.random.Generator, n: int, fps: float, every: float, lo: float, hi: float):
    """Random intervals [start, end) in frames: a Poisson process (mean gap `every` s) of events
    lasting lo..hi s, not overlapping each other, all inside the video."""
    out, t = [], rng.exponential(every / 2)
    while True:
        length = rng.uniform(lo, hi)
        start = int(t * fps)
        end = max(int((t + length) * fps), start + 1)
        if end >= n:
            return out
        out.append((start, end))
        t += length + rng.exponential(every)


class _VideoRendererV2(_VideoRenderer):
    MARGIN = 0.18

    def __init__(self, spec: TaskSpec, plan: VideoPlan, rng: np.random.Generator, size: int,
                 difficulty: float, nuisance_rng: np.random.Generator):
        self.repeats: set[int] = set()  # start frames of steps performed again
        self.nrng = nuisance_rng
        super().__init__(spec, plan, rng, size, difficulty)
        self.strength = min(1.0, 0.5 + difficulty)
        self.background = self._textured_background()
        n, fps = plan.num_frames, plan.fps
        self.events = {"camera_moves": [], "light_changes": [], "distractors": [],
                       "occlusions": []}
        self._camera_path(n, fps)
        self._lighting(n, fps)
        self._distractors(n, fps)
        self._occlusions(n, fps)

    # -- repeated steps

    def _step_runs(self) -> list[_StepRun]:
        runs, seen = super()._step_runs(), set()
        for (step, start, _), run in zip(self.plan.segments, runs):
            if step in seen:
                self.repeats.add(start)
            seen.add(step)
        return runs

    def _step_waypoints(self, run: _StepRun, rng: np.random.Generator):
        if run.start not in self.repeats or run.action.kind not in CARRY:
            return super()._step_waypoints(run, rng)
        # Redo a carry: nudge the object off its place and put it back (small: things put on it
        # later stay where they are).
        p = np.asarray(run.before[run.action.obj].pos)
        angle = rng.uniform(0, 2 * np.pi)
        lift = p + rng.uniform(0.03, 0.06) * np.array([math.cos(angle), math.sin(angle)])
        settle = p + rng.normal(0, 0.02, 2)
        return [(float(run.start), tuple(p)), ((run.start + run.done_at) / 2, tuple(lift)),
                (run.done_at, tuple(p)), (float(run.end), tuple(settle))]

    def _active_state(self, run: _StepRun, st0: _ObjState, t: int, held) -> _ObjState:
        if run.start not in self.repeats or run.action.kind in CARRY:
            return super()._active_state(run, st0, t, held)
        pulse = math.sin(math.pi * run.progress(t))  # 0 -> 1 -> 0: the state comes back
        kind = run.action.kind
        if kind == "grow":
            return replace(st0, scale=st0.scale * (1 + 0.15 * pulse))
        if kind == "recolor":
            return replace(st0, color=tuple(c + (255 - c) * 0.35 * pulse for c in st0.color))
        if kind == "reshape":
            target = 0.0 if st0.roundness > 0.5 else 1.0
            return replace(st0, roundness=st0.roundness + (target - st0.roundness) * 0.5 * pulse)
        return _advance(st0, run.action, 1.0)

    # -- background texture and clutter

    def _textured_background(self) -> np.ndarray:
        rng, canvas, scene, k = self.nrng, self.canvas, self.spec.scene, self.strength
        side = canvas.side
        y, x = canvas.coords[:, None], canvas.coords[None, :]
        x0, y0, x1, y1 = scene.table_box
        on_table = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        coarse = _value_noise(rng, side, 4)
        fine = _value_noise(rng, side, max(4, side // 6))
        cloth = rng.integers(3)
        freq = rng.uniform(5, 10)
        if cloth == 0:  # checked cloth
            pattern = np.sign(np.sin(2 * np.pi * freq * x) * np.sin(2 * np.pi * freq * y))
        elif cloth == 1:  # stripes at an angle
            a = rng.uniform(0, np.pi)
            pattern = np.sin(2 * np.pi * freq * (math.cos(a) * x + math.sin(a) * y))
        else:
            pattern = np.zeros_like(x * y)
        tiles = rng.uniform(3, 6)
        grout = np.minimum(np.abs(np.sin(np.pi * tiles * x)), np.abs(np.sin(np.pi * tiles * y)))
        table_tex = 1 + k * (0.1 * coarse + 0.07 * fine + 0.07 * pattern)
        floor_tex = 1 + k * (0.1 * coarse + 0.07 * fine) - k * 0.25 * (grout < 0.08)
        table = np.asarray(scene.table, np.float32) * table_tex[..., None]
        if scene.grain:
            stripes = np.sin(2 * np.pi * (scene.grain * y + 0.25 * np.sin(2 * np.pi * 1.3 * x)))
            table = table * (1 + 0.05 * stripes)[..., None]
        floor = np.asarray(scene.floor, np.float32) * floor_tex[..., None]
        img = np.where(on_table[..., None], table, floor).astype(np.float32)
        for obj, pos in scene.decor:
            canvas.draw(img, obj, pos)
        self.clutter = self._clutter()
        for obj, pos in self.clutter:
            canvas.draw(img, obj, pos)
        return img

    def _clutter(self) -> list[tuple[Obj, tuple[float, float]]]:
        """3-6 static shapes away from every spot a step puts or changes an object."""
        rng = self.nrng
        keep = []  # (x, y, radius) to stay clear of
        for action in self.actions:
            if action.kind in ("place", "move", "grow"):
                keep.append((*action.value, _extent(self.objects[action.obj], 1.0) + 0.03))
        out = []
        for i in range(int(rng.integers(3, 7))):
            shape = ("disc", "box", "ring", "tri")[rng.integers(4)]
            r = rng.uniform(0.025, 0.065)
            size = (r, 0.35 * r) if shape == "ring" else (r, r * rng.uniform(0.4, 1.0))
            color = tuple(float(c) for c in rng.uniform(35, 225, 3))
            obj = Obj(f"clutter{i}", shape, size, color, roundness=float(rng.uniform(0, 0.6)),
                      angle=float(rng.uniform(0, np.pi)) if shape == "box" else 0.0)
            for _ in range(60):
                p = rng.uniform(-0.08, 1.08, 2)
                if all(math.hypot(p[0] - a, p[1] - b) > rad + _extent(obj, 1.0)
                       for a, b, rad in keep):
                    keep.append((p[0], p[1], _extent(obj, 1.0) + 0.02))
                    out.append((obj, (float(p[0]), float(p[1]))))
                    break
        return out

    # -- camera moves

    def _camera_path(self, n: int, fps: float) -> None:
        """Per-frame view centre (scene units) and zoom: holds joined by smooth moves."""
        rng, size = self.nrng, self.size
        margin = self.canvas.margin / size
        jitter = (np.abs(self.offsets - self.canvas.margin).max() + 1.5) / size

        def pose():
            zoom = 1 + (MAX_ZOOM - 1) * self.strength * rng.random()
            half = 0.5 / zoom
            reach = max(0.0, min(margin - jitter + 0.5 - half, half - PAN_VIEW))
            return np.array([*(self.strength * reach * rng.uniform(-1, 1, 2)), zoom])

        path = np.tile(pose(), (n, 1))
        for start, end in _events(rng, n, fps, CAMERA_EVERY, 2.0, 6.0):
            a = path[start - 1] if start else path[0]
            for _ in range(10):  # a move worth the name: pan and zoom change by 0.06 or more
                target = pose()
                if np.abs(target - a).sum() >= 0.06 * self.strength:
                    break
            u = np.array([_smoothstep(v) for v in np.linspace(0, 1, end - start + 1)[1:]])
            path[start:end] = a + (target - a) * u[:, None]
            path[end:] = target
            self.events["camera_moves"].append((start, end))
        self.view = path.astype(np.float32)  # (pan x, pan y, zoom) per frame

    def _lighting(self, n: int, fps: float) -> None:
        """Slow brightness and colour-temperature drifts, and a few abrupt changes."""
        rng, k = self.nrng, self.strength
        level = 1 + 0.12 * k * _wobble(rng, n, fps, lo=0.01, hi=0.06)
        temp = 0.06 * k * _wobble(rng, n, fps, lo=0.01, hi=0.06)
        total = 1.0
        for start, _ in _events(rng, n, fps, LIGHT_EVERY, 0.0, 0.0):
            up = total < 1.0 if abs(total - 1) > 0.15 else rng.random() < 0.5
            factor = rng.uniform(1.15, 1.35) if up else rng.uniform(0.72, 0.85)
            factor = 1 + (factor - 1) * k
            total *= factor
            level[start:] *= factor
            temp[start:] += rng.uniform(-0.06, 0.06) * k
            self.events["light_changes"].append((start, start + 1))
        colour = np.stack([1 + temp, 1 + 0.3 * temp, 1 - temp], axis=1)
        self.gain = (self.gain * level[:, None] * colour).astype(np.float32)

    # -- distractors and occlusion

    def _distractors(self, n: int, fps: float) -> None:
        rng = self.nrng
        self.distractor = {}
        for start, end in _events(rng, n, fps, DISTRACTOR_EVERY, 1.5, 4.0):
            u = (np.arange(start, end) - start + 0.5) / (end - start)
            edge = rng.integers(3)  # enters from the top, left or right
            along = rng.uniform(0.2, 0.8)
            entry = [(along, -0.2), (-0.2, along), (1.2, along)][edge]
            if rng.random() < 0.6:
                reach = rng.uniform(0.25, 0.75, 2)
                anchor = [(along, -0.6), (-0.6, along), (1.6, along)][edge]
                path = np.asarray(entry) + (reach - np.asarray(entry)) * np.sin(np.pi * u)[:, None]
                skin = SKIN[(SKIN.index(self.skin) + 1 + rng.integers(len(SKIN) - 1)) % len(SKIN)]
                sleeve = SLEEVES[(SLEEVES.index(self.sleeve) + 1 + rng.integers(len(SLEEVES) - 1))
                                 % len(SLEEVES)]
                kind, look = "hand", (anchor, skin, sleeve)
            else:
                exit_ = [(rng.uniform(0.2, 0.8), 1.2), (1.2, rng.uniform(0.2, 0.8)),
                         (-0.2, rng.uniform(0.2, 0.8))][edge]
                s = np.array([_smoothstep(0.15 + 0.7 * v) for v in u])
                s = (s - s[0]) / max(s[-1] - s[0], 1e-6)
                path = np.asarray(entry) + (np.asarray(exit_) - np.asarray(entry)) * s[:, None]
                shape = ("disc", "box", "tri")[rng.integers(3)]
                r = rng.uniform(0.05, 0.09)
                obj = Obj("distractor", shape, (r, r * rng.uniform(0.5, 1.0)),
                          tuple(float(c) for c in rng.uniform(30, 240, 3)), roundness=0.3,
                          angle=float(rng.uniform(0, np.pi)))
                kind, look = "object", (obj,)
            for t, p in zip(range(start, end), path):
                self.distractor[t] = (kind, (float(p[0]), float(p[1])), look)
            self.events["distractors"].append((start, end, kind))

    def _draw_hand(self, img: np.ndarray, t: int, tool_opacity: float):
        super()._draw_hand(img, t, tool_opacity)
        if t in self.distractor:
            kind, pos, look = self.distractor[t]
            if kind == "hand":
                anchor, skin, sleeve = look
                self.canvas.capsule(img, anchor, pos, ARM_RADIUS, sleeve)
                self.canvas.capsule(img, pos, pos, HAND_RADIUS, skin)
            else:
                self.canvas.draw(img, look[0], pos)

    def _occlusions(self, n: int, fps: float) -> None:
        rng = self.nrng
        self.occluder = {}
        screen = (np.arange(self.size, dtype=np.float32) + 0.5) / self.size
        for start, end in _events(rng, n, fps, OCCLUSION_EVERY, 0.6, 2.5):
            radius = rng.uniform(0.25, 0.45)
            edge = rng.integers(4)
            along = rng.uniform(0.1, 0.9)
            depth = radius * rng.uniform(0.6, 1.4) * self.strength
            out = [(along, -radius), (along, 1 + radius), (-radius, along), (1 + radius, along)][edge]
            inward = [(0, 1), (0, -1), (1, 0), (-1, 0)][edge]
            color = np.asarray(rng.uniform(15, 70, 3) if rng.random() < 0.7
                               else SKIN[rng.integers(len(SKIN))], np.float32)
            u = (np.arange(start, end) - start + 0.5) / (end - start)
            for t, d in zip(range(start, end), np.sin(np.pi * u) * depth):
                c = (out[0] + inward[0] * d, out[1] + inward[1] * d)
                self.occluder[t] = (c, radius, color)
            self.events["occlusions"].append((start, end))
        self.screen = screen

    def _occlude(self, out: np.ndarray, t: int) -> None:
        (cx, cy), radius, color = self.occluder[t]
        dist = np.sqrt((self.screen[None, :] - cx) ** 2 + (self.screen[:, None] - cy) ** 2) - radius
        cover = np.clip(0.5 - dist / 0.06, 0.0, 1.0)[..., None]
        out += (color - out) * cover

    # -- camera

    def _camera(self, img: np.ndarray, t: int) -> np.ndarray:
        """Pan/zoom crop (with v1's jitter), occluder, lighting and sensor noise."""
        s, m = self.size, self.canvas.margin
        pan_x, pan_y, zoom = (float(v) for v in self.view[t])
        jx, jy = self.offsets[t] - m
        pix = (np.arange(s, dtype=np.float32) + 0.5 - s / 2) / zoom
        xs = (0.5 + pan_x) * s + m + jx + pix - 0.5
        ys = (0.5 + pan_y) * s + m + jy + pix - 0.5
        side = self.canvas.side
        x0 = np.clip(np.floor(xs).astype(np.int64), 0, side - 2)
        y0 = np.clip(np.floor(ys).astype(np.int64), 0, side - 2)
        fx = np.clip(xs - x0, 0, 1).astype(np.float32)[None, :, None]
        fy = np.clip(ys - y0, 0, 1).astype(np.float32)[:, None, None]
        c0, c1 = int(x0[0]), int(x0[-1]) + 2
        top, bottom = img[y0, c0:c1], img[y0 + 1, c0:c1]
        rows = top + (bottom - top) * fy
        left, right = rows[:, x0 - c0], rows[:, x0 + 1 - c0]
        out = left + (right - left) * fx
        if t in self.occluder:
            self._occlude(out, t)
        light = 1 + self.slope[t, 0] * self.cx + self.slope[t, 1] * self.cy
        out *= light[..., None] * self.gain[t]
        if self.noise:
            out += self.rng.standard_normal(out.shape, dtype=np.float32) * np.float32(self.noise)
        np.clip(out, 0, 255, out=out)
        out += 0.5
        return out.astype(np.uint8)


def video_renderer_v2(spec: TaskSpec, plan: VideoPlan, seed: int, size: int = 96,
                      difficulty: float = 0.5) -> _VideoRendererV2:
    """The renderer of v2 video `plan` (its `events` list the nuisances' frame ranges)."""
    rng = np.random.default_rng([seed, plan.index, 1])
    nuisance = np.random.default_rng([seed, plan.index, 3])
    return _VideoRendererV2(spec, plan, rng, size, difficulty, nuisance)


def iter_video_frames_v2(spec: TaskSpec, plan: VideoPlan, seed: int, size: int = 96,
                         difficulty: float = 0.5) -> Iterator[np.ndarray]:
    """Frames (uint8 [size, size, 3]) of a planned v2 video, one at a time."""
    return video_renderer_v2(spec, plan, seed, size, difficulty).frames()
