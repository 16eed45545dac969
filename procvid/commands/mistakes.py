"""`procvid mistakes`: online mistake detection over an annotated dataset's step sequences, each step
judged from the steps before it against what the task's mistake-free videos teach (the stage and its
file formats: procvid.mistakes.batch)."""

from __future__ import annotations

import argparse

from procvid.registry import COMMANDS, MISTAKES

HELP = "flag mistakes online in step sequences (missing preconditions, unknown, repeated or unlikely steps)"
EXAMPLES = [
    "procvid mistakes --data assembly101 --method precondition --out mistakes/a101",
    "procvid mistakes --data assembly101 --method probability --set threshold=0.005 --out mistakes/a101_p",
    "procvid mistakes --data captaincook4d --method precondition --set successors=true --out mistakes/cc4d",
    "procvid mistakes --data captaincook4d --graphs graphs/cc4d --method precondition --out mistakes/cc4d_given",
]
COMMANDS.register("mistakes", HELP, __name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, metavar="NAME|DIR",
                   help="a dataset name (see: procvid list datasets) or a dataset folder")
    p.add_argument("--split", metavar="NAME", help="score only this split (default: test under protocol split, "
                                                   "every video under loo)")
    p.add_argument("--graphs", metavar="DIR", help="graph scripts to check against, one node-link JSON per task "
                                                   "(procvid graph build --out DIR); default: learned")
    p.add_argument("--method", required=True, type=MISTAKES.check, metavar="NAME",
                   help="mistake detector (see: procvid list mistake-detectors)")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="settings",
                   help="a detector setting (repeatable); settings not set are chosen by cross-validation on "
                        "the training videos (protocol split) or keep their defaults (loo). precondition: "
                        "graph_method, tolerance, optional, successors, violations, repeats; probability: model, "
                        "decay, last, threshold, repeats")
    p.add_argument("--protocol", default="auto", choices=["auto", "split", "loo"],
                   help="learn from the train split's mistake-free videos (split), or score each video with "
                        "its task's other mistake-free videos (loo); auto: split when the dataset's train split "
                        "holds only mistake-free videos (Assembly101-O), else loo (CaptainCook4D)")
    p.add_argument("--folds", type=int, default=5, metavar="K", help="cross-validation folds (default 5)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder: <sequence>.mistakes.json, "
                                                               "predictions.json, settings.json, scores.json")


def run(args: argparse.Namespace) -> int:
    from procvid.data import load_dataset
    from procvid.errors import ProcvidError
    from procvid.mistakes.base import parse_setting
    from procvid.mistakes.batch import detect_dataset, format_summary, read_graphs

    if args.folds < 2:
        raise ProcvidError("--folds must be at least 2")
    cls = MISTAKES.get(args.method)
    settings = dict(parse_setting(cls, text) for text in args.settings)
    dataset = load_dataset(args.data)
    graphs = read_graphs(args.graphs, dataset.tasks) if args.graphs else None
    result = detect_dataset(dataset, args.method, args.out, settings, args.split, graphs, args.protocol, args.folds)
    flagged = sum(doc["flagged"] for doc in result.docs.values())
    steps = sum(len(doc["flags"]) for doc in result.docs.values())
    shown = ", ".join(f"{k}={v}" for k, v in result.settings.items() if k != "method")
    print(f"{args.method} ({shown}); protocol {result.protocol}")
    if result.selection and result.selection["cv"]:
        best = max(result.selection["cv"], key=lambda row: row["avg_f1"])
        print(f"settings chosen by {result.selection['folds']}-fold cross-validation on "
              f"{result.selection['training_sequences']} training sequences "
              f"({', '.join(result.selection['searched'])}): CV Avg F1 {100 * best['avg_f1']:.1f}")
    print(f"{len(result.docs)} sequences, {steps} steps, {flagged} flagged ({result.seconds:.2f} s)")
    if result.scores is not None:
        for line in format_summary(result.scores):
            print(line)
    print(f"written to {args.out}")
    return 0
