"""The graph-script form shared by every induction method, and the steps that turn scored edges into it.

A graph script is an nx.DiGraph over the observed step ids plus START and END nodes:
  node attribute "text"; edge attributes "weight" (the method's confidence, 1.0 for START/END links) and
  "transitions" (how many times the head directly followed the tail in the training sequences);
  graph attributes "method", "optional" (steps missing from some sequence), "interchangeable" (pairs
  [a, b] performed consecutively in both orders) and "branches" ([node, [successors]] for nodes with
  several successors). It is a transitively reduced DAG; START reaches every step and every step reaches END.
"""

from __future__ import annotations

from collections import Counter
from typing import Hashable, Iterable

START = "START"
END = "END"

Edge = tuple[Hashable, Hashable]


def first_occurrences(sequence: Iterable) -> list:
    """The sequence with repeated steps kept at their first occurrence."""
    return list(dict.fromkeys(sequence))


def consecutive_pairs(sequences: Iterable[list]) -> Counter:
    """Counts of (a, b), a != b, with b performed directly after a (repeats of a step are not pairs)."""
    return Counter((a, b) for seq in sequences for a, b in zip(seq, seq[1:]) if a != b)


def transitive_reduction(graph):
    """nx.transitive_reduction that keeps node, edge and graph attributes."""
    import networkx as nx

    reduced = nx.transitive_reduction(graph)
    reduced.add_nodes_from(graph.nodes(data=True))
    reduced.add_edges_from((u, v, graph.edges[u, v]) for u, v in reduced.edges)
    reduced.graph.update(graph.graph)
    return reduced


def assemble_graph(scores: dict[Edge, float], steps: dict, sequences: list[list], method: str):
    """Graph script from scored precedence edges (a -> b: a precedes b); START/END may appear in `scores`.

    Edges are added from the highest score down, skipping any that would close a cycle; steps left
    without predecessors hang from START, steps without successors lead to END; then the graph is
    transitively reduced. Only steps that occur in `sequences` become nodes.
    """
    import networkx as nx

    observed = {s for seq in sequences for s in seq}
    nodes = [START] + [s for s in steps if s in observed] + [END]
    rank = {node: i for i, node in enumerate(nodes)}
    graph = nx.DiGraph(method=method)
    graph.add_node(START, text=START)
    graph.add_nodes_from((s, {"text": steps[s]}) for s in nodes[1:-1])
    graph.add_node(END, text=END)

    def priority(item):  # best score first; ties in node order, so the result never depends on dict order
        (a, b), score = item
        return -score, rank.get(a, -1), rank.get(b, -1)

    for (a, b), score in sorted(scores.items(), key=priority):
        if a == b or a not in rank or b not in rank or a == END or b == START:
            continue
        if not nx.has_path(graph, b, a):
            graph.add_edge(a, b, weight=float(score))
    for s in nodes[1:-1]:
        if graph.in_degree(s) == 0:
            graph.add_edge(START, s, weight=1.0)
        if graph.out_degree(s) == 0:
            graph.add_edge(s, END, weight=1.0)
    graph = transitive_reduction(graph)

    bounded = [[START, *seq, END] for seq in sequences]
    transitions = consecutive_pairs(bounded)
    for a, b in graph.edges:
        graph.edges[a, b]["transitions"] = transitions.get((a, b), 0)
    pairs = consecutive_pairs(sequences)
    present = [set(seq) for seq in sequences]
    graph.graph["optional"] = [s for s in nodes[1:-1] if any(s not in p for p in present)]
    graph.graph["interchangeable"] = sorted(
        ([a, b] for a, b in pairs if (b, a) in pairs and rank[a] < rank[b]), key=lambda p: (rank[p[0]], rank[p[1]])
    )
    graph.graph["branches"] = [[n, sorted(graph.successors(n), key=rank.get)]
                               for n in nodes if graph.out_degree(n) > 1]
    return graph
