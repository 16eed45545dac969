"""Graph scripts: task graphs induced from step sequences, their export and statistics."""

from procvid.graph.induce import DEFAULT_METHOD, induce_graph
from procvid.graph.script import END, START, transitive_reduction

__all__ = ["DEFAULT_METHOD", "END", "START", "induce_graph", "transitive_reduction"]
