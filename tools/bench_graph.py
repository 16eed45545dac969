"""Task-graph generation benchmark: learned graphs against human (CaptainCook4D) or true (synthetic) graphs.

CaptainCook4D protocol of "Differentiable Task Graph Learning" (Seminara et al., NeurIPS 2024): for each of
the 24 recipes, learn a graph from the key-step sequences of its error-free recordings (the 194 of
dtgl/task_graph_generation_annotations.json) and score its edges against the recipe's human task graph
as the published evaluation reads it (dtgl/ground_truth_task_graphs/; 6 of the 24 differ from
task_graphs/, see SOURCE.txt; --graphs task_graphs scores against CaptainCook4D's own files instead)
(procvid.metrics.graph: precision/recall/F1 over the (K+2)x(K+2) adjacency with START/END, prediction
transitively reduced), macro-averaged over recipes.

    python tools/bench_graph.py [--methods count,tgml,precedence] [--graphs FOLDER] [--synthetic WORLD_DIR]
"""

from __future__ import annotations

import argparse
import sys
import time

PUBLISHED = "published F1 on this protocol (Seminara et al. 2024): count-based 60.6, MSG2 71.1, DO (TGML) 87.8"


def evaluate(tasks: dict, methods: list[str], seed: int) -> dict:
    """tasks: name -> (sequences, steps, true graph). Returns method -> (per-task scores, seconds)."""
    from procvid.graph import induce_graph
    from procvid.metrics.graph import graph_scores

    results = {}
    for method in methods:
        options = {"seed": seed} if method == "tgml" else {}
        started = time.perf_counter()
        scores = {name: graph_scores(induce_graph(seqs, steps, method, **options), truth)
                  for name, (seqs, steps, truth) in tasks.items()}
        results[method] = (scores, time.perf_counter() - started)
    return results


def print_table(title: str, tasks: dict, results: dict) -> None:
    from procvid.metrics.graph import macro_average

    methods = list(results)
    name_width = max(len(n) for n in [*tasks, "macro average"])
    print(title)
    print(f"{'':{name_width}} {'seqs':>4} " + " ".join(f"| {m:^20}" for m in methods))
    print(f"{'':{name_width}} {'':4} " + " ".join(f"| {'P':>6}{'R':>7}{'F1':>7}" for _ in methods))
    for name, (seqs, _, _) in tasks.items():
        cells = [results[m][0][name] for m in methods]
        print(f"{name:{name_width}} {len(seqs):4d} "
              + " ".join(f"| {100 * s.precision:6.1f}{100 * s.recall:7.1f}{100 * s.f1:7.1f}" for s in cells))
    averages = [macro_average(list(results[m][0].values())) for m in methods]
    print(f"{'macro average':{name_width}} {'':4} "
          + " ".join(f"| {100 * s.precision:6.1f}{100 * s.recall:7.1f}{100 * s.f1:7.1f}" for s in averages))
    print(f"{'seconds':{name_width}} {'':4} " + " ".join(f"| {results[m][1]:20.2f}" for m in methods))


GRAPHS = "dtgl/ground_truth_task_graphs"  # the human graphs exactly as the published evaluation uses them


def captaincook4d_tasks(folder: str = GRAPHS) -> dict:
    from procvid.data.captaincook4d import load_captaincook4d_task_graphs

    return {name: (r.sequences, r.steps, r.graph)
            for name, r in load_captaincook4d_task_graphs(folder=folder).items()}


def synthetic_tasks(root) -> dict:
    """Per task of a synthetic world: its videos' step orders, step texts and true graph."""
    from procvid.data.synthetic_reader import load_synthetic

    world = load_synthetic(root)
    tasks = {}
    for task_id, graph in world.graphs.items():
        orders = [v.path or v.meta["order"] for v in world.videos_of(task_id)]
        if orders:
            tasks[task_id] = (orders, world.tasks[task_id].texts(), graph)
    return tasks


def main(argv: list[str] | None = None) -> int:
    from procvid.errors import ProcvidError
    from procvid.registry import GRAPH_METHODS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default="count,tgml,precedence",
                        help="comma-separated, from: " + ", ".join(GRAPH_METHODS.names()))
    parser.add_argument("--seed", type=int, default=42, help="tgml seed (default 42)")
    parser.add_argument("--graphs", default=GRAPHS, choices=[GRAPHS, "task_graphs"],
                        help=f"CaptainCook4D human graphs to score against (default {GRAPHS}, the published ones)")
    parser.add_argument("--synthetic", metavar="DIR",
                        help="also score a synthetic world's tasks against their true graphs")
    args = parser.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        for method in methods:
            GRAPH_METHODS.check(method)
        tasks = captaincook4d_tasks(args.graphs)
        title = (f"CaptainCook4D task-graph generation: {len(tasks)} recipes, "
                 f"{sum(len(t[0]) for t in tasks.values())} error-free recordings (DTGL protocol), human graphs "
                 f"from {args.graphs}/, scores in %")
        print_table(title, tasks, evaluate(tasks, methods, args.seed))
        print(PUBLISHED)
        if args.synthetic:
            tasks = synthetic_tasks(args.synthetic)
            print()
            title = f"synthetic world {args.synthetic}: {len(tasks)} tasks against their true graphs, scores in %"
            print_table(title, tasks, evaluate(tasks, methods, args.seed))
    except ProcvidError as e:
        print(f"bench_graph: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
