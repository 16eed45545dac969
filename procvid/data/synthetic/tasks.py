"""Synthetic tasks: the six task definitions (scene, objects, steps, preconditions), their
ground-truth graphs and random valid step orders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from procvid.errors import ProcvidError

RGB = tuple[float, float, float]
Point = tuple[float, float]

SKIP_PROB = 0.3  # chance that a video skips each optional step


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


# ----------------------------------------------------------------------------- orders


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
