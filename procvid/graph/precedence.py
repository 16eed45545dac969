"""Exact precedence estimator: a step's preconditions are the steps always done before it.

a -> b is kept when, among the sequences holding both, a comes first in all of them (or in all but a
`tolerance` share, for noisy annotations). Over complete, noise-free sequences this relation is the
intersection of the observed orders, i.e. the tightest partial order they all satisfy; its transitive
reduction (done in assemble_graph) is the graph script.
"""

from __future__ import annotations

import numpy as np

from procvid.errors import ProcvidError
from procvid.registry import GRAPH_METHODS


@GRAPH_METHODS.register("precedence", "exact: a step's preconditions are the steps always done before it (default)")
def precedence_scores(sequences: list[list], nodes: list, tolerance: float = 0.0) -> dict:
    """Edge (a, b) -> share of the sequences containing b in which a was done before b."""
    if not 0.0 <= tolerance < 0.5:
        raise ProcvidError(f"precedence tolerance must be in [0, 0.5), not {tolerance}")
    index = {node: i for i, node in enumerate(nodes)}
    n = len(nodes)
    together = np.zeros((n, n))  # sequences holding both steps
    before = np.zeros((n, n))  # ... in which the row step came first
    for seq in sequences:
        pos = np.full(n, -1)
        pos[[index[s] for s in seq]] = np.arange(len(seq))
        held = pos >= 0
        both = held[:, None] & held[None, :]
        together += both
        before += both & (pos[:, None] < pos[None, :])
    contains = together.diagonal()
    keep = (together > 0) & (before >= (1.0 - tolerance) * together) & (2 * before > together)
    return {(nodes[a], nodes[b]): before[a, b] / contains[b] for a, b in zip(*np.nonzero(keep))}
