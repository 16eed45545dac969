"""The precondition rule on a graph script (the online mistake detection of "Differentiable Task Graph
Learning", Seminara et al., NeurIPS 2024), on a graph from any of procvid's induction methods.

Published rule: a step is a mistake if it is not a node of the task's graph (never seen in training),
or if any of its direct predecessors in the transitively reduced graph is not done yet (a step without
predecessors hangs from START, which is always done). With the defaults this detector is exactly that
rule; with `--method precondition --set graph_method=tgml` on Assembly101-O it reproduces the
published DO row (75.9 Avg F1).

Further settings (chosen by cross-validation, procvid.mistakes.select):
  optional=skip    steps the graph marks optional (missing from some training sequence) are not
                   required: a step's preconditions are its nearest non-optional ancestors
  successors=true  a step is also flagged (LATE) when steps that must come after it (its descendants)
                   are already done: the second half of a swapped pair (the first half is MISSING)
  repeats=true     a step done before is flagged (REPEATED, or COMPLETE once all required steps are done)
  violations=k     (k > 1) stronger evidence: a step is flagged only when it breaks at least k precedence
                   relations of the graph, counting all its ancestors not done yet (not only the direct
                   predecessors; optional ones left out with optional=skip) plus, with successors=true,
                   its descendants already done. An order seen in few training sequences may hold by
                   chance and a correct recording breaks one such relation now and then; a step done far
                   out of place breaks many. k = 1 is the rule above, exactly. Since k > 1 counts all
                   ancestors and k = 1 only the direct predecessors, k = 2 can flag a step k = 1 lets
                   pass (in 1 -> 2 -> 3 -> 4 with only 3 done, 4 has its direct predecessor but breaks
                   1 < 4 and 2 < 4): the settings are not one rising scale of strictness.
Scores: the share of the step's preconditions missing (or of its successors done); 1 for unknown steps;
with violations > 1, the share of its ancestors (and descendants) whose relation it breaks, flagged or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Sequence

import numpy as np

from procvid.errors import ProcvidError
from procvid.graph.script import END, START
from procvid.mistakes.base import (COMPLETE, LATE, MISSING, REPEATED, UNKNOWN, Detector, Setting, TaskIndex,
                                   Verdict)
from procvid.registry import MISTAKES

DESCRIPTION = "the published precondition rule on each task's graph script (DTGL); graph from any induction method"


@dataclass
class TaskGraph:
    """One task's graph script as matrices over its steps (row: the step, column: the other step)."""

    graph: object
    index: TaskIndex
    direct: np.ndarray  # direct[x, y]: y is a direct predecessor of x (START left out)
    nearest: np.ndarray  # nearest[x, y]: y is a nearest non-optional ancestor of x
    later: np.ndarray  # later[x, y]: y is a descendant of x (END left out)
    optional: np.ndarray  # steps marked optional
    @classmethod
    def of(cls, graph) -> TaskGraph:
        import networkx as nx

        steps = [n for n in graph.nodes if n not in (START, END)]
        index = TaskIndex(steps)
        n = len(steps)
        optional_set = set(graph.graph.get("optional", []))
        direct, nearest, later = (np.zeros((n, n), dtype=bool) for _ in range(3))
        for x in steps:
            i = index.index[x]
            for y in graph.predecessors(x):
                if y != START:
                    direct[i, index.index[y]] = True
            for y in _nearest_required(graph, x, optional_set):
                nearest[i, index.index[y]] = True
            for y in nx.descendants(graph, x) - {END}:
                later[i, index.index[y]] = True
        optional = np.array([s in optional_set for s in steps], dtype=bool)
        return cls(graph, index, direct, nearest, later, optional)


def _nearest_required(graph, step, optional: set) -> set:
    """Ancestors reached from `step` going up through optional steps only (START left out)."""
    out, frontier, seen = set(), list(graph.predecessors(step)), set()
    while frontier:
        node = frontier.pop()
        if node in seen or node == START:
            continue
        seen.add(node)
        if node in optional:
            frontier.extend(graph.predecessors(node))
        else:
            out.add(node)
    return out


@dataclass
class FittedGraphs:
    tasks: dict  # task id -> TaskGraph
    settings: dict  # how the graphs were made (method, options, or "given")


