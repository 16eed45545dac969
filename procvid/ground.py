"""Step grounding: which of a known task's steps a video shows, and in which order.

Units. The alignment labels units of the video: its frames, or its segments (from `procvid segment` or
ground truth). Every frame has a cosine similarity to the text embedding of each step; a unit's
evidence for a step is the sum over its frames (so a long segment weighs more than a short one).

Scores. Per video, similarities are centred on a drop threshold and scaled:
z = (sim - percentile(sim, drop_percentile)) / std(sim), over all frame x step entries (Drop-DTW's
percentile drop cost; the scaling makes `step_cost` independent of the encoder's similarity range).
A unit labelled with step k gains sum of z over its frames times the frame period (seconds); a
dropped (background) unit gains 0; each performed step costs `step_cost`.

Alignment. Every step is performed at most once, as one run of units (dropped units may lie inside
the run); steps may be skipped; the order of the performed steps must satisfy a precedence relation:

* "linear": the task's step order (a monotone alignment that skips steps and drops units, i.e.
  Drop-DTW where each step matches a run of units);
* "graph": any order consistent with a graph script (an nx.DiGraph as procvid.graph.induce_graph
  returns): if a path a -> ... -> b exists, b is never performed before a, and a is never performed
  after b. Skipped steps do not block their successors (graph scripts mark many steps optional);
* "any": any order, each step at most once.

The exact maximum is found by dynamic programming over states (closed set, last step): the closed
set holds the steps performed or passed over; performing s closes s and every step that must
precede s. The closed sets are the down-sets of the precedence relation: K + 1 for a linear order,
2^K for "any", in between for graphs. Time O(units x (states + transitions)), memory O(units x
states); MAX_SETS (any order of up to 14 steps) and MAX_CELLS (units x states) bound both.

Repeats (optional, `repeat_margin`; off by default). The alignment performs each step once, so a step
done a second time is either dropped or absorbed into a neighbouring step. `mark_repeats` is a post-pass
over its labels: a unit whose best-matching step is performed elsewhere in the path, and whose mean
evidence for that step (z per second) beats its own label's (0 for a dropped unit) by at least
`repeat_margin`, is relabelled as a repeat of it. A relabelled unit never splits another step's run
(only dropped units between runs or units at a run's ends, peeled inwards), never removes a performed
step, and never extends the step's own run: it is a new run of the step, reported again in the path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from procvid.errors import ProcvidError

ORDERS = ("linear", "graph", "any")
# Defaults from the synthetic tuning world (tools/bench_ground.py --tune): every percentile from 0 to 75
# scores within 0.3 points there; the median stays below the matching entries (one in K) for any K >= 2
# steps, higher percentiles do not for short tasks. Performing each step at most once already keeps
# frame-level alignments from fragmenting, so steps cost nothing by default.
DROP_PERCENTILE = 50.0
STEP_COST = 0.0  # seconds of one-standard-deviation evidence a step must gather to be counted
MAX_SETS = 1 << 14
MAX_CELLS = 20_000_000  # back-pointer table entries, 5 bytes each


@dataclass
class Grounding:
    """A video's grounded steps.

    path: step ids in performed order (each once; with repeat marking a repeated step again where it
    is repeated). spans: per entry of path (step, start_frame, end_frame exclusive, mean similarity
    over its frames). labels: per frame its step id, or None for background (dropped frames, also
    inside a step's span).
    """

    path: list
    spans: list[tuple[Hashable, int, int, float]]
    labels: list
    score: float


# ---------------------------------------------------------------------------- order constraints


def precedence_matrix(step_ids: Sequence, order: str = "linear", graph=None) -> np.ndarray:
    """precedes[a, b]: step a may not be performed after step b (indices into step_ids).

    linear: the order of step_ids; graph: reachability in `graph` (START/END and unknown nodes
    ignored); any: nothing.
    """
    k = len(step_ids)
    if order == "linear":
        return np.triu(np.ones((k, k), dtype=bool), 1)
    if order == "any":
        return np.zeros((k, k), dtype=bool)
    if order != "graph":
        raise ProcvidError(f"unknown order {order!r}; choose from {', '.join(ORDERS)}")
    if graph is None:
        raise ProcvidError("order 'graph' needs a graph script")
    import networkx as nx

    index = {str(s): i for i, s in enumerate(step_ids)}  # graph files may hold ids as text
    precedes = np.zeros((k, k), dtype=bool)
    for node in graph.nodes:
        a = index.get(str(node))
        if a is None:
            continue
        for other in nx.descendants(graph, node):
            b = index.get(str(other))
            if b is not None and b != a:
                precedes[a, b] = True
    return precedes


def _closed_sets(precedes: np.ndarray):
    """Down-sets reachable from {} and the transitions (source set, step, target set) between them."""
    k = len(precedes)
    before = [sum(1 << a for a in np.flatnonzero(precedes[:, s])) for s in range(k)]
    index = {0: 0}
    masks = [0]
    transitions = []
    for mask in masks:  # grows while iterating: breadth-first over reachable sets
        for s in range(k):
            if mask >> s & 1:
                continue
            target = mask | before[s] | (1 << s)
            if target not in index:
                index[target] = len(masks)
                masks.append(target)
                if len(masks) > MAX_SETS:
                    raise ProcvidError(f"too many step orders to align exactly ({k} steps); "
                                       "use order 'linear' or a graph script")
            transitions.append((index[mask], s, index[target]))
    return len(masks), np.array(transitions, dtype=np.int64).reshape(-1, 3)


def _group_max(values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Max and argmax (index into values) of each run values[starts[g]:starts[g + 1]]."""
    best = np.maximum.reduceat(values, starts)
    group = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(values)]))
    hit = np.flatnonzero(values == best[group])
    first = hit[np.r_[True, group[hit][1:] != group[hit][:-1]]]
    return best, first


