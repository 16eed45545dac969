"""`procvid discover`: segments of many unlabeled videos -> per task the key steps they share, with
member segments, prototypes, key frames, and a label-free graph script (format in procvid.discover.stage)."""

from __future__ import annotations

import argparse
from pathlib import Path

from procvid.registry import COMMANDS

HELP = "discover the key steps a task's unlabeled videos share, and their graph script"
EXAMPLES = [
    "procvid discover segments/ --out discovered/",
    "procvid discover segments/ --out discovered/ --num-steps 7 --method agglomerative",
    "procvid discover segments/ --task-of tasks.csv --steps tasks.json --out discovered/",
    "procvid discover segments/ --out discovered/ --method steps  # learned temporal module (procvid train discover)",
]
COMMANDS.register("discover", HELP, __name__)


def num_steps(text: str):
    from procvid.errors import ProcvidError

    if text == "auto":
        return None
    try:
        k = int(text)
    except ValueError:
        raise ProcvidError(f"--num-steps takes a positive number or auto, got {text!r}") from None
    if k < 1:
        raise ProcvidError(f"--num-steps takes a positive number or auto, got {k}")
    return k


def add_arguments(p: argparse.ArgumentParser) -> None:
    from procvid.commands import options
    from procvid.discover.stage import DEFAULT_METHOD
    from procvid.registry import DISCOVERERS

    p.add_argument("inputs", nargs="+", help="<stem>.segments.json files (procvid segment) or folders of them")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--task-of", metavar="FILE", help="CSV (columns stem, task) or JSON {stem: task} giving each "
                                                      "video's task (default: the <task>_ prefix of its name)")
    p.add_argument("--num-steps", type=num_steps, default=None, metavar="K|auto",
                   help="steps per task (default auto: chosen per task, the choice explained in the output)")
    p.add_argument("--method", type=DISCOVERERS.check, default=DEFAULT_METHOD,
                   help=f"discovery method (default {DEFAULT_METHOD}; procvid list discovery-methods)")
    p.add_argument("--model", metavar="DIR", help="model folder of --method steps (procvid train discover; "
                                                 "default: the shipped checkpoints/procvid-discover)")
    p.add_argument("--steps", metavar="FILE|NAME|DIR", help="optional: the tasks' step texts, to name the "
                                                           "discovered steps (a tasks.json, CrossTask file or dataset)")
    p.add_argument("--encoder", default=None, help="text encoder for --steps (default: the features' encoder)")
    p.add_argument("--keyframes", type=int, default=3, metavar="N", help="key frames per step (0: none; default 3)")
    options.add_no_progress(p)


def run(args: argparse.Namespace) -> int:
    from procvid.batch import FAILURES_FILE
    from procvid.discover.stage import collect_discover_inputs, discover_batch, read_task_of

    task_of = read_task_of(args.task_of) if args.task_of else None
    inputs = collect_discover_inputs(args.inputs, task_of)
    tasks, encoder = None, args.encoder
    if args.steps:
        from procvid.features import read_sidecar
        from procvid.ground_files import load_tasks
        from procvid.segment.files import read_segments_doc

        tasks, _ = load_tasks(args.steps)
        if encoder is None:
            features = read_segments_doc(inputs[0].segments)["features"]
            encoder = (read_sidecar(Path(features)) or {}).get("encoder_spec") or "video"
    params = {"model": args.model} if args.model else None
    if params:  # a method without a model, or a folder that is not one, is one line now, not a failure per video
        from procvid.discover import get_discoverer

        get_discoverer(args.method, **params)
    results, summary = discover_batch(inputs, args.out, args.method, args.num_steps, params=params, tasks=tasks,
                                      text_encoder=encoder, keyframes=args.keyframes,
                                      progress=not args.no_progress)
    for task, r in results.items():
        doc = r.doc
        names = [s.get("name") or s["text"] for s in doc["steps"]]
        print(f"{task}: {doc['num_steps']} steps in {len(doc['videos'])} videos "
              f"(K {doc['k_choice'].get('rule')}): {'; '.join(names)}")
    print(f"{len(results)} tasks in {args.out}" + (f"; {summary.failed} videos failed, reasons in "
                                                    f"{Path(args.out) / FAILURES_FILE}" if summary.failed else ""))
    return 1 if summary.failed else 0
