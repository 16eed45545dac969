"""`procvid mistakes`: online mistake detection, each step judged from the steps before it: over an
annotated dataset's step sequences against what the task's mistake-free videos teach, or over grounded
step paths (`procvid ground` output) against given graph scripts (the stage and its file formats:
procvid.mistakes.batch)."""

from __future__ import annotations

import argparse

from procvid.registry import COMMANDS, MISTAKES

HELP = "flag mistakes online in step sequences (missing preconditions, unknown, repeated or unlikely steps)"
EXAMPLES = [
    "procvid mistakes --data assembly101 --method precondition --out mistakes/a101",
    "procvid mistakes --data assembly101 --method probability --set threshold=0.005 --out mistakes/a101_p",
    "procvid mistakes --data captaincook4d --method precondition --set successors=true --out mistakes/cc4d",
    "procvid mistakes --data captaincook4d --graphs graphs/cc4d --method precondition --out mistakes/cc4d_given",
    "procvid mistakes run_out/steps --graphs run_out/graphs --out my_mistakes   # your videos' grounded steps",
]
COMMANDS.register("mistakes", HELP, __name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="*", metavar="STEPS",
                   help="grounded step paths instead of --data: <stem>.steps.json files, folders of them or of the "
                        "steps stage's shards (procvid ground / procvid run OUT/steps); checked against --graphs "
                        "with the precondition rule")
    p.add_argument("--data", metavar="NAME|DIR",
                   help="a dataset name (see: procvid list datasets) or a dataset folder")
    p.add_argument("--split", metavar="NAME", help="score only this split (default: test under protocol split, "
                                                   "every video under loo)")
    p.add_argument("--graphs", metavar="DIR", help="graph scripts to check against, one node-link JSON per task "
                                                   "(procvid graph build --out DIR); default: learned")
    p.add_argument("--method", type=MISTAKES.check, metavar="NAME",
                   help="mistake detector (see: procvid list mistake-detectors); needed with --data; grounded step "
                        "paths are checked with precondition")
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
    if bool(args.inputs) == bool(args.data):
        raise ProcvidError("give either --data NAME|DIR (annotated step sequences) or grounded steps files/folders, "
                           "not both" if args.inputs else "give --data NAME|DIR or grounded steps files/folders")
    if args.inputs:
        return _check_grounded(args)
    if not args.method:
        raise ProcvidError("--data needs --method (see: procvid list mistake-detectors)")
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


def _check_grounded(args: argparse.Namespace) -> int:
    """Grounded step paths against given graph scripts: the precondition rule with procvid run's settings
    unless --set changes them."""
    from procvid.errors import ProcvidError
    from procvid.mistakes.base import parse_setting
    from procvid.mistakes.batch import check_paths, read_graphs, read_step_paths
    from procvid.mistakes.precondition import PreconditionDetector

    if args.method not in (None, "precondition"):
        raise ProcvidError(f"grounded step paths are checked with the precondition rule on --graphs, not "
                           f"{args.method!r} (it learns from annotated sequences: use --data)")
    if not args.graphs:
        raise ProcvidError("grounded step paths need --graphs DIR: the task graph scripts to check them against "
                           "(procvid run writes OUT/graphs; procvid graph build makes them)")
    if args.split or args.protocol != "auto":
        raise ProcvidError("--split and --protocol are for --data")
    settings = dict(parse_setting(PreconditionDetector, text) for text in args.settings)
    unknown = sorted(set(settings) & set(PreconditionDetector.GRAPH_SETTINGS))
    if unknown:
        raise ProcvidError(f"--set {unknown[0]}: the graphs are given, nothing is learned")
    paths = read_step_paths(args.inputs)
    graphs = read_graphs(args.graphs, None)
    missing = sorted({doc["task"] for doc in paths.values()} - set(graphs))
    if missing:
        print(f"warning: no graph script for task(s) {', '.join(map(str, missing))} in {args.graphs}: "
              "their videos are not checked")
    docs = check_paths(paths, graphs, {}, args.out, settings)
    steps = sum(len(doc["flags"]) for doc in docs.values())
    print(f"precondition rule on {len(graphs)} graph scripts; {len(docs)} videos, {steps} steps, "
          f"{sum(doc['flagged'] for doc in docs.values())} flagged")
    shown = [(stem, row) for stem, doc in sorted(docs.items()) for row in doc["steps"] if row["flag"]]
    for stem, row in shown[:SHOWN]:
        names = f" ({', '.join(row['names'])})" if row["names"] else ""
        print(f"  {stem} step {row['index'] + 1} [{row['step']}] {row['text']}: {row['reason']}{names}")
    if len(shown) > SHOWN:
        print(f"  ... and {len(shown) - SHOWN} more (predictions.json, <stem>.mistakes.json)")
    print(f"written to {args.out}")
    return 0


SHOWN = 20  # flagged steps printed; the rest are in the output folder