# ---------------------------------------------------------------------------- alignment


def align(gain: np.ndarray, precedes: np.ndarray, step_cost: float = 0.0) -> tuple[np.ndarray, float]:
    """The best labelling of units with steps (or -1: dropped) and its total score.

    gain[i, k]: score of unit i as step k (dropping a unit scores 0); precedes: see
    precedence_matrix; step_cost: charged once per performed step. See the module docstring.
    """
    gain = np.asarray(gain, dtype=np.float64)
    n, k = gain.shape
    if precedes.shape != (k, k):
        raise ProcvidError(f"precedence matrix {precedes.shape} does not match {k} steps")
    if n == 0 or k == 0:
        return np.full(n, -1), 0.0
    _, trans = _closed_sets(precedes)
    # states: (closed set, last step); state 0 = ({}, none). One state per distinct (target, step).
    pairs, state_of = np.unique(trans[:, [2, 1]], axis=0, return_inverse=True)
    state_mask = np.r_[0, pairs[:, 0]]
    state_last = np.r_[k, pairs[:, 1]]  # k = no step yet
    trans_dst = state_of.ravel() + 1
    # group states by set (for the best state of each set) and transitions by target state
    by_mask = np.argsort(state_mask, kind="stable")
    mask_starts = np.flatnonzero(np.r_[True, np.diff(state_mask[by_mask]) != 0])
    by_dst = np.argsort(trans_dst, kind="stable")
    trans_src, trans_step, trans_dst = trans[by_dst, 0], trans[by_dst, 1], trans_dst[by_dst]
    dst_starts = np.flatnonzero(np.r_[True, np.diff(trans_dst) != 0])
    targets = trans_dst[dst_starts]

    num_states = len(state_mask)
    if n * num_states > MAX_CELLS:
        raise ProcvidError(f"{n} units x {num_states} alignment states is too large; "
                           "ground segments instead of frames, or constrain the order")
    value = np.full(num_states, -np.inf)
    value[0] = 0.0
    kind = np.zeros((n, num_states), dtype=np.int8)  # 0 drop, 1 continue the last step, 2 start a step
    source = np.zeros((n, num_states), dtype=np.int32)
    padded = np.concatenate([gain, np.full((n, 1), -np.inf)], axis=1)  # "continue" from no step: never
    for i in range(n):
        cont = value + padded[i, state_last]
        stay = np.maximum(value, cont)
        best_in_set, arg = _group_max(value[by_mask], mask_starts)
        start = best_in_set[trans_src] - step_cost + gain[i, trans_step]
        best_start, first = _group_max(start, dst_starts)
        new = np.full(num_states, -np.inf)
        new[targets] = best_start
        kind[i] = np.where(new > stay, 2, (cont > value).astype(np.int8))
        source[i] = np.arange(num_states)
        source[i, targets] = np.where(kind[i, targets] == 2, by_mask[arg[trans_src[first]]], targets)
        value = np.maximum(stay, new)

    state = int(np.argmax(value))
    total = float(value[state])
    labels = np.full(n, -1)
    for i in range(n - 1, -1, -1):
        if kind[i, state]:
            labels[i] = state_last[state]
        state = int(source[i, state])
    return labels, total


