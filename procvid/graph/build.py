"""The graph stage: one graph script per task from its videos' step sequences, written as node-link
JSON, GraphML, DOT and PNG (`procvid graph build` and `procvid run`). A task whose sequences and
settings did not change keeps its files: the graph is read back, not induced and drawn again."""

from __future__ import annotations

import re
from pathlib import Path

from procvid.graph.export import FORMATS, read_json, write_all
from procvid.graph.induce import DEFAULT_METHOD, induce_graph
from procvid.outputs import Manifest, prepare_output_dir, stamp


def file_stem(task_id: str) -> str:
    """A file-name-safe form of a task id (Ego4D ids hold ':'; ids from user files may hold '/')."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", str(task_id)).lstrip(".")
    return stem or "task"


def method_options(method: str, tolerance: float = 0.0, seed: int = 42) -> dict:
    """The options an induction method takes from the shared settings."""
    return {"precedence": {"tolerance": tolerance}, "tgml": {"seed": seed}}.get(method, {})


def build_graphs(sequences: dict[str, list[list]], tasks: dict, out_dir: str | Path, method: str = DEFAULT_METHOD,
                 options: dict | None = None, formats=FORMATS) -> dict[str, dict]:
    """Graph scripts of the tasks in `sequences` (task id -> step sequences, one per video; tasks
    without sequences are left out). Returns task id -> {"graph", "files", "videos"}."""
    out_dir = prepare_output_dir(out_dir)
    options = options or {}
    manifest = Manifest(out_dir)
    result = {}
    for task_id, seqs in sequences.items():
        seqs = [list(s) for s in seqs if s]
        if not seqs:
            continue
        task = tasks[task_id]
        stem = file_stem(task_id)
        files = [out_dir / f"{stem}.{fmt}" for fmt in formats]
        key = stamp("graph", [task_id, task.name, task.texts(), seqs], {"method": method, "options": options,
                                                                         "formats": list(formats)})
        if "json" in formats and manifest.is_current(files[0], key, *files[1:]):
            graph = read_json(files[0])
        else:
            graph = induce_graph(seqs, task.texts(), method=method, **options)
            graph.graph.update(task_id=task_id, name=task.name)
            files = write_all(graph, out_dir, stem, f"{task.name} ({method})", formats)
            manifest.record(files[0], key)
        result[task_id] = {"graph": graph, "files": files, "videos": len(seqs)}
    return result
