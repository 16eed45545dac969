"""`procvid graph`: induce graph scripts from annotated step orders (build), order statistics (stats) and
next-step prediction from a graph script or a script model (predict)."""

from __future__ import annotations

import argparse

from procvid.registry import COMMANDS, GRAPH_METHODS

HELP = "learn task graphs (graph scripts) from annotated step orders and report order statistics"
EXAMPLES = [
    "procvid graph build --data captaincook4d --task coffee --out graphs/",
    "procvid graph build --data crosstask --method precedence --tolerance 0.1 --out graphs/crosstask",
    "procvid graph build --data data/synth --method tgml --formats json,png --out graphs/synth",
    "procvid graph stats --data crosstask",
    "procvid graph predict --graph graphs/crosstask/23521.json --prefix 1,3,2",
    "procvid graph predict --model runs/script/crosstask/script.pt --task 23521 --prefix 1,3 --beam 5",
]
COMMANDS.register("graph", HELP, __name__)
DATA_HELP = "a dataset name (see: procvid list datasets) or a dataset folder"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from procvid.graph.induce import DEFAULT_METHOD

    actions = parser.add_subparsers(dest="graph_command", metavar="ACTION", required=True)

    build = actions.add_parser("build", help="learn one graph per task; write JSON, GraphML, DOT and PNG",
                               description="Learn one graph script per task from its videos' step orders.")
    build.add_argument("--data", required=True, metavar="NAME|DIR", help=DATA_HELP)
    build.add_argument("--task", action="append", metavar="ID", help="only this task (repeatable; default all)")
    build.add_argument("--split", metavar="NAME", help="only videos of this split (e.g. train)")
    build.add_argument("--method", default=DEFAULT_METHOD, type=GRAPH_METHODS.check, metavar="NAME",
                       help=f"induction method (default {DEFAULT_METHOD}; see: procvid list graph-methods)")
    build.add_argument("--tolerance", type=float, default=0.0, metavar="F",
                       help="precedence: share of videos that may contradict an edge (noisy orders; default 0)")
    build.add_argument("--seed", type=int, default=42, help="tgml: random seed (default 42)")
    build.add_argument("--formats", default="json,graphml,dot,png", metavar="LIST",
                       help="comma-separated subset of json,graphml,dot,png (default all)")
    build.add_argument("--out", required=True, metavar="DIR", help="output folder (one file per task and format)")

    stats = actions.add_parser("stats", help="how often consecutive steps swap order and how steps branch",
                               description="Reversed consecutive pairs and frequent next steps, with definitions.")
    stats.add_argument("--data", required=True, metavar="NAME|DIR", help=DATA_HELP)
    stats.add_argument("--threshold", type=float, default=None, metavar="P",
                       help="transition probability that makes a next step frequent (default 0.1)")

    predict = actions.add_parser("predict", help="rank the next steps after a partial step sequence; complete it",
                                 description="Next steps with probabilities and a completion to END, from a "
                                             "graph script (a walk: the most frequent valid successor, see "
                                             "procvid.graph.script_model.GraphWalk) or a script model.")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--graph", metavar="FILE", help="graph script (node-link JSON from graph build)")
    source.add_argument("--model", metavar="DIR", help="script model folder (procvid train script's export_dir)")
    predict.add_argument("--task", metavar="ID", help="task id (needed with a model of several tasks)")
    predict.add_argument("--prefix", default="", metavar="IDS", help="steps done so far, comma-separated "
                                                                     "(default: none, i.e. predict the first step)")
    predict.add_argument("--top", type=int, default=5, metavar="N", help="next steps listed (default 5)")
    predict.add_argument("--beam", type=int, default=1, metavar="W",
                         help="beam width of the completion (default 1: greedy)")


def run(args: argparse.Namespace) -> int:
    return {"build": _build, "stats": _stats, "predict": _predict}[args.graph_command](args)