@MISTAKES.register("precondition", DESCRIPTION)
class PreconditionDetector(Detector):
    NAME = "precondition"
    SETTINGS = {
        "graph_method": Setting("precedence", ("precedence", "count"), "graph induction method (procvid list "
                                "graph-methods; tgml is slow, so not in the CV grid)", fit=True),
        "tolerance": Setting(0.0, (0.0, 0.1, 0.2), "precedence: share of sequences that may contradict an edge",
                             fit=True),
        "optional": Setting("required", ("required", "skip"), "preconditions marked optional in the graph",
                            choices=("required", "skip")),
        "successors": Setting(False, (False, True), "also flag a step whose successors are already done"),
        "repeats": Setting(False, (False, True), "flag steps done before"),
        "violations": Setting(1, (1, 2, 3, 4, 6), "flag only steps breaking at least this many precedence relations "
                              "(ancestors not done, descendants done with successors); 1: the published rule",
                              minimum=1),
    }
    GRAPH_SETTINGS = ("graph_method", "tolerance")

    @classmethod
    def fit(cls, sequences: dict[str, list[list]], steps: dict[str, list], graphs: dict | None = None,
            graph_method: str = "precedence", tolerance: float = 0.0) -> FittedGraphs:
        """Graphs given (task -> graph script) or induced from each task's sequences."""
        from procvid.graph.build import method_options
        from procvid.graph.induce import induce_graph
        from procvid.registry import GRAPH_METHODS

        if graphs is not None:
            return FittedGraphs({t: TaskGraph.of(g) for t, g in graphs.items()}, {"graphs": "given"})
        GRAPH_METHODS.check(graph_method)
        options = method_options(graph_method, tolerance)
        tasks = {}
        for task_id, seqs in sequences.items():
            seqs = [list(s) for s in seqs if len(s)]
            if seqs:
                tasks[task_id] = TaskGraph.of(induce_graph(seqs, steps[task_id], graph_method, **options))
        return FittedGraphs(tasks, {"graph_method": graph_method, **options})

    def _task(self, task_id: str) -> TaskGraph | None:
        return self.fitted.tasks.get(task_id)

    def check(self, task_id: str, done: Sequence, step: Hashable) -> Verdict:
        tg = self._task(task_id)
        if tg is None or step not in tg.index.index:
            return Verdict(True, 1.0, UNKNOWN)
        i = tg.index.index[step]
        d = tg.index.vector(done)
        if step in done and self.settings["repeats"]:
            complete = bool(d[~tg.optional].all())
            return Verdict(True, 1.0, COMPLETE if complete else REPEATED)
        if int(self.settings["violations"]) > 1:
            return self._count_check(tg, i, d, step in done)
        pre = tg.nearest[i] if self.settings["optional"] == "skip" else tg.direct[i]
        missing = pre & ~d
        if missing.any():
            return Verdict(True, float(missing.sum() / pre.sum()), MISSING, self._names(tg, missing))
        if self.settings["successors"] and step not in done:
            late = tg.later[i] & d
            if late.any():
                return Verdict(True, float(late.sum() / tg.later[i].sum()), LATE, self._names(tg, late))
        return Verdict(False, 0.0)

    def _ancestors(self, tg: TaskGraph) -> np.ndarray:
        """ancestors[x, y]: y comes before x in the graph (optional steps left out with optional=skip)."""
        ancestors = tg.later.T
        return ancestors & ~tg.optional if self.settings["optional"] == "skip" else ancestors

    def _count_check(self, tg: TaskGraph, i: int, d: np.ndarray, repeat: bool) -> Verdict:
        """violations > 1: flagged when the broken precedence relations reach the setting (module doc)."""
        before = self._ancestors(tg)[i]
        missing = before & ~d
        after = tg.later[i] if self.settings["successors"] else np.zeros_like(d)
        late = after & d if not repeat else np.zeros_like(d)
        count, total = int(missing.sum() + late.sum()), int(before.sum() + after.sum())
        score = count / total if total else 0.0
        if count < int(self.settings["violations"]):
            return Verdict(False, score)
        if missing.any():
            return Verdict(True, score, MISSING, self._names(tg, missing))
        return Verdict(True, score, LATE, self._names(tg, late))

    def prepare(self, task_id: str, done: Sequence, candidates: Sequence) -> dict:
        tg = self._task(task_id)
        n = len(candidates)
        if tg is None:  # an unknown task: every step unknown (the other arrays keep the keys alike)
            return {"unknown": np.ones(n, dtype=bool),
                    **{k: np.zeros(n, dtype=bool) for k in ("direct", "nearest", "later", "repeat")},
                    **{k: np.zeros(n, dtype=int) for k in ("ancestors_missing", "required_missing", "late_count")}}
        index = tg.index.index
        known = np.fromiter((c in index for c in candidates), dtype=bool, count=n)
        rows = np.fromiter((index[c] for c in candidates if c in index), dtype=int)
        d = tg.index.vector(done)
        out = {"unknown": ~known}
        for name, matrix, want in (("direct", tg.direct, ~d), ("nearest", tg.nearest, ~d), ("later", tg.later, d),
                                   ("repeat", None, None)):
            values = np.zeros(n, dtype=bool)
            values[known] = d[rows] if matrix is None else (matrix[rows] & want).any(axis=1)
            out[name] = values
        # counts of broken relations (violations > 1): all ancestors not done (required ones), descendants done
        for name, matrix, want in (("ancestors_missing", tg.later.T, ~d),
                                   ("required_missing", tg.later.T & ~tg.optional, ~d), ("late_count", tg.later, d)):
            values = np.zeros(n, dtype=int)
            values[known] = (matrix[rows] & want).sum(axis=1)
            out[name] = values
        return out

    def decide(self, prepared: dict) -> np.ndarray:
        flags = prepared["unknown"].copy()
        k = int(self.settings["violations"])
        if k > 1:
            count = prepared["required_missing" if self.settings["optional"] == "skip" else "ancestors_missing"]
            if self.settings["successors"]:
                count = count + np.where(prepared["repeat"], 0, prepared["late_count"])
            flags |= count >= k
            return flags | prepared["repeat"] if self.settings["repeats"] else flags
        flags |= prepared["nearest"] if self.settings["optional"] == "skip" else prepared["direct"]
        if self.settings["repeats"]:
            flags |= prepared["repeat"]
        if self.settings["successors"]:
            flags |= prepared["later"] & ~prepared["repeat"]
        return flags

    def unfinished(self, task_id: str, done: Sequence) -> list:
        tg = self._task(task_id)
        if tg is None:
            return []
        d = tg.index.vector(done)
        return [s for s, k in zip(tg.index.steps, ~d & ~tg.optional) if k]

    @staticmethod
    def _names(tg: TaskGraph, mask: np.ndarray) -> tuple:
        return tuple(s for s, m in zip(tg.index.steps, mask) if m)


def check_graph(graph) -> None:
    """One line when a given graph script cannot be used (no START/END)."""
    if START not in graph or END not in graph:
        raise ProcvidError(f"graph script {graph.graph.get('task_id', '')!r} has no START/END nodes")
