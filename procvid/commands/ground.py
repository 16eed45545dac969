"""`procvid ground`: segments or frame features of videos of a known task -> ordered step paths.

Writes `<stem>.steps.json` per input:
{"format": "procvid-steps", "version": 1, "source": input file, "features": feature sidecar, "task": id,
 "encoder": text encoder id, "order": linear|graph|any, "params": {...}, "path": [step ids in order],
 "steps": [{"step", "text", "start", "end" (seconds), "start_frame", "end_frame" (exclusive), "similarity"}]}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "name the steps a video shows, in order, from its segments or frame features"
EXAMPLES = [
    "procvid ground seg/ --steps datasets/synth/heldout_seed1 --out steps/",
    "procvid ground features/salad_0000.json --steps tasks.json --task salad --order any --out steps/",
    "procvid ground seg/ --steps crosstask --task 23521 --order graph --graph graphs/23521.json --out steps/",
]
SEGMENTS_SUFFIX = ".segments.json"
STEPS_SUFFIX = ".steps.json"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from procvid.ground import DROP_PERCENTILE, ORDERS, STEP_COST

    p.add_argument("inputs", nargs="+", help="<stem>.segments.json files (procvid segment), feature files "
                                             "(.json / .safetensors from procvid embed), or folders of either")
    p.add_argument("--steps", required=True, metavar="FILE|NAME|DIR",
                   help="the tasks' steps: a tasks.json (synthetic world), a CrossTask tasks file, "
                        "or a dataset name or folder")
    p.add_argument("--task", metavar="ID", help="task of every input (default: the only task, or the "
                                                 "<task>_ prefix of each input's name)")
    p.add_argument("--order", default="auto", choices=["auto", *ORDERS],
                   help="step orders allowed: the task's step order (linear), orders consistent with a graph "
                        "script (graph), or any (default auto: graph where a graph is known, else linear)")
    p.add_argument("--graph", metavar="FILE", help="graph script for --order graph (node-link JSON from "
                                                    "procvid graph build; default: the dataset's own graphs)")
    p.add_argument("--encoder", default="default", help="text encoder; must match the features' (default default)")
    p.add_argument("--drop-percentile", type=float, default=DROP_PERCENTILE, metavar="P",
                   help=f"similarity percentile below which units are background (default {DROP_PERCENTILE:g})")
    p.add_argument("--step-cost", type=float, default=STEP_COST, metavar="S",
                   help=f"penalty per performed step, seconds of evidence (default {STEP_COST:g})")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for <stem>.steps.json")


def run(args: argparse.Namespace) -> int:
    import logging

    from procvid.encoders import load_encoder
    from procvid.errors import ProcvidError
    from procvid.features import load_features
    from procvid.ground import ground_video

    log = logging.getLogger("procvid.ground")
    tasks, graphs = load_tasks(args.steps)
    if args.graph:
        from procvid.graph.export import read_json

        if not args.task and len(tasks) > 1:
            raise ProcvidError("--graph holds one task's graph: name the task with --task")
        graphs = {args.task or next(iter(tasks)): read_json(args.graph)}
    inputs = collect_inputs(args.inputs)
    encoder = load_encoder(args.encoder)
    texts: dict = {}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, source in inputs.items():
        task = tasks[task_of(stem, args.task, tasks)]
        order = args.order if args.order != "auto" else ("graph" if task.id in graphs else "linear")
        if order == "graph" and task.id not in graphs:
            raise ProcvidError(f"no graph script for task {task.id}: pass --graph or choose another --order")
        features, units = read_units(source)
        X, t, meta = load_features(features)
        if meta.get("encoder") and meta["encoder"] != encoder.id:
            log.warning("%s: features come from %s, step texts from %s: the similarities mean little",
                        stem, meta["encoder"], encoder.id)
        if task.id not in texts:
            texts[task.id] = encoder.encode_texts(list(task.texts().values()))
        result = ground_video(X, t, texts[task.id], list(task.steps), units, order, graphs.get(task.id),
                              args.drop_percentile, args.step_cost)
        period = float(t[1] - t[0]) if len(t) > 1 else 1.0
        doc = {"format": "procvid-steps", "version": 1, "source": str(source), "features": str(features),
               "task": task.id, "encoder": encoder.id, "order": order,
               "params": {"drop_percentile": args.drop_percentile, "step_cost": args.step_cost},
               "path": result.path,
               "steps": [{"step": step, "text": task.steps[step].text, "start": round(float(t[a]), 3),
                          "end": round(float(t[b - 1]) + period, 3), "start_frame": a, "end_frame": b,
                          "similarity": round(sim, 4)} for step, a, b, sim in result.spans]}
        (out / f"{stem}{STEPS_SUFFIX}").write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"{stem}: task {task.id}, {order} order, {len(result.path)} steps: "
              f"{' '.join(map(str, result.path)) or '(none)'}")
    print(f"{len(inputs)} step paths written to {out}")
    return 0


def load_tasks(spec: str) -> tuple[dict, dict]:
    """(tasks by id, graph scripts by task id) from a tasks.json, a CrossTask tasks file or a dataset."""
    from procvid.data import load_dataset
    from procvid.data.crosstask import read_tasks_file
    from procvid.data.files import read_json
    from procvid.data.procedures import Step, Task
    from procvid.errors import ProcvidError

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


def collect_inputs(inputs: list[str]) -> dict[str, Path]:
    """Output stem -> segments file or feature sidecar; a folder gives its segments files, else its features."""
    from procvid.errors import ProcvidError

    found: dict[str, Path] = {}
    for arg in inputs:
        p = Path(arg)
        if p.is_dir():
            files = sorted(p.rglob(f"*{SEGMENTS_SUFFIX}")) or sorted(
                f for f in p.rglob("*.json") if f.with_suffix(".safetensors").exists())
        elif p.is_file() and p.suffix in (".json", ".safetensors"):
            files = [p.with_suffix(".json") if p.suffix == ".safetensors" else p]
        else:
            raise ProcvidError(f"{p}: not a segments file, feature file or folder")
        for f in files:
            stem = f.name[: -len(SEGMENTS_SUFFIX)] if f.name.endswith(SEGMENTS_SUFFIX) else f.stem
            if found.get(stem, f) != f:
                raise ProcvidError(f"two inputs are named {stem}: {found[stem]} and {f}")
            found[stem] = f
    if not found:
        raise ProcvidError(f"no segments or feature files in {' '.join(inputs)}")
    return found


def read_units(source: Path) -> tuple[Path, list[tuple[int, int]] | None]:
    """(feature sidecar, segment frame ranges or None for every frame) of one input."""
    if not source.name.endswith(SEGMENTS_SUFFIX):
        return source, None
    from procvid.segment.run import read_segments_file

    header, segments = read_segments_file(source)
    return Path(header["features"]), [(s.start_frame, s.end_frame) for s in segments]


def task_of(stem: str, task: str | None, tasks: dict) -> str:
    from procvid.errors import ProcvidError

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
