"""`procvid ground`: segments or frame features of videos of a known task -> ordered step paths,
one `<stem>.steps.json` per input (format in procvid.ground_files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from procvid.ground_files import SEGMENTS_SUFFIX, STEPS_SUFFIX

HELP = "name the steps a video shows, in order, from its segments or frame features"
EXAMPLES = [
    "procvid ground seg/ --steps datasets/synth/heldout_seed1 --out steps/",
    "procvid ground features/salad_0000.json --steps tasks.json --task salad --order any --out steps/",
    "procvid ground seg/ --steps crosstask --task 23521 --order graph --graph graphs/23521.json --out steps/",
]


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
    p.add_argument("--encoder", default="video",
                   help="text encoder; must match the features' (default video, procvid segment's default)")
    p.add_argument("--drop-percentile", type=float, default=DROP_PERCENTILE, metavar="P",
                   help=f"similarity percentile below which units are background (default {DROP_PERCENTILE:g})")
    p.add_argument("--step-cost", type=float, default=STEP_COST, metavar="S",
                   help=f"penalty per performed step, seconds of evidence (default {STEP_COST:g})")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for <stem>.steps.json")


def run(args: argparse.Namespace) -> int:
    from procvid.encoders import load_encoder
    from procvid.errors import ProcvidError
    from procvid.ground_files import choose_order, ground_file, load_tasks, task_of, write_steps

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
    for stem, source in inputs.items():
        task = tasks[task_of(stem, args.task, tasks)]
        order = choose_order(args.order, task.id, graphs)
        if task.id not in texts:
            texts[task.id] = encoder.encode_texts(list(task.texts().values()))
        doc = ground_file(source, task, texts[task.id], encoder.id, order, graphs.get(task.id),
                          args.drop_percentile, args.step_cost)
        write_steps(out / f"{stem}{STEPS_SUFFIX}", doc)
        print(f"{stem}: task {task.id}, {order} order, {len(doc['path'])} steps: "
              f"{' '.join(map(str, doc['path'])) or '(none)'}")
    print(f"{len(inputs)} step paths written to {out}")
    return 0


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
