"""Synthetic procedural-video world: instructional-style videos rendered from ground-truth graphs.

Each task is a DAG of steps (preconditions, optional steps, interchangeable pairs) acting on a
top-down table scene. A video follows a random valid order of its task; every step changes the
scene gradually and lastingly (objects are carried in, grow, move, change colour or shape) while a
hand moves continuously through steps and idle gaps, so raw frame differences do not give the
boundaries away.
Camera jitter, lighting drift and sensor noise scale with `difficulty`.

On-disk layout written by generate_world() (readers rely on it):

    OUT/world.json, tasks.json, tasks_primary.txt (CrossTask format), videos.csv,
        graphs/<task>.json (networkx node-link, edges="edges"), videos/<video>.mp4,
        annotations/<task>_<video>.csv (CrossTask rows "step,start,end"), labels/<video>.npy (int16)

Frame i (time i/fps) has label k iff start <= i/fps < end for the annotation row of step k: all
step boundaries lie on frames whose times are exact multiples of 0.01 s.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from procvid.errors import ProcvidError

log = logging.getLogger(__name__)

RGB = tuple[float, float, float]
Point = tuple[float, float]

SKIP_PROB = 0.3  # chance that a video skips each optional step
MIN_STEP_FRAMES = 3  # a step must last long enough to show motion and a gradual change
CARRY = ("place", "move")  # the hand carries the object along its path
TOOL = ("grow", "recolor", "reshape")  # the hand circles over the object with a tool
CRF = 20  # x264 quality (without mb-tree): small renders stay crisp


# ----------------------------------------------------------------------------- task definitions


@dataclass(frozen=True)
class Obj:
    """A drawable object; its position and presence come from the steps acting on it."""

    name: str
    shape: str  # disc | ring | box | tri
    size: tuple[float, float]  # disc/tri: (radius, 0); ring: (radius, half width); box: half sizes
    color: RGB
    roundness: float = 0.0  # box corner radius as a fraction of the shorter half side (1 = round)
    angle: float = 0.0  # box rotation in radians


@dataclass(frozen=True)
class Action:
    """The visible effect of a step on one object."""

    kind: str  # place | move (value: target point), grow (value: point), recolor (RGB), reshape
    obj: str
    value: tuple  # reshape: (roundness,)


@dataclass(frozen=True)
class Scene:
    """Static look of a task: it keeps tasks visually distinct from each other."""

    floor: RGB
    table: RGB
    table_box: tuple[float, float, float, float]  # x0, y0, x1, y1 in [0, 1] image coordinates
    grain: float  # wood-grain stripes per image height (0 = plain)
    decor: tuple[tuple[Obj, Point], ...]  # fixed shapes drawn on the table


@dataclass(frozen=True)
class TaskSpec:
    id: str
    name: str
    steps: tuple[tuple[int, str], ...]  # (1-based step id, text)
    edges: tuple[tuple[int, int], ...]  # (u, v): u is a precondition of v
    optional: frozenset[int]
    interchangeable: tuple[tuple[int, int], ...]
    scene: Scene = field(repr=False)
    objects: tuple[Obj, ...] = field(repr=False)  # drawing order, bottom first
    actions: tuple[Action, ...] = field(repr=False)  # actions[k - 1] is the effect of step k

    def action(self, step: int) -> Action:
        return self.actions[step - 1]

    @property
    def step_ids(self) -> list[int]:
        return [sid for sid, _ in self.steps]


def _task(tid, name, scene, objects, steps, edges, optional, interchangeable) -> TaskSpec:
    """Build a TaskSpec from (text, action) pairs numbered 1..K in order."""
    return TaskSpec(
        id=tid,
        name=name,
        steps=tuple((i + 1, text) for i, (text, _) in enumerate(steps)),
        edges=tuple(edges),
        optional=frozenset(optional),
        interchangeable=tuple(interchangeable),
        scene=scene,
        objects=tuple(objects),
        actions=tuple(action for _, action in steps),
    )


WHITE = (240, 240, 235)
RED = (205, 40, 40)
GREEN = (60, 165, 60)
BLUE = (45, 75, 205)
YELLOW = (240, 205, 45)
ORANGE = (240, 130, 30)
PURPLE = (140, 60, 175)
PINK = (240, 140, 165)
GREY = (165, 165, 175)
BLACK = (25, 25, 25)


def _salad() -> TaskSpec:
    scene = Scene(
        floor=(55, 85, 60), table=(150, 190, 140), table_box=(0.05, 0.08, 0.95, 0.92), grain=0,
        decor=((Obj("bowl", "disc", (0.31, 0), (200, 215, 240)), (0.5, 0.5)),
               (Obj("rim", "ring", (0.31, 0.012), (250, 250, 250)), (0.5, 0.5))),
    )
    objects = [
        Obj("yogurt", "disc", (0.11, 0), (252, 252, 248)),
        Obj("apple", "box", (0.07, 0.07), RED, roundness=1.0),
        Obj("banana", "box", (0.09, 0.04), YELLOW, roundness=1.0),
        Obj("orange", "disc", (0.07, 0), ORANGE),
        Obj("berries", "disc", (0.04, 0), BLUE),
        Obj("mint", "tri", (0.05, 0), (30, 120, 40)),
    ]
    steps = [
        ("put the red apple in the left of the white bowl", Action("place", "apple", (0.36, 0.42))),
        ("put the yellow banana in the right of the bowl", Action("place", "banana", (0.63, 0.42))),
        ("put the orange ball in the bottom of the bowl", Action("place", "orange", (0.5, 0.66))),
        ("cut the red apple into a square cube", Action("reshape", "apple", (0.15,))),
        ("pour white yogurt into the middle of the bowl", Action("grow", "yogurt", (0.5, 0.5))),
        ("sprinkle blue berries on the yogurt", Action("grow", "berries", (0.5, 0.5))),
        ("add a green mint leaf at the top of the bowl", Action("place", "mint", (0.5, 0.29))),
    ]
    edges = [(1, 4), (4, 5), (2, 5), (3, 5), (5, 6), (5, 7)]
    return _task("salad", "Make a fruit salad", scene, objects, steps, edges, {6}, [(2, 3), (6, 7)])


def _tea() -> TaskSpec:
    scene = Scene(
        floor=(85, 55, 40), table=(165, 120, 80), table_box=(0.0, 0.12, 1.0, 0.95), grain=9,
        decor=((Obj("saucer", "disc", (0.2, 0), (212, 212, 220)), (0.45, 0.5)),),
    )
    objects = [
        Obj("cup", "disc", (0.13, 0), WHITE),
        Obj("water", "disc", (0.105, 0), (185, 110, 45)),
        Obj("teabag", "box", (0.035, 0.035), ORANGE, roundness=0.2),
        Obj("sugar", "box", (0.032, 0.032), (255, 255, 255)),
        Obj("spoon", "box", (0.1, 0.016), (175, 175, 190), roundness=1.0, angle=-0.6),
        Obj("lemon", "disc", (0.06, 0), YELLOW),
    ]
    steps = [
        ("place the white cup on the grey saucer", Action("place", "cup", (0.45, 0.5))),
        ("put the orange tea bag in the cup", Action("place", "teabag", (0.49, 0.46))),
        ("pour hot water into the cup", Action("grow", "water", (0.45, 0.5))),
        ("take the tea bag out and put it on the top right", Action("move", "teabag", (0.82, 0.27))),
        ("drop a white sugar cube into the tea", Action("place", "sugar", (0.41, 0.54))),
        ("pour milk to make the tea light brown", Action("recolor", "water", (220, 180, 130))),
        ("put the silver spoon on the saucer beside the cup", Action("place", "spoon", (0.6, 0.65))),
        ("put a yellow lemon slice on the top left", Action("place", "lemon", (0.14, 0.26))),
    ]
    edges = [(1, 2), (1, 3), (2, 4), (3, 4), (4, 5), (4, 6), (5, 7), (6, 7), (1, 8)]
    return _task("tea", "Make a cup of tea", scene, objects, steps, edges, {5, 8}, [(2, 3), (5, 6)])


def _shelf() -> TaskSpec:
    board = Obj("board", "box", (0.46, 0.02), (115, 75, 45))
    scene = Scene(
        floor=(60, 60, 70), table=(120, 140, 178), table_box=(0.02, 0.0, 0.98, 1.0), grain=0,
        decor=((board, (0.5, 0.45)), (board, (0.5, 0.85))),
    )
    book = (0.035, 0.12)
    objects = [
        Obj("red book", "box", book, RED),
        Obj("blue book", "box", book, BLUE),
        Obj("green book", "box", book, GREEN),
        Obj("yellow box", "box", (0.08, 0.06), YELLOW),
        Obj("clock", "ring", (0.065, 0.015), WHITE),
        Obj("vase", "box", (0.04, 0.07), PURPLE, roundness=0.6),
        Obj("ball", "disc", (0.04, 0), ORANGE),
    ]
    steps = [
        ("put the red book on the left of the bottom shelf", Action("place", "red book", (0.2, 0.71))),
        ("put the blue book next to the red book", Action("place", "blue book", (0.29, 0.71))),
        ("put the green book on the left of the top shelf", Action("place", "green book", (0.2, 0.31))),
        ("put the yellow box on the right of the bottom shelf",
         Action("place", "yellow box", (0.75, 0.77))),
        ("move the red book up onto the top shelf beside the green book",
         Action("move", "red book", (0.29, 0.31))),
        ("hang the white round clock on the wall above the shelves",
         Action("place", "clock", (0.5, 0.12))),
        ("put the purple vase on the right of the top shelf", Action("place", "vase", (0.75, 0.36))),
        ("put the orange ball on top of the yellow box", Action("place", "ball", (0.75, 0.67))),
    ]
    edges = [(1, 2), (2, 5), (3, 5), (5, 6), (5, 7), (4, 8)]
    return _task("shelf", "Arrange a bookshelf", scene, objects, steps, edges, {7}, [(6, 7)])


def _plant() -> TaskSpec:
    scene = Scene(
        floor=(110, 100, 95), table=(205, 180, 135), table_box=(0.1, 0.05, 0.9, 0.95), grain=0,
        decor=((Obj("newspaper", "box", (0.3, 0.28), (226, 226, 216)), (0.5, 0.55)),),
    )
    centre = (0.5, 0.55)
    objects = [
        Obj("ribbon", "ring", (0.19, 0.018), PINK),
        Obj("pot", "box", (0.13, 0.13), (195, 95, 55), roundness=0.5),
        Obj("pebbles", "disc", (0.09, 0), (150, 150, 160)),
        Obj("soil", "disc", (0.105, 0), (125, 85, 50)),
        Obj("seedling", "tri", (0.05, 0), (70, 190, 60)),
        Obj("label", "box", (0.016, 0.045), (255, 255, 255)),
    ]
    steps = [
        ("put the orange pot in the middle of the table", Action("place", "pot", centre)),
        ("put grey pebbles into the bottom of the pot", Action("grow", "pebbles", centre)),
        ("fill the pot with brown soil", Action("grow", "soil", centre)),
        ("plant the green seedling in the center of the pot", Action("place", "seedling", centre)),
        ("water the soil until it turns dark", Action("recolor", "soil", (55, 35, 22))),
        ("stick a white label into the right of the pot", Action("place", "label", (0.59, 0.5))),
        ("tie a pink ribbon around the pot", Action("grow", "ribbon", centre)),
    ]
    edges = [(1, 2), (2, 3), (3, 4), (4, 5), (4, 6), (5, 7), (6, 7)]
    return _task("plant", "Repot a plant", scene, objects, steps, edges, {2}, [(5, 6)])


def _sandwich() -> TaskSpec:
    scene = Scene(
        floor=(170, 175, 185), table=(80, 120, 160), table_box=(0.0, 0.1, 1.0, 0.9), grain=0,
        decor=((Obj("board", "box", (0.3, 0.27), (150, 105, 65), roundness=0.15), (0.5, 0.52)),),
    )
    slice_ = (0.19, 0.17)
    centre = (0.5, 0.52)
    objects = [
        Obj("bread", "box", slice_, (225, 185, 120), roundness=0.35),
        Obj("lettuce", "box", (0.17, 0.15), (90, 185, 70), roundness=0.8),
        Obj("ham", "disc", (0.11, 0), (235, 135, 150)),
        Obj("cheese", "tri", (0.11, 0), (250, 215, 60)),
        Obj("tomato", "disc", (0.05, 0), RED),
        Obj("top bread", "box", slice_, (200, 150, 90), roundness=0.35),
        Obj("cut", "box", (0.25, 0.009), (90, 60, 35), angle=math.pi / 4),
    ]
    steps = [
        ("put a slice of bread on the wooden board", Action("place", "bread", centre)),
        ("spread yellow butter on the bread", Action("recolor", "bread", (248, 228, 135))),
        ("lay a green lettuce leaf on the bread", Action("place", "lettuce", centre)),
        ("add a pink round slice of ham", Action("place", "ham", (0.45, 0.49))),
        ("add a yellow triangle of cheese", Action("place", "cheese", (0.56, 0.57))),
        ("add a red tomato slice at the top", Action("place", "tomato", (0.52, 0.4))),
        ("cover it with a second slice of bread", Action("place", "top bread", centre)),
        ("cut the sandwich diagonally in half", Action("grow", "cut", centre)),
    ]
    edges = [(1, 2), (2, 3), (3, 4), (3, 5), (3, 6), (4, 7), (5, 7), (6, 7), (7, 8)]
    return _task("sandwich", "Make a ham sandwich", scene, objects, steps, edges, {2, 6}, [(4, 5)])


def _pizza() -> TaskSpec:
    scene = Scene(
        floor=(45, 45, 55), table=(105, 105, 118), table_box=(0.06, 0.03, 0.94, 0.97), grain=0,
        decor=((Obj("tray", "disc", (0.37, 0), (72, 72, 80)), (0.5, 0.5)),
               (Obj("tray rim", "ring", (0.37, 0.012), (150, 150, 162)), (0.5, 0.5))),
    )
    centre = (0.5, 0.5)
    objects = [
        Obj("dough", "disc", (0.3, 0), (235, 215, 170)),
        Obj("sauce", "disc", (0.25, 0), (200, 50, 35)),
        Obj("cheese", "disc", (0.21, 0), (250, 235, 150)),
        Obj("pepper", "box", (0.045, 0.045), (40, 170, 50), roundness=0.2),
        Obj("olive", "ring", (0.04, 0.015), BLACK),
        Obj("salami", "disc", (0.05, 0), (190, 80, 95)),
        Obj("basil", "tri", (0.045, 0), (30, 110, 35)),
        Obj("cut", "box", (0.3, 0.009), (60, 45, 35)),
    ]
    steps = [
        ("put the round dough on the grey tray", Action("place", "dough", centre)),
        ("spread red tomato sauce on the dough", Action("grow", "sauce", centre)),
        ("sprinkle yellow cheese over the sauce", Action("grow", "cheese", centre)),
        ("add a green pepper piece on the left", Action("place", "pepper", (0.37, 0.5))),
        ("add a black olive ring on the right", Action("place", "olive", (0.63, 0.5))),
        ("add a pink salami slice at the top", Action("place", "salami", (0.5, 0.36))),
        ("bake the pizza until the crust turns brown", Action("recolor", "dough", (170, 110, 55))),
        ("cut the pizza in half across the middle", Action("grow", "cut", centre)),
        ("put a green basil leaf at the bottom", Action("place", "basil", (0.5, 0.64))),
    ]
    edges = [(1, 2), (2, 3), (3, 4), (3, 5), (3, 6), (4, 7), (5, 7), (6, 7), (7, 8), (7, 9)]
    return _task("pizza", "Make a pizza", scene, objects, steps, edges, {6, 9}, [(4, 5), (8, 9)])


_TASKS = tuple(f() for f in (_salad, _tea, _shelf, _plant, _sandwich, _pizza))


def task_specs() -> list[TaskSpec]:
    """All synthetic tasks, in a fixed order (videos are spread round-robin over it)."""
    return list(_TASKS)


def task_spec(task_id: str) -> TaskSpec:
    for spec in _TASKS:
        if spec.id == task_id:
            return spec
    known = ", ".join(t.id for t in _TASKS)
    raise ProcvidError(f"unknown synthetic task {task_id!r} (known: {known})")


def task_graph(spec: TaskSpec):
    """Ground-truth DAG: step nodes (attribute "text") plus START/END, transitively reduced."""
    import networkx as nx

    steps = nx.DiGraph()
    steps.add_nodes_from(spec.step_ids)
    steps.add_edges_from(spec.edges)
    if not nx.is_directed_acyclic_graph(steps):
        raise ValueError(f"task {spec.id}: step preconditions contain a cycle")
    reduced = nx.transitive_reduction(steps)

    graph = nx.DiGraph(
        task_id=spec.id,
        name=spec.name,
        optional=sorted(spec.optional),
        interchangeable=[list(pair) for pair in spec.interchangeable],
    )
    graph.add_node("START")
    for sid, text in spec.steps:
        graph.add_node(sid, text=text)
    graph.add_node("END")
    graph.add_edges_from(sorted(reduced.edges))
    graph.add_edges_from(("START", s) for s in spec.step_ids if reduced.in_degree(s) == 0)
    graph.add_edges_from((s, "END") for s in spec.step_ids if reduced.out_degree(s) == 0)
    return graph


# ----------------------------------------------------------------------------- orders and timing


def sample_order(spec: TaskSpec, rng: np.random.Generator) -> list[int]:
    """A random linear extension of the task DAG, each optional step skipped with SKIP_PROB."""
    preds = {sid: set() for sid in spec.step_ids}
    for u, v in spec.edges:
        preds[v].add(u)
    order: list[int] = []
    while len(order) < len(preds):
        ready = [s for s in spec.step_ids if s not in order and preds[s].issubset(order)]
        order.append(ready[rng.integers(len(ready))])
    return [s for s in order if s not in spec.optional or rng.random() >= SKIP_PROB]


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


# ----------------------------------------------------------------------------- rendering


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

    def __init__(self, spec: TaskSpec, plan: VideoPlan, rng: np.random.Generator, size: int,
                 difficulty: float):
        self.spec, self.plan, self.size = spec, plan, size
        self.objects = {o.name: o for o in spec.objects}
        self.z = {o.name: i for i, o in enumerate(spec.objects)}
        margin = math.ceil(0.03 * size) + 2
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
                st = _advance(st0, run.action, run.progress(t), held)
                tool = 0.0 if carry else min(1.0, (t - start + 1) / ramp, (end - t) / ramp)
                yield self._frame(layers, t, (obj, st), tool)
            done += 1

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


# ----------------------------------------------------------------------------- encoding


def video_codec() -> str:
    """libx264 when the bundled ffmpeg has it, else mpeg4."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def encode_video(frames: Iterator[np.ndarray], path: Path, fps: float, size: int) -> None:
    """Write RGB frames to an mp4 atomically (temp file + os.replace), deterministically."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    codec = video_codec()
    options = {}
    if codec == "libx264":
        # x264's mb-tree rate control makes the first encode in a process differ from later ones, so
        # it is off (crf 20 without it ~ crf 18 with it in quality and size).
        options = {"crf": str(CRF), "preset": "veryfast", "x264-params": "no-mbtree=1"}
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # threaded x264 is not deterministic; the pool is
        if codec != "libx264":
            stream.bit_rate = 40 * size * size  # ~ 4 bits per pixel-frame: crisp at small sizes
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- world on disk


def _check_args(num_videos, seed, difficulty, size, fps, min_duration, max_duration, workers):
    if num_videos < 1:
        raise ProcvidError(f"number of videos must be at least 1, got {num_videos}")
    if seed < 0:
        raise ProcvidError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= difficulty <= 1.0:
        raise ProcvidError(f"difficulty must be in [0, 1], got {difficulty}")
    if not 32 <= size <= 512 or size % 2:
        raise ProcvidError(f"size must be an even number of pixels in [32, 512], got {size}")
    if not 1.0 <= fps <= 100.0:
        raise ProcvidError(f"fps must be in [1, 100], got {fps}")
    shortest = min_video_duration(fps)  # also rejects fps without a 0.01 s frame grid
    if min_duration < shortest:
        raise ProcvidError(f"min duration must be at least {shortest:.1f} s at {fps:g} fps, "
                           f"got {min_duration}")
    if min_duration > max_duration:
        raise ProcvidError(f"min duration ({min_duration}) is larger than max duration "
                           f"({max_duration})")
    if max_duration > 3600:
        raise ProcvidError(f"max duration must be at most 3600 s, got {max_duration}")
    if workers < 1:
        raise ProcvidError(f"workers must be at least 1, got {workers}")


def _write_atomic(path: Path, data: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _claim_dir(out: Path, world: dict) -> None:
    """Refuse to write into a directory holding anything but this very world (resume is fine)."""
    meta = out / "world.json"
    if meta.exists():
        if json.loads(meta.read_text()) != world:
            raise ProcvidError(f"{out} holds a different synthetic world (world.json differs); "
                               "use another --out or delete it")
        log.info("resuming the synthetic world in %s", out)
        return
    if out.exists() and not out.is_dir():
        raise ProcvidError(f"{out} is a file, not a directory")
    if out.exists() and any(out.iterdir()):
        raise ProcvidError(f"{out} is not empty and holds no synthetic world; use another --out")
    _write_atomic(meta, json.dumps(world, indent=2) + "\n")


def _write_tasks(out: Path, specs: list[TaskSpec]) -> None:
    import networkx as nx

    tasks = [{"id": t.id, "name": t.name, "steps": [{"id": i, "text": s} for i, s in t.steps]}
             for t in specs]
    _write_atomic(out / "tasks.json", json.dumps(tasks, indent=2) + "\n")
    # CrossTask blocks: id, name, url, number of steps, comma-separated steps, blank line.
    primary = "".join(f"{t.id}\n{t.name}\nsynthetic\n{len(t.steps)}\n"
                      f"{','.join(text for _, text in t.steps)}\n\n" for t in specs)
    _write_atomic(out / "tasks_primary.txt", primary)
    for spec in specs:
        data = nx.node_link_data(task_graph(spec), edges="edges")
        _write_atomic(out / "graphs" / f"{spec.id}.json", json.dumps(data, indent=1) + "\n")


def _write_truth(out: Path, plan: VideoPlan) -> None:
    """Annotation and per-frame labels of a video (kept when already there)."""
    annotation = out / "annotations" / f"{plan.task_id}_{plan.video_id}.csv"
    if not annotation.exists():
        _write_atomic(annotation, plan.annotation_csv())
    labels = out / "labels" / f"{plan.video_id}.npy"
    if not labels.exists():
        _write_atomic(labels, _npy_bytes(plan.labels()))


def _write_index(out: Path, plans: list[VideoPlan]) -> None:
    rows = ["video_id,task_id,path,num_frames,fps,duration,order"]
    rows += [f"{p.video_id},{p.task_id},{p.path},{p.num_frames},{p.fps!r},{p.duration:.2f},"
             f"{'-'.join(map(str, p.order))}" for p in plans]
    _write_atomic(out / "videos.csv", "\n".join(rows) + "\n")


def _render_job(job: tuple) -> str:
    """Worker: render and encode one video (module-level so the process pool can pickle it)."""
    out, plan, seed, size, difficulty = job
    rng = np.random.default_rng([seed, plan.index, 1])
    frames = iter_video_frames(task_spec(plan.task_id), plan, rng, size, difficulty)
    encode_video(frames, Path(out) / plan.path, plan.fps, size)
    return plan.video_id


def generate_world(
    out_dir: str | os.PathLike,
    num_videos: int = 100,
    seed: int = 0,
    difficulty: float = 0.5,
    size: int = 96,
    fps: float = 10.0,
    min_duration: float = 30.0,
    max_duration: float = 90.0,
    workers: int = 2,
    progress: bool = True,
) -> Path:
    """Write a synthetic world (layout in the module docstring); resumes an interrupted run."""
    from tqdm import tqdm

    _check_args(num_videos, seed, difficulty, size, fps, min_duration, max_duration, workers)
    out = Path(out_dir)
    # Durations are recorded too: resuming with other durations would mix two different worlds.
    world = {"version": 1, "seed": seed, "difficulty": float(difficulty), "size": size,
             "fps": float(fps), "num_videos": num_videos, "min_duration": float(min_duration),
             "max_duration": float(max_duration)}
    _claim_dir(out, world)
    specs = task_specs()
    _write_tasks(out, specs)
    plans = [plan_video(specs[i % len(specs)], i, seed, fps, min_duration, max_duration)
             for i in range(num_videos)]
    for plan in plans:
        _write_truth(out, plan)
    (out / "videos").mkdir(exist_ok=True)
    # Longest first so the pool's last jobs are short ones.
    todo = sorted((p for p in plans if not (out / p.path).exists()), key=lambda p: -p.num_frames)
    if len(todo) < len(plans):
        log.info("keeping %d existing videos", len(plans) - len(todo))
    jobs = [(str(out), plan, seed, size, difficulty) for plan in todo]
    with tqdm(total=len(plans), initial=len(plans) - len(todo), unit="video", disable=not progress,
              desc="synth") as bar:
        for _ in _run_jobs(jobs, workers):
            bar.update()
    _write_index(out, plans)
    return out


def _run_jobs(jobs: list[tuple], workers: int) -> Iterator[str]:
    if workers == 1 or len(jobs) <= 1:
        yield from map(_render_job, jobs)
        return
    import multiprocessing

    # spawn: safe even when the caller has started threads (torch, tqdm monitors).
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap_unordered(_render_job, jobs)
