"""Labelled frames of a synthetic world: the data behind the CLIP model and its metrics."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LabelledFrames:
    frames: np.ndarray  # uint8 [N, H, W, 3]
    step: np.ndarray  # [N] step id (1-based) within the frame's task; 0: idle gap (keep_idle)
    task: np.ndarray  # [N] task index into `tasks`
    video: np.ndarray  # [N] video index into `videos`
    tasks: list[dict]  # tasks.json entries
    videos: list[str]

    def subset(self, keep: np.ndarray) -> "LabelledFrames":
        return LabelledFrames(self.frames[keep], self.step[keep], self.task[keep], self.video[keep], self.tasks,
                              self.videos)

    def text_index(self) -> tuple[list[str], np.ndarray]:
        """All step texts (task order) and, per frame, the index of its step's text."""
        texts, offsets = step_text_table(self.tasks)
        return texts, np.asarray(offsets)[self.task] + self.step - 1

    def task_text_ranges(self) -> list[range]:
        texts, offsets = step_text_table(self.tasks)
        return [range(a, b) for a, b in zip(offsets, [*offsets[1:], len(texts)])]


def step_text_table(tasks: list[dict]) -> tuple[list[str], list[int]]:
    """The step texts of `tasks` (tasks.json entries) in one list, and where each task's begin."""
    texts, offsets = [], []
    for t in tasks:
        offsets.append(len(texts))
        texts.extend(s["text"] for s in t["steps"])
    return texts, offsets


def load_world_frames(world: str | Path, fps: float = 2.0, size: int = 64, videos: list[str] | None = None,
                      progress: bool = True, keep_idle: bool = False) -> LabelledFrames:
    """Decode frames at `fps` from a synthetic world; keep those inside a step (step 0, the idle
    gaps, too if `keep_idle`: then every frame is kept, in order)."""
    from tqdm import tqdm

    from procvid.video import Sampling, read_frames

    from procvid.generate.keyframes import world_videos

    world = Path(world)
    tasks, rows = world_videos(world, videos)
    task_index = {t["id"]: i for i, t in enumerate(tasks)}
    out = {k: [] for k in ("frames", "step", "task", "video")}
    for vi, row in enumerate(tqdm(rows, desc="decoding frames", unit="video", disable=not progress)):
        labels = np.load(world / "labels" / f"{row['video_id']}.npy")
        frames, times = read_frames(world / row["path"], Sampling(fps=fps), size=size)
        step = labels[np.clip(np.round(times * float(row["fps"])).astype(int), 0, len(labels) - 1)]
        keep = step >= 0 if keep_idle else step > 0
        out["frames"].append(frames[keep])
        out["step"].append(step[keep].astype(np.int64))
        out["task"].append(np.full(keep.sum(), task_index[row["task_id"]]))
        out["video"].append(np.full(keep.sum(), vi))
    return LabelledFrames(
        **{k: np.concatenate(v) for k, v in out.items()},
        tasks=tasks,
        videos=[r["video_id"] for r in rows],
    )
