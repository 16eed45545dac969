"""induce_graph(): one entry point over the induction methods, each a scorer of precedence edges."""

from __future__ import annotations

from typing import Callable

from procvid.errors import ProcvidError
from procvid.graph.script import assemble_graph, first_occurrences
from procvid.registry import GRAPH_METHODS

# GRAPH_METHODS holds scorer(sequences, nodes, **options) -> {(a, b): score}, where each sequence holds
# a step once (`procvid list graph-methods`)
DEFAULT_METHOD = "precedence"


def scorer(method: str) -> Callable[..., dict]:
    return GRAPH_METHODS.get(method)


def step_texts(steps) -> dict:
    """{id: text} from a dict {id: text or Step} or a list of ids."""
    if isinstance(steps, dict):
        return {sid: getattr(text, "text", text) for sid, text in steps.items()}
    return {sid: str(sid) for sid in steps}


def induce_graph(sequences: list[list], steps, method: str = DEFAULT_METHOD, **options):
    """Graph script (see procvid.graph.script) of a task from its step sequences.

    sequences: step ids in performed order, one list per video (repeats allowed: only the first
    occurrence of a step counts for ordering). steps: {id: text} or a list of ids.
    """
    score = scorer(method)
    texts = step_texts(steps)
    sequences = [list(s) for s in sequences if len(s)]
    if not sequences:
        raise ProcvidError("no step sequences to learn a graph from")
    unknown = {s for seq in sequences for s in seq} - set(texts)
    if unknown:
        raise ProcvidError(f"sequences use steps that are not in the step list: {sorted(map(str, unknown))[:5]}")
    ordered = [first_occurrences(s) for s in sequences]
    observed = {s for seq in ordered for s in seq}
    nodes = [s for s in texts if s in observed]
    scores = score(ordered, nodes, **options)
    return assemble_graph(scores, texts, sequences, method)