def mark_repeats(gain: np.ndarray, seconds: np.ndarray, labels: np.ndarray, margin: float) -> np.ndarray:
    """Labels with units relabelled as repeats of steps performed elsewhere (module docstring).

    gain: units x steps as for align; seconds: each unit's duration (gain / seconds = mean evidence);
    labels: align's labels (-1 dropped); margin: mean evidence (z) the repeated step must win by."""
    labels = np.asarray(labels)
    out = labels.copy()
    n = len(out)
    if n == 0 or not (labels >= 0).any():
        return out
    z = np.asarray(gain, dtype=np.float64) / np.maximum(np.asarray(seconds, dtype=np.float64), 1e-9)[:, None]
    best = z.argmax(axis=1)
    performed = set(labels[labels >= 0].tolist())

    def neighbour(i: int, step: int) -> int | None:
        j = i + step
        while 0 <= j < n and out[j] < 0:
            j += step
        return j if 0 <= j < n else None

    todo = list(range(n))
    while todo:
        i = todo.pop()
        s, own = int(best[i]), int(out[i])
        if s == own or s not in performed or z[i, s] - (z[i, own] if own >= 0 else 0.0) < margin:
            continue
        left, right = neighbour(i, -1), neighbour(i, 1)
        lab = [None if j is None else int(out[j]) for j in (left, right)]
        if lab[0] is not None and lab[0] == lab[1]:
            continue  # inside a run: relabelling would split it
        if own >= 0 and (out == own).sum() == 1:
            continue  # the alignment's only unit of a step: keep the step
        if any(j is not None and out[j] == s and labels[j] == s for j in (left, right)):
            continue  # next to the step's own run: a boundary, not a repeat
        out[i] = s
        todo += [j for j in (left, right) if j is not None]  # peel inwards
    return out


# ---------------------------------------------------------------------------- videos


def step_scores(sim: np.ndarray, frame_seconds: float, drop_percentile: float = DROP_PERCENTILE) -> np.ndarray:
    """Per-frame gains (frames x steps) from cosine similarities; see the module docstring."""
    sim = np.asarray(sim, dtype=np.float64)
    scale = sim.std() or 1.0
    return (sim - np.percentile(sim, drop_percentile)) / scale * frame_seconds


def ground_video(frames: np.ndarray, timestamps: np.ndarray, step_texts: np.ndarray, step_ids: Sequence,
                 units: Sequence[tuple[int, int]] | None = None, order: str = "linear", graph=None,
                 drop_percentile: float = DROP_PERCENTILE, step_cost: float = STEP_COST,
                 repeat_margin: float | None = None) -> Grounding:
    """Ground one video: frame embeddings (T x D, L2-normalised) against the task's step text
    embeddings (K x D, in the task's step order). units: (start_frame, end_frame) per segment, end
    exclusive (default: every frame is a unit); frames outside all units are background.
    repeat_margin: None (default) performs each step once; a number marks repeats (mark_repeats)."""
    frames = np.asarray(frames, dtype=np.float32)
    t = np.asarray(timestamps, dtype=np.float64)
    if len(frames) != len(t) or len(t) == 0:
        raise ProcvidError(f"{len(frames)} frame embeddings but {len(t)} timestamps")
    sim = frames @ np.asarray(step_texts, dtype=np.float32).T
    period = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    per_frame = step_scores(sim, period, drop_percentile)
    if units is None:
        units = [(i, i + 1) for i in range(len(t))]
    bounds = np.array(units, dtype=np.int64).reshape(-1, 2)
    if len(bounds) and ((bounds[:, 0] < 0) | (bounds[:, 1] > len(t)) | (bounds[:, 0] >= bounds[:, 1])).any():
        raise ProcvidError(f"segments must lie within the {len(t)} feature frames and be non-empty")
    csum = np.concatenate([np.zeros((1, len(step_ids))), np.cumsum(per_frame, axis=0)])
    gain = csum[bounds[:, 1]] - csum[bounds[:, 0]]
    labels, score = align(gain, precedence_matrix(step_ids, order, graph), step_cost)
    if repeat_margin is not None:
        labels = mark_repeats(gain, (bounds[:, 1] - bounds[:, 0]) * period, labels, repeat_margin)

    frame_step = np.full(len(t), -1)
    for (a, b), label in zip(bounds, labels):
        frame_step[a:b] = label
    # one run per entry of the path: consecutive labelled units of one step (dropped units may lie inside)
    runs: list[list[int]] = []
    for (a, b), label in zip(bounds, labels):
        if label < 0:
            continue
        if runs and runs[-1][0] == label:
            runs[-1][1:] = min(runs[-1][1], int(a)), max(runs[-1][2], int(b))  # units given out of order too
        else:
            runs.append([int(label), int(a), int(b)])
    spans = []
    for k, a, b in runs:
        where = a + np.flatnonzero(frame_step[a:b] == k)
        spans.append((step_ids[k], int(where[0]), int(where[-1]) + 1, float(sim[where, k].mean())))
    return Grounding(path=[step_ids[k] for k, _, _ in runs], spans=spans,
                     labels=[step_ids[x] if x >= 0 else None for x in frame_step], score=score)


def path_edit_accuracy(predicted: Sequence, truth: Sequence) -> float:
    """1 - Levenshtein(predicted, truth) / max(len): 1 for equal paths (also both empty), 0 for disjoint ones."""
    a, b = list(predicted), list(truth)
    if not a and not b:
        return 1.0
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return 1.0 - row[-1] / max(len(a), len(b))
