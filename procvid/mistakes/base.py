"""The interface every online mistake detector shares, and its settings.

A detector is fitted on the mistake-free step sequences of each task (or built on given graph scripts)
and then judges each new step the moment it is performed, from the steps done before it only:

    detector.check(task_id, done, step) -> Verdict(flag, score, reason, steps, probability)

Reasons (Verdict.reason, "" when the step is not flagged):
  UNKNOWN   the step never occurs in the task's training sequences (not a node of its graph script)
  MISSING   some of its preconditions are not done yet (Verdict.steps names them)
  LATE      steps that must come after it are already done (Verdict.steps names them)
  REPEATED  the step was done before (only with the setting repeats=True)
  COMPLETE  a repeat once every required step of the task is done (repeats=True)
  UNLIKELY  its probability given the steps done is below the threshold (probabilistic detectors;
            Verdict.steps then names the steps that usually precede it and are not done)
score is in [0, 1], higher is more suspicious. `unfinished(task, done)` names the required steps
still missing when a recording ends (a skipped step is detected there, or earlier as a missing
precondition of a later step).

Each detector class declares its settings (SETTINGS: name -> Setting) with a default and the grid
that cross-validation searches (procvid.mistakes.select); settings marked `fit` change what is
learned (graph method, model), the others only how it is used, so cross-validation fits once per fit
setting and fold. `fit(sequences, steps, graphs, **fit_settings)` learns; the constructor takes the
fitted object and the remaining settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np

from procvid.errors import ProcvidError

UNKNOWN = "unknown step"
MISSING = "missing preconditions"
LATE = "after its successors"
REPEATED = "repeated step"
COMPLETE = "after the task is complete"
UNLIKELY = "unlikely next step"
REASONS = (UNKNOWN, MISSING, LATE, REPEATED, COMPLETE, UNLIKELY)


@dataclass(frozen=True)
class Verdict:
    flag: bool
    score: float  # [0, 1], higher = more suspicious
    reason: str = ""  # one of REASONS when flagged
    steps: tuple = ()  # the steps the reason names (missing preconditions, successors already done)
    probability: float | None = None  # P(step | done) for probabilistic detectors


@dataclass(frozen=True)
class Setting:
    default: object
    grid: tuple  # values cross-validation tries (default first)
    help: str
    fit: bool = False  # changes what is learned (refit per value)
    choices: tuple = ()  # allowed values of a string setting
    minimum: float | None = None  # smallest allowed value of a number setting


class Detector:
    """Base class: subclasses set NAME and SETTINGS and implement fit, check and flags."""

    NAME = ""
    SETTINGS: dict[str, Setting] = {}
    GRAPH_SETTINGS: tuple = ()  # settings that do not apply when graph scripts are given

    def __init__(self, fitted, **settings):
        self.fitted = fitted
        self.settings = resolve_settings(type(self), settings, fit=False)

    # ------------------------------------------------------------------ to implement
    @classmethod
    def fit(cls, sequences: dict[str, list[list]], steps: dict[str, list], graphs: dict | None = None,
            **fit_settings):
        raise NotImplementedError

    def check(self, task_id: str, done: Sequence, step: Hashable) -> Verdict:
        raise NotImplementedError

    def unfinished(self, task_id: str, done: Sequence) -> list:
        return []

    def prepare(self, task_id: str, done: Sequence, candidates: Sequence) -> dict:
        """What the flags of candidate next steps after `done` depend on, as arrays, computed once per
        fitted object (cross-validation's fast path; `decide` turns it into flags under this
        detector's other settings). Default: the flags themselves."""
        return {"flags": np.array([self.check(task_id, done, c).flag for c in candidates], dtype=bool)}

    def decide(self, prepared: dict) -> np.ndarray:
        """Flags from `prepare`'s arrays, candidate by candidate (cross-validation joins the arrays of
        many cases and decides them in one call)."""
        return prepared["flags"]

    def flags(self, task_id: str, done: Sequence, candidates: Sequence) -> np.ndarray:
        """Flag of each candidate next step after `done` (agrees with check(...).flag)."""
        return self.decide(self.prepare(task_id, done, candidates))

    def describe(self) -> dict:
        """The settings in use (and what the fitted object reports about itself)."""
        return {"method": self.NAME, **self.settings, **getattr(self.fitted, "settings", {})}

    # ------------------------------------------------------------------ shared
    @classmethod
    def build(cls, sequences, steps, graphs=None, **settings) -> Detector:
        fit = {k: v for k, v in resolve_settings(cls, settings, fit=True).items()}
        decide = {k: v for k, v in settings.items() if not cls.SETTINGS[k].fit}
        return cls(cls.fit(sequences, steps, graphs, **fit), **decide)

    def run(self, task_id: str, path: Sequence) -> list[Verdict]:
        """Online verdicts of every step of a performed sequence, each from the steps before it."""
        return [self.check(task_id, path[:i], step) for i, step in enumerate(path)]


def resolve_settings(cls, given: dict, fit: bool) -> dict:
    """The class's settings of one kind (fit or not) with defaults filled in; unknown names refused."""
    unknown = set(given) - set(cls.SETTINGS)
    if unknown:
        raise ProcvidError(f"mistake detector {cls.NAME!r} has no setting {sorted(unknown)[0]!r} "
                           f"(settings: {', '.join(cls.SETTINGS)})")
    out = {}
    for name, setting in cls.SETTINGS.items():
        if setting.fit == fit:
            value = given.get(name, setting.default)
            if setting.choices and value not in setting.choices:
                raise ProcvidError(f"setting {name} of {cls.NAME!r} is one of {', '.join(map(str, setting.choices))},"
                                   f" not {value!r}")
            if setting.minimum is not None and value < setting.minimum:
                raise ProcvidError(f"setting {name}: {value} is below its minimum {setting.minimum:g}")
            out[name] = value
    return out


def parse_setting(cls, text: str) -> tuple[str, object]:
    """'threshold=0.01' -> ('threshold', 0.01), typed by the setting's default (bool: true/false)."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or name not in cls.SETTINGS:
        raise ProcvidError(f"--set takes NAME=VALUE with NAME one of {', '.join(cls.SETTINGS)} "
                           f"(detector {cls.NAME!r}), not {text!r}")
    default = cls.SETTINGS[name].default
    try:
        if isinstance(default, bool):
            if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            value = raw.lower() in ("true", "1", "yes")
        elif isinstance(default, int):  # a count: 2.5 is a mistake, not 2
            value = int(raw)
        elif isinstance(default, float):
            value = float(raw)
        else:
            value = raw
    except ValueError:
        kind = {bool: "true/false value", int: "whole number", float: "number"}.get(type(default), "text")
        raise ProcvidError(f"setting {name}: {raw!r} is not a {kind}") from None
    resolve_settings(cls, {name: value}, fit=cls.SETTINGS[name].fit)  # choices, minimum
    return name, value


def settings_help(cls) -> str:
    return "; ".join(f"{name} (default {s.default}{', CV: ' + '/'.join(map(str, s.grid)) if s.grid else ''})"
                     f": {s.help}" for name, s in cls.SETTINGS.items())


@dataclass
class TaskIndex:
    """Step ids of one task <-> positions in its matrices."""

    steps: list
    index: dict = field(init=False)

    def __post_init__(self):
        self.index = {s: i for i, s in enumerate(self.steps)}

    def vector(self, done: Sequence) -> np.ndarray:
        v = np.zeros(len(self.steps), dtype=bool)
        v[[self.index[s] for s in done if s in self.index]] = True
        return v


def labels_of(video) -> list[int]:
    """Per-step 0/1 mistake labels of an annotated video (1: the step carries error tags)."""
    return [int(bool(s.errors)) for s in video.segments]
