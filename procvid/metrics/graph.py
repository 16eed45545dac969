"""Task-graph generation metrics: precision, recall and F1 of predicted edges against a ground-truth graph.

Protocol of the CaptainCook4D task-graph generation table of "Differentiable Task Graph Learning"
(Seminara et al., NeurIPS 2024), as their evaluation code computes it:

* Nodes. Both graphs live on the ground truth's K + 2 nodes: its K steps plus START and END, edges
  START -> steps without preconditions and steps without successors -> END included on both sides.
* Reduction. The predicted graph is transitively reduced before scoring (the human graphs already are).
* Samples. Each graph is a binary (K+2) x (K+2) adjacency matrix, A[u, v] = 1 iff edge u -> v, and every
  matrix entry is one binary sample labelled by the ground truth (the DTGL code flattens both matrices
  into sklearn's precision/recall/f1 scores). Hence, with edge sets P (predicted) and G (truth):
  TP = |P & G|, FP = |P - G|, FN = |G - P|.
* precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2 precision recall / (precision + recall);
  each is 0 when its denominator is 0 (sklearn's zero_division=0 result).
* Per graph scores are macro-averaged over tasks (mean of the per-task precision, recall and F1).

DTGL stores edges reversed (step -> its precondition) in both graphs, which leaves every count unchanged.
Ground-truth nodes absent from the prediction (e.g. steps never observed) contribute all-zero rows.
Scores are fractions in [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

from procvid.errors import ProcvidError


@dataclass(frozen=True)
class GraphScores:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def graph_scores(predicted, truth, reduce: bool = True) -> GraphScores:
    """Edge precision/recall/F1 of `predicted` against `truth` (both nx.DiGraph with START/END nodes)."""
    from procvid.graph.script import transitive_reduction

    extra = set(predicted.nodes) - set(truth.nodes)
    if extra:
        raise ProcvidError(f"predicted graph has nodes the ground truth lacks: {sorted(map(str, extra))[:5]}")
    if reduce:
        predicted = transitive_reduction(predicted)
    pred, true = set(predicted.edges), set(truth.edges)
    tp, fp, fn = len(pred & true), len(pred - true), len(true - pred)
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return GraphScores(precision, recall, _ratio(2 * precision * recall, precision + recall), tp, fp, fn)


def macro_average(scores: list[GraphScores]) -> GraphScores:
    """Mean precision, recall and F1 over tasks (counts summed)."""
    if not scores:
        raise ValueError("no scores to average")
    n = len(scores)
    return GraphScores(
        sum(s.precision for s in scores) / n,
        sum(s.recall for s in scores) / n,
        sum(s.f1 for s in scores) / n,
        sum(s.tp for s in scores),
        sum(s.fp for s in scores),
        sum(s.fn for s in scores),
    )
