"""Choosing a detector's settings by cross-validation on mistake-free training sequences only.

Protocol (fixed; documented here and in tools/bench_mistake.py):
* Folds. The training sequences, in the caller's order (sorted by video id), go to K folds
  round-robin (sequence i to fold i mod K, K = 5). Each fold is held out once; the detector is fitted
  on the other folds and judged on cases built from the held-out sequences.
* Cases. A held-out sequence has no mistakes, so mistakes are simulated the way the Assembly101-O
  test set is built (correct steps, then the first mistake as the last step): for every cut c of a
  held-out sequence q, one simulated test sequence is q[:c] followed by one mistake, drawn with
  equal weight from two kinds when both exist:
    - wrong order: a step the person performs later (some q[j], j > c, not done by c and not q[c]),
      performed now instead;
    - unnecessary step: a step of the task's step list the person never performs.
  Within a kind each candidate weighs the same; a simulated sequence's mistake weighs 1 in total, and
  its correct steps weigh 1 each, so step q[i] counts once per simulated sequence it belongs to.
  Simulated wrong-order mistakes are noisy labels (some later steps could legitimately come now),
  which is why the criterion is relative: it ranks settings, it does not predict test scores.
* Criterion. Pooled, weighted Avg F1 (procvid.metrics.mistakes) over all held-out cases of all
  folds; the best setting wins, ties going to the earlier one in grid order (each setting's grid
  lists its default first). Settings fixed by the caller are not searched.
No test data is read anywhere in this module.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from procvid.errors import ProcvidError
from procvid.metrics.mistakes import mistake_scores

FOLDS = 5


@dataclass
class Case:
    task: str
    prefix: tuple
    candidates: list
    labels: np.ndarray
    weights: np.ndarray


@dataclass
class Selection:
    settings: dict  # the chosen settings (all of the detector's)
    table: list = field(default_factory=list)  # [{"settings", "avg_f1", "correct_f1", "mistake_f1"}], grid order
    folds: int = FOLDS
    sequences: int = 0
    searched: list = field(default_factory=list)  # names of the settings searched

    @property
    def best(self) -> dict:
        return max(self.table, key=lambda row: row["avg_f1"]) if self.table else {}

    def to_dict(self) -> dict:
        return {"settings": self.settings, "searched": self.searched, "folds": self.folds,
                "training_sequences": self.sequences, "protocol": "procvid.mistakes.select (simulated mistakes)",
                "cv": self.table}


def simulated_cases(task: str, sequence: list, vocabulary: list) -> list[Case]:
    """The cases of one held-out sequence (module doc), one per prefix: the correct next step and the
    simulated mistakes that may follow that prefix."""
    q = list(sequence)
    n = len(q)
    performed = set(q)
    foreign = [s for s in vocabulary if s not in performed]
    mistakes = []
    for c in range(n):
        jump = list(dict.fromkeys(q[j] for j in range(c + 1, n) if q[j] not in q[: c + 1]))
        kinds = [k for k in (jump, foreign) if k]
        mistakes.append([(m, 1.0 / len(kinds) / len(kind)) for kind in kinds for m in kind])
    cases = []
    for i in range(n):
        instances = sum(1 for c in range(i + 1, n) if mistakes[c])  # simulated sequences holding step i
        candidates = ([q[i]] if instances else []) + [m for m, _ in mistakes[i]]
        if not candidates:
            continue
        labels = [False] * (1 if instances else 0) + [True] * len(mistakes[i])
        weights = ([float(instances)] if instances else []) + [w for _, w in mistakes[i]]
        cases.append(Case(task, tuple(q[:i]), candidates, np.array(labels), np.array(weights)))
    return cases


def canonical(cls, settings: dict) -> dict:
    """Settings with those that do not apply to the others reset to their default (so equal detectors
    are searched once): precondition's tolerance beyond precedence, probability's decay and last beyond state."""
    out = dict(settings)
    if "tolerance" in out and out.get("graph_method", "precedence") != "precedence":
        out["tolerance"] = cls.SETTINGS["tolerance"].default
    for name in ("decay", "last"):
        if name in out and out.get("model", "state") != "state":
            out[name] = cls.SETTINGS[name].default
    return out


def grid(cls, fixed: dict) -> list[dict]:
    """Every distinct setting of the detector, fixed ones held, in grid order."""
    names = list(cls.SETTINGS)
    values = [[fixed[n]] if n in fixed else list(cls.SETTINGS[n].grid or (cls.SETTINGS[n].default,)) for n in names]
    seen, out = set(), []
    for combo in itertools.product(*values):
        settings = canonical(cls, dict(zip(names, combo)))
        key = repr(sorted(settings.items(), key=lambda kv: kv[0]))
        if key not in seen:
            seen.add(key)
            out.append(settings)
    return out


def _joined(prepared: list[dict]):
    """The cases' prepared arrays joined into one dict (decide works candidate by candidate, so one call
    then flags them all); the list itself when the cases' keys differ."""
    keys = set(prepared[0]) if prepared else set()
    if not prepared or any(set(p) != keys for p in prepared):
        return prepared
    return {key: np.concatenate([p[key] for p in prepared]) for key in keys}


