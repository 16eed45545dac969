"""NIV (Alayrac et al., CVPR 2016): 5 tasks, 148 videos, as distributed with SCHEMA.

csvs/<task>_<nnnn>.csv   rows "STEP NAME,start s,end s" in no particular order
niv_action_idx.json      {task name: {task_id, actions: {step name: global step index}}}
"""

from __future__ import annotations

from procvid.data.files import dataset_root, read_csv_rows, read_json
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.registry import DATASETS


@DATASETS.register("niv", "NIV (Alayrac et al., CVPR 2016): narrated instructional videos of 5 tasks")
def load_niv(root=None) -> ProcedureDataset:
    """Task ids are the csv file prefixes (e.g. "changing_tire"); step ids the global action indices."""
    root = dataset_root(root, "niv")
    index = read_json(root / "niv_action_idx.json")
    step_of_name = {}  # upper-case step name -> (task name, step id): csv rows spell names in capitals
    for task_name, entry in index.items():
        for step_name, step_id in entry["actions"].items():
            step_of_name[step_name.upper()] = (task_name, step_id)

    tasks: dict[str, Task] = {}
    videos = []
    for path in sorted((root / "csvs").glob("*.csv")):
        task_id = path.stem.rsplit("_", 1)[0]
        segments = []
        for row in read_csv_rows(path):
            name = row[0].strip().upper()
            if name not in step_of_name:
                raise ProcvidError(f"{path}: step {row[0]!r} is not in niv_action_idx.json")
            task_name, step_id = step_of_name[name]
            if task_id not in tasks:
                steps = {i: Step(i, s) for s, i in index[task_name]["actions"].items()}
                tasks[task_id] = Task(task_id, task_name, steps, meta={"niv_task_id": index[task_name]["task_id"]})
            elif tasks[task_id].name != task_name:
                raise ProcvidError(f"{path}: step {row[0]!r} is a step of {task_name!r}, "
                                   f"not of {tasks[task_id].name!r}")
            segments.append(StepSegment(step_id, float(row[1]), float(row[2])))
        videos.append(VideoAnnotation(path.stem, task_id, segments))
    if not videos:
        raise ProcvidError(f"no NIV annotation csv in {root / 'csvs'}")
    return ProcedureDataset("niv", dict(sorted(tasks.items())), videos, root)
