"""CrossTask (Zhukov et al., CVPR 2019) release format; the synthetic world writes the same files.

root/tasks_primary.txt   blocks of task id, name, URL, number of steps, comma-separated steps (blank line between)
root/annotations/<task>_<video>.csv   rows "step (1-based), start s, end s" (task ids have no underscore)
root/videos_val.csv      "<task>,<video>,<url>" rows of the validation split; other annotated videos are "train"
"""

from __future__ import annotations

from pathlib import Path

from procvid.data.files import dataset_root, read_csv_rows, require
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation, check_span
from procvid.errors import ProcvidError
from procvid.registry import DATASETS

DEFAULT_SUBDIR = "crosstask/crosstask_release"


def read_tasks_file(path: Path) -> dict[str, Task]:
    """Tasks of a tasks_primary.txt-style file; step ids are 1-based positions in the listed order."""
    blocks = require(path).read_text(encoding="utf-8").strip().split("\n\n")
    tasks = {}
    for block in blocks:
        lines = [line.strip() for line in block.strip().splitlines()]
        if len(lines) < 5 or not lines[3].isdigit():
            raise ProcvidError(f"{path}: malformed task block starting {lines[0]!r}")
        task_id, name, url, count, step_line = lines[:5]
        texts = [s.strip() for s in step_line.split(",")]
        if len(texts) != int(count):
            raise ProcvidError(f"{path}: task {task_id} announces {count} steps but lists {len(texts)}")
        steps = {i: Step(i, text) for i, text in enumerate(texts, start=1)}
        tasks[task_id] = Task(task_id, name, steps, meta={"url": url})
    return tasks


def _rows(path: Path) -> list[tuple[str, float, float]]:
    """(step, start, end) rows of one annotation CSV."""
    rows = []
    for row in read_csv_rows(path):
        try:
            step, start, end = row[0].strip(), float(row[1]), float(row[2])
        except (ValueError, IndexError):
            raise ProcvidError(f"{path}: expected rows 'step,start,end', got {row!r}") from None
        check_span(path, step, start, end)
        rows.append((step, start, end))
    return rows


def read_segments(path: Path, task: Task) -> list[StepSegment]:
    segments = []
    for step, start, end in _rows(path):
        if not step.isdigit() or int(step) not in task.steps:
            raise ProcvidError(f"{path}: step {step} is not a step of task {task.id}")
        segments.append(StepSegment(int(step), start, end))
    return segments


def read_ground_truth(path) -> dict[str, list[tuple[float, float, str]]]:
    """Per video id, its (start, end, step) segments from CrossTask-format CSVs without their tasks:
    a ``<task>_<video>.csv`` file, a folder of them, or a dataset folder with an ``annotations/``
    sub-folder (a CrossTask release or a synthetic world)."""
    path = Path(path)
    if not path.exists():
        raise ProcvidError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "annotations").is_dir():
        path = path / "annotations"
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise ProcvidError(f"{path}: no <task>_<video>.csv annotation files")
    gt = {}
    for f in files:
        _, sep, video_id = f.stem.partition("_")
        if not sep:
            raise ProcvidError(f"{f}: annotation files are named <task>_<video>.csv")
        gt[video_id] = [(start, end, step) for step, start, end in _rows(f)]
    return gt


@DATASETS.register("crosstask", "CrossTask (Zhukov et al., CVPR 2019): 18 primary tasks with step segments")
def load_crosstask(root=None, tasks_file: str = "tasks_primary.txt") -> ProcedureDataset:
    """Annotated videos of the tasks in `tasks_file`, with split "val" (videos_val.csv) or "train"."""
    root = dataset_root(root, DEFAULT_SUBDIR)
    tasks = read_tasks_file(root / tasks_file)
    val_file = root / "videos_val.csv"
    val = {(row[0], row[1]) for row in read_csv_rows(val_file)} if val_file.exists() else None
    videos = []
    for path in sorted(require(root / "annotations").glob("*.csv")):
        task_id, _, video_id = path.stem.partition("_")
        if task_id not in tasks:
            continue  # annotations of tasks outside tasks_file
        split = None if val is None else ("val" if (task_id, video_id) in val else "train")
        videos.append(VideoAnnotation(video_id, task_id, read_segments(path, tasks[task_id]), split))
    return ProcedureDataset("crosstask", tasks, videos, root)