def cross_validate(cls, sequences: list[tuple[str, list]], steps: dict[str, list], fixed: dict | None = None,
                   folds: int = FOLDS, graphs: dict | None = None) -> Selection:
    """Choose the settings of detector class `cls` not in `fixed` (module doc).

    sequences: (task id, step sequence) of the mistake-free training videos, in a fixed order;
    steps: task id -> the task's step ids (the vocabulary of simulated unnecessary steps); graphs:
    given graph scripts (then the settings they replace, cls.GRAPH_SETTINGS, are not searched)."""
    fixed = dict(fixed or {})
    if graphs is not None:
        fixed.update({n: fixed.get(n, cls.SETTINGS[n].default) for n in cls.GRAPH_SETTINGS})
    candidates = grid(cls, fixed)
    searched = [n for n in cls.SETTINGS if n not in fixed and len({repr(c[n]) for c in candidates}) > 1]
    if not searched:
        return Selection(candidates[0], [], folds, len(sequences), [])
    folds = max(2, min(folds, len(sequences)))
    fit_names = [n for n, s in cls.SETTINGS.items() if s.fit]
    collected = [([], [], []) for _ in candidates]  # per candidate: labels, flags, weights
    for k in range(folds):
        train: dict[str, list] = {}
        cases = []
        for i, (task, seq) in enumerate(sequences):
            if i % folds == k:
                cases += simulated_cases(task, seq, steps[task])
            else:
                train.setdefault(task, []).append(list(seq))
        cases = [case for case in cases if case.task in train]
        if not cases:
            continue
        labels = np.concatenate([case.labels for case in cases])
        weights = np.concatenate([case.weights for case in cases])
        prepared = {}  # fit settings -> (fitted, what the flags of all the fold's candidates depend on)
        for c, settings in enumerate(candidates):
            fit_key = repr([settings[n] for n in fit_names])
            if fit_key not in prepared:
                fitted = cls.fit(train, steps, graphs, **{n: settings[n] for n in fit_names})
                base = cls(fitted)
                prepared[fit_key] = fitted, _joined([base.prepare(case.task, case.prefix, case.candidates)
                                                     for case in cases])
            fitted, ready = prepared[fit_key]
            detector = cls(fitted, **{n: v for n, v in settings.items() if n not in fit_names})
            flags = detector.decide(ready) if isinstance(ready, dict) else \
                np.concatenate([detector.decide(r) for r in ready])
            collected[c][0].append(labels)
            collected[c][1].append(flags)
            collected[c][2].append(weights)
    if not collected[0][0]:  # no fold had a task also seen in its training part
        raise ProcvidError("cross-validation needs at least two mistake-free training videos of a task; "
                           "give the settings with --set instead")
    table = []
    for settings, (labels, flags, weights) in zip(candidates, collected):
        s = mistake_scores(np.concatenate(labels), np.concatenate(flags), np.concatenate(weights))
        table.append({"settings": settings, "avg_f1": s["avg_f1"], "correct_f1": s["correct"]["f1"],
                      "mistake_f1": s["mistake"]["f1"]})
    best = max(range(len(table)), key=lambda i: (table[i]["avg_f1"], -i))
    return Selection(table[best]["settings"], table, folds, len(sequences), searched)
