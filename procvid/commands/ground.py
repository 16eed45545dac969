"""`procvid ground`: segments or frame features of videos of a known task -> ordered step paths,
one `<stem>.steps.json` per input (format in procvid.ground_files)."""

from __future__ import annotations

import argparse
from pathlib import Path

from procvid.registry import COMMANDS

HELP = "name the steps a video shows, in order, from its segments or frame features"
EXAMPLES = [
    "procvid ground seg/ --steps datasets/synth/heldout_seed1 --out steps/",
    "procvid ground features/salad_0000.json --steps tasks.json --task salad --order any --out steps/",
    "procvid ground seg/ --steps crosstask --task 23521 --order graph --graph graphs/23521.json --out steps/",
    "procvid ground seg/ --steps data/synth_mistakes --order any --repeat-margin 1 --out steps/",
]
COMMANDS.register("ground", HELP, __name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from procvid.commands import options
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
    p.add_argument("--encoder", default=None,
                   help="text encoder (default: the encoder that made the features, recorded in their sidecar; it "
                        "must have a text tower, e.g. video, default or an open_clip NAME:PRETRAINED)")
    p.add_argument("--drop-percentile", type=float, default=DROP_PERCENTILE, metavar="P",
                   help=f"similarity percentile below which units are background (default {DROP_PERCENTILE:g})")
    p.add_argument("--step-cost", type=float, default=STEP_COST, metavar="S",
                   help=f"penalty per performed step, seconds of evidence (default {STEP_COST:g})")
    p.add_argument("--repeat-margin", type=float, default=None, metavar="Z",
                   help="also report repeated steps: a segment matching a step performed elsewhere better than its "
                        "own label by Z (mean standardised similarity) is that step again (default: each step once)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder for <stem>.steps.json")
    options.add_device(p)
    options.add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from procvid.batch import FAILURES_FILE
    from procvid.errors import ProcvidError
    from procvid.ground_files import GroundInput, collect_ground_inputs, ground_batch, load_tasks, task_of

    tasks, graphs = load_tasks(args.steps)
    if args.graph:
        from procvid.graph.export import read_json

        if not args.task and len(tasks) > 1:
            raise ProcvidError("--graph holds one task's graph: name the task with --task")
        graphs = {args.task or next(iter(tasks)): read_json(args.graph)}
    inputs = [GroundInput(stem, source, task_of(stem, args.task, tasks))
              for stem, source in collect_ground_inputs(args.inputs).items()]
    docs, summary = ground_batch(inputs, args.out, tasks, graphs, args.encoder, args.order, args.drop_percentile,
                                 args.step_cost, args.device, progress=not args.no_progress,
                                 repeat_margin=args.repeat_margin)
    for stem, doc in docs.items():
        print(f"{stem}: task {doc['task']}, {doc['order']} order, {len(doc['path'])} steps: "
              f"{' '.join(map(str, doc['path'])) or '(none)'}")
    print(f"{len(docs)} step paths in {args.out}" + (f"; {summary.failed} failed, reasons in "
                                                      f"{Path(args.out) / FAILURES_FILE}" if summary.failed else ""))
    return 1 if summary.failed else 0
