"""Grounding on files: tasks' steps from files or datasets, and `<stem>.steps.json` step paths of
segment or feature files (shared by `procvid ground` and `procvid run`).

`<stem>.steps.json`:
{"format": "procvid-steps", "version": 1, "source": input file, "features": feature sidecar, "task": id,
 "encoder": text encoder id, "order": linear|graph|any, "params": {...}, "path": [step ids in order],
 "steps": [{"step", "text", "start", "end" (seconds), "start_frame", "end_frame" (exclusive), "similarity"}]}
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.ground import DROP_PERCENTILE, STEP_COST, ground_video
from procvid.segment.run import SEGMENTS_SUFFIX

log = logging.getLogger(__name__)

FORMAT = "procvid-steps"
STEPS_SUFFIX = ".steps.json"


def load_tasks(spec: str) -> tuple[dict, dict]:
    """(tasks by id, graph scripts by task id) from a tasks.json, a CrossTask tasks file or a dataset."""
    from procvid.data import load_dataset
    from procvid.data.crosstask import read_tasks_file
    from procvid.data.files import read_json
    from procvid.data.procedures import Step, Task

    path = Path(spec)
    if path.is_file() and path.suffix == ".json":
        try:
            tasks = {str(t["id"]): Task(str(t["id"]), t.get("name", str(t["id"])),
                                        {s["id"]: Step(s["id"], s["text"]) for s in t["steps"]})
                     for t in read_json(path)}
        except (KeyError, TypeError) as e:
            raise ProcvidError(f"{path}: expected a tasks.json list of {{id, name, steps: [{{id, text}}]}} ({e})")
        return tasks, {}
    if path.is_file():
        return read_tasks_file(path), {}
    dataset = load_dataset(spec)
    return dataset.tasks, dataset.graphs


def task_of(stem: str, task: str | None, tasks: dict) -> str:
    """The task of an input: `task` when given, the only task, or the `<task>_` prefix of its name."""
    if task:
        if task not in tasks:
            raise ProcvidError(f"unknown task {task!r} (tasks: {', '.join(sorted(tasks)[:20])})")
        return task
    if len(tasks) == 1:
        return next(iter(tasks))
    prefix = stem.split("_", 1)[0]
    if prefix in tasks:
        return prefix
    raise ProcvidError(f"{stem}: cannot tell its task from the name; pass --task")


def read_units(source: Path) -> tuple[Path, list[tuple[int, int]] | None]:
    """(feature sidecar, segment frame ranges or None for every frame) of one input."""
    if not source.name.endswith(SEGMENTS_SUFFIX):
        return source, None
    from procvid.segment.run import read_segments_file

    header, segments = read_segments_file(source)
    return Path(header["features"]), [(s.start_frame, s.end_frame) for s in segments]


def choose_order(order: str, task_id: str, graphs: dict) -> str:
    """`auto`: graph order where the task's graph script is known, else the task's linear order."""
    if order == "auto":
        return "graph" if task_id in graphs else "linear"
    if order == "graph" and task_id not in graphs:
        raise ProcvidError(f"no graph script for task {task_id}: pass a graph or choose another order")
    return order


def ground_file(source: Path, task, text_embeddings, encoder_id: str, order: str = "linear", graph=None,
                drop_percentile: float = DROP_PERCENTILE, step_cost: float = STEP_COST) -> dict:
    """Ground one segments or feature file against its task's step texts; the steps.json document."""
    from procvid.features import load_features

    features, units = read_units(source)
    return ground_loaded(source, features, units, load_features(features), task, text_embeddings, encoder_id,
                         order, graph, drop_percentile, step_cost)


def ground_loaded(source: Path, features: Path, units, loaded: tuple, task, text_embeddings, encoder_id: str,
                  order: str = "linear", graph=None, drop_percentile: float = DROP_PERCENTILE,
                  step_cost: float = STEP_COST) -> dict:
    """`ground_file` on inputs the caller has read already: `units` as from read_units, `loaded` =
    load_features(features)."""
    X, t, meta = loaded
    if meta.get("encoder") and meta["encoder"] != encoder_id:
        log.warning("%s: features come from %s, step texts from %s: the similarities mean little",
                    source.name, meta["encoder"], encoder_id)
    result = ground_video(X, t, text_embeddings, list(task.steps), units, order, graph, drop_percentile, step_cost)
    period = float(t[1] - t[0]) if len(t) > 1 else 1.0
    return {"format": FORMAT, "version": 1, "source": str(source), "features": str(features),
            "task": task.id, "encoder": encoder_id, "order": order,
            "params": {"drop_percentile": drop_percentile, "step_cost": step_cost},
            "path": result.path,
            "steps": [{"step": step, "text": task.steps[step].text, "start": round(float(t[a]), 3),
                       "end": round(float(t[b - 1]) + period, 3), "start_frame": a, "end_frame": b,
                       "similarity": round(sim, 4)} for step, a, b, sim in result.spans]}


def write_steps(path: Path, doc: dict) -> Path:
    """Write a steps.json atomically (a rerun never finds half a file)."""
    from procvid.features import atomic_write

    atomic_write(path, json.dumps(doc, indent=1) + "\n")
    return path


def read_steps(path: Path) -> dict | None:
    """A steps.json document, or None when it is missing or unreadable."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None
