"""COIN (Tang et al., CVPR 2019) per-video records in COIN.json's "database" format.

The shared copy holds no full COIN.json; it has the PDPP 70/30 split (coin_train_70.json, coin_test_30.json:
lists of {video_id: record}) and SCHEMA's test split (schema/coin_valid.json, 291 videos not in PDPP).
record = {recipe_type, class, subset, duration, annotation: [{id, segment: [start, end], label}], ...}
"""

from __future__ import annotations

import re

from procvid.data.files import dataset_root, read_json
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.registry import DATASETS

# file -> split name; a video listed in several files keeps the first
SPLIT_FILES = (
    ("coin_train_70.json", "train"),
    ("coin_test_30.json", "test"),
    ("schema/coin_valid.json", "schema_test"),
)


@DATASETS.register("coin", "COIN (Tang et al., CVPR 2019): 180 tasks of everyday activities, step segments")
def load_coin(root=None) -> ProcedureDataset:
    """Union of the split files found under root; VideoAnnotation.meta["subset"] is COIN's own split."""
    root = dataset_root(root, "coin")
    records: dict[str, tuple[dict, str]] = {}
    for filename, split in SPLIT_FILES:
        if not (root / filename).exists():
            continue
        for entry in read_json(root / filename):
            for video_id, record in entry.items():
                records.setdefault(video_id, (record, split))
    if not records:
        raise ProcvidError(f"no COIN split file ({', '.join(f for f, _ in SPLIT_FILES)}) in {root}")

    tasks: dict[str, Task] = {}
    videos = []
    for video_id, (record, split) in records.items():
        task_id = record["class"]
        if task_id not in tasks:
            tasks[task_id] = Task(task_id, _words(task_id), {}, meta={"recipe_type": record["recipe_type"]})
        task = tasks[task_id]
        segments = []
        for item in record["annotation"]:
            step_id = int(item["id"])
            task.steps.setdefault(step_id, Step(step_id, item["label"]))
            segments.append(StepSegment(step_id, float(item["segment"][0]), float(item["segment"][1])))
        meta = {"subset": record.get("subset"), "duration": record.get("duration")}
        videos.append(VideoAnnotation(video_id, task_id, segments, split, meta))
    for task in tasks.values():
        task.steps = dict(sorted(task.steps.items()))
    return ProcedureDataset("coin", dict(sorted(tasks.items())), videos, root)


def _words(camel: str) -> str:
    """'MakeFrenchFries' -> 'Make French Fries'."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", camel)
