"""Graph-script induction data of Zhou et al. (ACL 2023): 2,610 CrossTask videos as wikiHow step paths.

Three parallel JSON lists, one item per video (no video ids, no times):
crosstask_wikihow_input_sequences.json          the task's linear wikiHow script, steps joined by " <-> "
crosstask_wikihow_output_sequences.json         the video's observed step path, same separator
crosstask_wikihow_reference_step_libraries.json the task's step library (list of "step <-> " strings)
A task is identified by its script. Step ids are 1-based positions in that script, like CrossTask's, and
the 17 scripts follow CrossTask's tasks_primary.txt order (one task, "Jack Up a Car", is absent), so ids
and names are taken from it by matching step counts in order when that file is available.
"""

from __future__ import annotations

from procvid.data.crosstask import DEFAULT_SUBDIR as CROSSTASK_SUBDIR
from procvid.data.crosstask import read_tasks_file
from procvid.data.files import dataset_root, read_json
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.paths import shared_data_dir
from procvid.registry import DATASETS

SEP = "<->"
FILES = ("crosstask_wikihow_input_sequences.json", "crosstask_wikihow_output_sequences.json",
         "crosstask_wikihow_reference_step_libraries.json")


def _split_steps(text: str) -> list[str]:
    return [s.strip() for s in text.split(SEP) if s.strip()]


@DATASETS.register("graph_script", "GraphScript's CrossTask step sequences (Zhou et al., ACL 2023)")
def load_graph_script(root=None, crosstask_tasks=None) -> ProcedureDataset:
    """Videos grouped by script; crosstask_tasks: a tasks_primary.txt to name the tasks (default: shared copy)."""
    root = dataset_root(root, "graph_script_crosstask")
    scripts, paths, libraries = (read_json(root / name) for name in FILES)
    if not len(scripts) == len(paths) == len(libraries):
        raise ProcvidError(f"{root}: the three graph-script files have different lengths")

    order = list(dict.fromkeys(scripts))  # scripts in order of first appearance
    names = _crosstask_names([len(_split_steps(s)) for s in order], crosstask_tasks)
    tasks: dict[str, Task] = {}
    id_of_script = {}
    for i, script in enumerate(order):
        task_id, name = names[i] if names else (f"gs{i:02d}", _split_steps(script)[0])
        texts = _split_steps(script)
        steps = {k: Step(k, text) for k, text in enumerate(texts, start=1)}
        tasks[task_id] = Task(task_id, name, steps, meta={"script": list(steps)})
        id_of_script[script] = task_id

    videos = []
    counts: dict[str, int] = {}
    for script, path, library in zip(scripts, paths, libraries):
        task = tasks[id_of_script[script]]
        step_of_text = {step.text: sid for sid, step in task.steps.items()}
        if {s.replace(SEP, "").strip() for s in library} != set(step_of_text):
            raise ProcvidError(f"{root}: a step library differs from its task's script")
        try:
            segments = [StepSegment(step_of_text[text], None, None) for text in _split_steps(path)]
        except KeyError as e:
            raise ProcvidError(f"{root}: observed step {e.args[0]!r} is not in its task's script") from None
        n = counts[task.id] = counts.get(task.id, 0) + 1
        videos.append(VideoAnnotation(f"{task.id}_{n - 1:04d}", task.id, segments))
    return ProcedureDataset("graph_script", tasks, videos, root)


def _crosstask_names(step_counts: list[int], tasks_file) -> list[tuple[str, str]] | None:
    """(task id, name) per script by walking CrossTask's tasks in order; None if they do not line up."""
    path = tasks_file if tasks_file is not None else shared_data_dir() / CROSSTASK_SUBDIR / "tasks_primary.txt"
    try:
        crosstask = list(read_tasks_file(path).values())
    except ProcvidError:
        return None
    names, i = [], 0
    for count in step_counts:
        while i < len(crosstask) and len(crosstask[i].steps) != count:
            i += 1  # a CrossTask task with no graph-script videos
        if i == len(crosstask):
            return None
        names.append((crosstask[i].id, crosstask[i].name))
        i += 1
    return names
