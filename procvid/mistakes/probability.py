"""Probabilistic online mistake detection: a step is flagged when its probability as the next step,
given the steps done so far, is below a threshold.

Next-step models (setting `model`; each follows procvid.graph.script_model's NextStepModel interface):
  state   StateModel below: the next steps of the training states most like the current one (settings
          decay: how fast a state's weight falls with each differing done step; last: how much more a
          state counts when it ends with the same step as the current one, i.e. how often in training
          a step follows the exact previous step)
  markov  P(next | last step), counted (procvid.graph.script_model.MarkovBaseline)
  walk    a walk on the graph script (procvid.graph.script_model.GraphWalk; given graphs or precedence)
A step never seen in the task's training sequences is flagged as UNKNOWN, as by the precondition
rule. A flagged step's Verdict.steps names the steps that precede it in most training sequences
holding it and are not done yet, so a flag reads like a missing precondition.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from procvid.graph.script import END, START, consecutive_pairs
from procvid.mistakes.base import COMPLETE, REPEATED, UNKNOWN, UNLIKELY, Detector, Setting, TaskIndex, Verdict
from procvid.registry import MISTAKES

DESCRIPTION = "flag a step whose probability given the steps done is below a threshold (state, markov or walk model)"


class StateModel:
    """P(next step | steps done, last step) from the training sequences' states.

    Every position of a training sequence is a state: the set of steps done before it, the last of
    them and the step performed there (END after the last step). The distribution after a prefix is
    the weighted count of the next steps of all states, a state weighing exp(-decay * d + last * s)
    where d is the number of steps done in one but not the other and s is 1 when both end with the same
    step; plus `alpha` times the overall share of each next step (add-one smoothed), so unseen
    continuations keep a small probability. decay -> infinity: only identical states count.
    """

    def __init__(self, sequences: dict[str, list[list]], decay: float = 1.0, last: float = 1.0, alpha: float = 0.5):
        self.decay, self.last, self.alpha = decay, last, alpha
        self.tasks = {}
        for task_id, seqs in sequences.items():
            index = TaskIndex(list(dict.fromkeys(s for seq in seqs for s in seq)))
            n = len(index.steps)
            states, nexts, lasts = [], [], []
            for seq in seqs:
                for i, step in enumerate([*seq, END]):
                    states.append(index.vector(seq[:i]))
                    nexts.append(n if step == END else index.index[step])
                    lasts.append(index.index[seq[i - 1]] if i else -1)
            nexts = np.array(nexts, dtype=int)
            prior = np.bincount(nexts, minlength=n + 1) + 1.0
            self.tasks[task_id] = (index, np.array(states, dtype=bool).reshape(len(nexts), n), nexts,
                                   np.array(lasts, dtype=int), prior / prior.sum())

    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]:
        index, states, nexts, lasts, prior = self.tasks[task_id]
        options = [*index.steps, END]
        out = []
        for prefix in prefixes:
            v = index.vector(prefix)
            distance = (states != v).sum(axis=1)
            last = index.index.get(prefix[-1], -2) if len(prefix) else -1
            weights = np.exp(-self.decay * distance + self.last * (lasts == last))
            p = np.bincount(nexts, weights=weights, minlength=len(options)) + self.alpha * prior
            out.append(dict(zip(options, p / p.sum())))
        return out


@dataclass
class FittedModel:
    model: object  # a NextStepModel
    known: dict  # task id -> set of steps seen in training (or graph nodes)
    before: dict  # task id -> {step: {other: share of the step's sequences with other done first}}
    required: dict  # task id -> steps present in every training sequence, in first-seen order
    settings: dict
    cache: dict = field(default_factory=dict)

    def distribution(self, task_id: str, done: Sequence) -> dict:
        key = (task_id, tuple(done))
        if key not in self.cache:
            prefix = [s for s in done if s in self.known[task_id]]
            self.cache[key] = self.model.predict(task_id, [prefix])[0]
        return self.cache[key]


def _precedes(seqs: list[list]) -> dict:
    """step -> {other: share of the sequences holding step in which other was done before it}."""
    counts, holding = defaultdict(lambda: defaultdict(int)), defaultdict(int)
    for seq in seqs:
        seen = set()
        for step in seq:
            if step in seen:
                continue
            holding[step] += 1
            for other in seen:
                counts[step][other] += 1
            seen.add(step)
    return {s: {o: c / holding[s] for o, c in others.items()} for s, others in counts.items()}


@MISTAKES.register("probability", DESCRIPTION)
class ProbabilityDetector(Detector):
    NAME = "probability"
    SETTINGS = {
        "model": Setting("state", ("state", "markov", "walk"), "next-step model", fit=True,
                         choices=("state", "markov", "walk")),
        "decay": Setting(1.0, (0.5, 1.0, 2.0), "state model: weight lost per differing done step (e-fold)",
                         fit=True),
        "last": Setting(1.0, (1.0, 2.0, 4.0, 6.0), "state model: weight gained by a training state whose last "
                        "step is the current last step (e-fold): how much the exact previous step counts", fit=True),
        "threshold": Setting(0.01, (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
                             "flag a step whose probability is below this"),
        "repeats": Setting(False, (False, True), "flag steps done before"),
    }

    @classmethod
    def fit(cls, sequences: dict[str, list[list]], steps: dict[str, list], graphs: dict | None = None,
            model: str = "state", decay: float = 1.0, last: float = 1.0) -> FittedModel:
        from procvid.graph.induce import induce_graph
        from procvid.graph.script_model import GraphWalk, MarkovBaseline

        sequences = {t: [list(s) for s in seqs if len(s)] for t, seqs in sequences.items()}
        sequences = {t: seqs for t, seqs in sequences.items() if seqs}
        settings = {"model": model, **({"decay": decay, "last": last} if model == "state" else {})}
        required = {t: [s for s in dict.fromkeys(x for seq in seqs for x in seq) if all(s in q for q in seqs)]
                    for t, seqs in sequences.items()}
        if model == "walk":
            if graphs is None:
                graphs = {t: induce_graph(seqs, steps[t]) for t, seqs in sequences.items()}
            else:
                required = {t: [n for n in g.nodes if n not in (START, END) and n not in g.graph.get("optional", [])]
                            for t, g in graphs.items()}
            known = {t: {n for n in g.nodes if n not in (START, END)} for t, g in graphs.items()}
            transitions = {t: consecutive_pairs([[START, *s, END] for s in seqs]) for t, seqs in sequences.items()}
            next_model = GraphWalk(graphs, transitions if set(transitions) >= set(graphs) else None)
        else:
            known = {t: {s for seq in seqs for s in seq} for t, seqs in sequences.items()}
            if model == "markov":
                next_model = MarkovBaseline(sequences, {t: sorted(k, key=str) for t, k in known.items()})
            else:
                next_model = StateModel(sequences, decay=decay, last=last)
        return FittedModel(next_model, known, {t: _precedes(seqs) for t, seqs in sequences.items()}, required,
                           settings)

    def check(self, task_id: str, done: Sequence, step: Hashable) -> Verdict:
        fitted = self.fitted
        if task_id not in fitted.known or step not in fitted.known[task_id]:
            return Verdict(True, 1.0, UNKNOWN)
        p = float(fitted.distribution(task_id, done).get(step, 0.0))
        if step in done and self.settings["repeats"]:
            complete = all(s in done for s in fitted.required.get(task_id, []))
            return Verdict(True, 1.0, COMPLETE if complete else REPEATED, probability=p)
        if p < self.settings["threshold"]:
            usual = fitted.before.get(task_id, {}).get(step, {})
            missing = tuple(s for s, share in sorted(usual.items(), key=lambda kv: (-kv[1], str(kv[0])))
                            if share >= 0.5 and s not in done)
            return Verdict(True, 1.0 - p, UNLIKELY, missing, probability=p)
        return Verdict(False, 1.0 - p, probability=p)

    def prepare(self, task_id: str, done: Sequence, candidates: Sequence) -> dict:
        fitted, n = self.fitted, len(candidates)
        known = fitted.known.get(task_id)
        if known is None:
            return {"unknown": np.ones(n, dtype=bool), "repeat": np.zeros(n, dtype=bool), "p": np.ones(n)}
        dist, done_set = fitted.distribution(task_id, done), set(done)
        return {"unknown": np.array([c not in known for c in candidates], dtype=bool).reshape(n),
                "repeat": np.array([c in done_set for c in candidates], dtype=bool).reshape(n),
                "p": np.array([dist.get(c, 0.0) for c in candidates], dtype=float).reshape(n)}

    def decide(self, prepared: dict) -> np.ndarray:
        flags = prepared["unknown"] | (prepared["p"] < self.settings["threshold"])
        return flags | prepared["repeat"] if self.settings["repeats"] else flags

    def unfinished(self, task_id: str, done: Sequence) -> list:
        return [s for s in self.fitted.required.get(task_id, []) if s not in done]
