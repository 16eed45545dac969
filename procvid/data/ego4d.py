"""Ego4D Goal-Step (Song et al., NeurIPS 2023), validation annotations (the test file has no labels).

goalstep_valid.json  {videos: [{video_uid, goal_category, goal_description, segments: [step: {start_time,
    end_time, step_category, step_description, is_relevant, segments: [substeps]}]}]}
One video is one goal; its step level gives the segments, its goal category the task. Step ids are the
step_category strings ("Make baked goods: Knead the dough ..."), shared across goals.
"""

from __future__ import annotations

from procvid.data.files import dataset_root, read_json
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.registry import DATASETS


@DATASETS.register("ego4d", "Ego4D Goal-Step (Song et al., NeurIPS 2023): validation goals and their steps")
def load_ego4d(root=None, filename: str = "goalstep_valid.json") -> ProcedureDataset:
    root = dataset_root(root, "ego4d_goalstep")
    data = read_json(root / filename)
    tasks: dict[str, Task] = {}
    videos = []
    for video in data["videos"]:
        task_id = video["goal_category"]
        task = tasks.setdefault(task_id, Task(task_id, _goal_name(task_id), {}))
        segments = []
        for step in video["segments"]:
            sid = step["step_category"]
            task.steps.setdefault(sid, Step(sid, sid))
            segments.append(StepSegment(sid, float(step["start_time"]), float(step["end_time"])))
        meta = {
            "goal_description": video["goal_description"],
            "step_descriptions": [s["step_description"] for s in video["segments"]],
            "num_substeps": sum(len(s.get("segments", [])) for s in video["segments"]),
        }
        videos.append(VideoAnnotation(video["video_uid"], task_id, segments, data.get("split"), meta))
    for task in tasks.values():
        task.steps = dict(sorted(task.steps.items()))
    return ProcedureDataset("ego4d", dict(sorted(tasks.items())), videos, root)


def _goal_name(category: str) -> str:
    """'COOKING:MAKE_BREAD' -> 'Make bread'."""
    return category.split(":")[-1].replace("_", " ").capitalize()
