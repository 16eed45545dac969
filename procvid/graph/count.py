"""Count-based transition baseline, as in the Differentiable Task Graph Learning paper's baseline.

Transition probabilities P(b | a) are counted over consecutive steps (START and END included). The
precondition score of a for b is P(b | a) normalised over all a; every step keeps its best-scoring
precondition(s). Cycles lose their least likely transition, and a step left without any precondition
(or successor) takes its best one that keeps the graph acyclic.
"""

from __future__ import annotations

import numpy as np

from procvid.graph.script import END, START
from procvid.registry import GRAPH_METHODS


@GRAPH_METHODS.register("count", "count-based transition baseline (DTGL paper)")
def count_scores(sequences: list[list], nodes: list) -> dict:
    """Edge (a, b) -> precondition score of a for b, for the edges the baseline selects."""
    import networkx as nx

    names = [START, *nodes, END]
    index = {node: i for i, node in enumerate(names)}
    counts = np.zeros((len(names), len(names)))
    for seq in sequences:
        path = [0, *(index[s] for s in seq), len(names) - 1]
        for a, b in zip(path, path[1:]):
            counts[a, b] += 1
    trans = _normalise(counts, axis=1)  # P(next = b | a)
    pre = _normalise(trans, axis=0)  # precondition score of a for b

    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(names)))
    for b in range(1, len(names)):
        column = pre[:, b]
        if column.max() > 0:
            graph.add_edges_from((int(a), b) for a in np.flatnonzero(column == column.max()) if a != b)
    while True:
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            break
        graph.remove_edge(*min(cycle, key=lambda e: trans[e[0], e[1]]))
    for node in range(1, len(names) - 1):
        if graph.in_degree(node) == 0:
            _add_best(graph, node, pre[:, node], incoming=True)
        if graph.out_degree(node) == 0:
            _add_best(graph, node, trans[node], incoming=False)
    return {(names[a], names[b]): float(pre[a, b]) for a, b in graph.edges}


def _normalise(matrix: np.ndarray, axis: int) -> np.ndarray:
    total = matrix.sum(axis=axis, keepdims=True)
    return np.divide(matrix, total, out=np.zeros_like(matrix), where=total > 0)


def _add_best(graph, node: int, scores: np.ndarray, incoming: bool) -> None:
    """Link node to its best-scoring partner (predecessor if incoming) that keeps the graph acyclic."""
    import networkx as nx

    for other in np.argsort(-scores, kind="stable"):
        other = int(other)
        if scores[other] <= 0:
            return
        u, v = (other, node) if incoming else (node, other)
        if u != v and not nx.has_path(graph, v, u):
            graph.add_edge(u, v)
            return