def _build(args: argparse.Namespace) -> int:
    from procvid.data import load_dataset
    from procvid.errors import ProcvidError
    from procvid.graph.build import build_graphs, method_options
    from procvid.graph.export import FORMATS

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    if not formats or set(formats) - set(FORMATS):
        raise ProcvidError(f"--formats takes a comma-separated subset of {','.join(FORMATS)}, "
                           f"not {args.formats!r}")
    dataset = load_dataset(args.data)
    if args.task:
        dataset = dataset.subset(args.task)
    if args.split:
        dataset = dataset.split(args.split)
    # recordings flagged as containing mistakes (CaptainCook4D) would teach wrong orders
    sequences = {t: [v.path for v in dataset.videos_of(t) if v.segments and not v.meta.get("is_error")]
                 for t in dataset.tasks}
    for task_id in [t for t, seqs in sequences.items() if not seqs]:
        print(f"{task_id}: no annotated videos, skipped")
    built = build_graphs(sequences, dataset.tasks, args.out, args.method,
                         method_options(args.method, args.tolerance, args.seed), formats)
    for task_id, info in built.items():
        graph = info["graph"]
        print(f"{task_id}: {info['videos']} videos -> {graph.number_of_nodes() - 2} steps, "
              f"{graph.number_of_edges()} edges: {', '.join(p.name for p in info['files'])}")
    print(f"graphs written to {args.out}")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from procvid.data import load_dataset
    from procvid.graph.stats import DEFINITIONS, FREQUENT_THRESHOLD, dataset_statistics, format_statistics

    threshold = FREQUENT_THRESHOLD if args.threshold is None else args.threshold
    dataset = load_dataset(args.data)
    print(DEFINITIONS.format(threshold=threshold))
    print()
    print(format_statistics(dataset_statistics(dataset, threshold), f"{dataset.name} (all videos)"))
    for split in dataset.splits:
        print(format_statistics(dataset_statistics(dataset.split(split), threshold), f"{dataset.name} {split}"))
    if dataset.name == "crosstask":
        print("published (Zhou et al., ACL 2023, CrossTask): 64.5% reversed consecutive pairs, "
              "2.56 frequent next steps per step")
    return 0


def _predict(args: argparse.Namespace) -> int:
    import math

    from procvid.errors import ProcvidError
    from procvid.graph.script import END, START
    from procvid.graph.script_model import GraphWalk, ScriptModel, beam_search, ranked

    if args.top < 1 or args.beam < 1:
        raise ProcvidError("--top and --beam must be at least 1")
    if args.graph:
        from procvid.graph.export import read_json

        graph = read_json(args.graph)
        task = str(graph.graph.get("task_id") or args.task or "task")  # only a key: the file holds one task
        model = GraphWalk({task: graph})
        texts = {n: text for n, text in graph.nodes(data="text") if n not in (START, END)}
    else:
        model = ScriptModel.from_pretrained(args.model)
        tasks = model.vocab.tasks
        task = args.task or (next(iter(tasks)) if len(tasks) == 1 else None)
        if task not in tasks:
            raise ProcvidError(f"name one of the model's {len(tasks)} tasks with --task "
                               f"({', '.join(list(tasks)[:10])}{', ...' if len(tasks) > 10 else ''})")
        texts = model.vocab.texts[task]
    by_name = {str(s): s for s in texts}
    names = [p.strip() for p in args.prefix.split(",") if p.strip()]
    unknown = [p for p in names if p not in by_name]
    if unknown:
        raise ProcvidError(f"task {task} has no step {unknown[0]!r} (steps: {', '.join(by_name)})")
    prefix = [by_name[p] for p in names]

    print(f"task {task}; done: {' -> '.join(map(str, prefix)) or '(nothing)'}")
    print(f"{'rank':>4}  {'step':<8} {'prob':>6}  text")
    for rank, (step, p) in enumerate(ranked(model.predict(task, [prefix])[0])[: args.top], start=1):
        print(f"{rank:>4}  {str(step):<8} {p:6.3f}  {texts.get(step, '') if step != END else '(the task ends)'}")
    rest, logp = beam_search(model, task, prefix, args.beam, max_steps=2 * len(texts))[0]
    how = "greedy" if args.beam == 1 else f"beam {args.beam}"
    done = " -> ".join(map(str, prefix))
    print(f"completion ({how}, p = {math.exp(logp):.3f}): "
          f"{done + ' | ' if done else ''}{' -> '.join(map(str, [*rest, END]))}")
    return 0
