"""The in-memory form every annotation reader returns: tasks, their steps, and per-video step segments."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Hashable

from procvid.errors import ProcvidError

StepId = Hashable  # int for most datasets, str where the source only names steps (Ego4D)


@dataclass(frozen=True)
class Step:
    id: StepId
    text: str


@dataclass
class Task:
    id: str
    name: str
    steps: dict[StepId, Step]
    meta: dict = field(default_factory=dict)  # source-specific extras (e.g. the wikiHow linear script)

    def texts(self) -> dict[StepId, str]:
        return {sid: step.text for sid, step in self.steps.items()}


@dataclass(frozen=True)
class StepSegment:
    """One performed step; start/end in seconds, or None where the source gives only the order.

    errors: the source's mistake tags of this performed step, () when it has none (CaptainCook4D
    "Order Error", "Technique Error", ...; Assembly101 "wrong order", "wrong position", ...). They
    travel with the segment, so sorting by time keeps them aligned; procvid.mistakes reads its
    per-step 0/1 labels from them."""

    step_id: StepId
    start: float | None
    end: float | None
    errors: tuple[str, ...] = ()


@dataclass
class VideoAnnotation:
    """Steps of one video, in temporal order (sorted by start when the source has times)."""

    video_id: str
    task_id: str
    segments: list[StepSegment]
    split: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.segments and all(s.start is not None for s in self.segments):
            # stable sort: segments starting together keep the source's order
            self.segments = sorted(self.segments, key=lambda s: (s.start, s.end))

    @property
    def path(self) -> list[StepId]:
        """Step ids in the order they were performed (repeats kept)."""
        return [s.step_id for s in self.segments]

    @property
    def duration(self) -> float:
        ends = [s.end for s in self.segments if s.end is not None]
        return max(ends) if ends else math.nan


@dataclass
class ProcedureDataset:
    name: str
    tasks: dict[str, Task]
    videos: list[VideoAnnotation]
    root: Path | None = None
    graphs: dict = field(default_factory=dict)  # task id -> reference nx.DiGraph, where the source has one

    def videos_of(self, task_id: str) -> list[VideoAnnotation]:
        return [v for v in self.videos if v.task_id == task_id]

    def sequences(self, task_id: str) -> list[list[StepId]]:
        """Step paths of the task's videos (videos without segments left out)."""
        return [v.path for v in self.videos_of(task_id) if v.segments]

    @property
    def splits(self) -> list[str]:
        return sorted({v.split for v in self.videos if v.split is not None})

    def split(self, name: str) -> ProcedureDataset:
        """The same tasks with only the videos of split `name`."""
        if name not in self.splits:
            raise ProcvidError(f"{self.name} has no split {name!r} (splits: {', '.join(self.splits) or 'none'})")
        return replace(self, videos=[v for v in self.videos if v.split == name])

    def subset(self, task_ids: list[str]) -> ProcedureDataset:
        """Only the given tasks and their videos."""
        unknown = [t for t in task_ids if t not in self.tasks]
        if unknown:
            raise ProcvidError(f"{self.name} has no task {unknown[0]!r} (tasks: {', '.join(sorted(self.tasks))})")
        keep = set(task_ids)
        return replace(
            self,
            tasks={t: task for t, task in self.tasks.items() if t in keep},
            videos=[v for v in self.videos if v.task_id in keep],
            graphs={t: g for t, g in self.graphs.items() if t in keep},
        )

    def summary(self) -> str:
        n_segments = sum(len(v.segments) for v in self.videos)
        return f"{self.name}: {len(self.tasks)} tasks, {len(self.videos)} videos, {n_segments} step segments"


def check_span(source, step, start: float, end: float) -> None:
    """One line naming the file when an annotated step has a negative, reversed or non-finite time."""
    if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end < start:
        raise ProcvidError(f"{source}: step {step} has times {start:g}-{end:g} s (need 0 <= start <= end)")
