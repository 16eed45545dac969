"""Next-step and completion benchmark of the script model against graph, Markov and linear baselines.

    .venv/bin/python tools/bench_script.py                          # trains both models (~1-4 min each), tables
    .venv/bin/python tools/bench_script.py --datasets crosstask     # one dataset
    .venv/bin/python tools/bench_script.py --models runs/bench_script   # reuse the model folders <dir>/<dataset>/model

Data: CrossTask (train split = training, videos_val.csv = test) and COIN (train / test subsets; the
291 SCHEMA test videos are not used). Sequences are the videos' step ids in order with consecutive
repeats merged (procvid.graph.script_model.collapse_repeats). Every predictor sees only training
sequences:

script model   procvid train script with configs/train/script.yaml (trained here unless --models)
graph walk     procvid.graph.induce_graph (precedence) per task on the training sequences; next step =
               the most frequent successor (training transitions) among the valid steps (GraphWalk)
model graph    the same walk on the script model's own graph (model_graph: precedence over 16 beams)
bigram Markov  P(next | last step) per task, add-0.1 smoothing
linear script  the task's canonical order: CrossTask's tasks_primary.txt order, COIN's step id order

Next step: for every test sequence s_1..s_n (n >= 1) and every k = 0..n-1, the predictor ranks the
task's steps (END excluded; ties in the task's step order) after the prefix s_1..s_k; Acc@1 = share of
these n predictions (pooled over all sequences) whose top step is s_{k+1}, R@3 = share with s_{k+1}
among the top three.
Completion: for every test sequence with n >= 2, the prefix is its first floor(n/2) steps and the truth
its remainder r = s_{floor(n/2)+1}..s_n. The predictor continues the prefix to END (greedy, or beam 5 for
the marked row; at most 2K steps for K task steps) giving p. CAcc@1 = mean over sequences of
|{j : p_j = r_j}| / |r| (position by position; missing positions are wrong); CEdit = mean of
1 - Levenshtein(p, r) / max(|p|, |r|). All scores in %. Test sequences of tasks without any training
sequence (13 COIN tasks, 159 videos, occur only in its test subset) are left out.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from procvid.graph.script_model import END, beam_search, ranked

DATASETS = ["crosstask", "coin"]
CONFIG = "configs/train/script.yaml"


def load(name: str):
    """(dataset, training sequences by task, test sequences by task, test sequences left out: their task
    has no training sequence)."""
    from procvid.data import load_dataset
    from procvid.graph.script_model import split_sequences
    from procvid.train.script import SPLITS

    dataset = load_dataset(name)
    train_split, test_split = SPLITS[name]
    train, test = split_sequences(dataset, train_split), split_sequences(dataset, test_split)
    unseen = sum(len(seqs) for task, seqs in test.items() if task not in train)
    return dataset, train, {task: seqs for task, seqs in test.items() if task in train}, unseen


def train_model(name: str, out: Path) -> tuple[Path, float]:
    """Train the script model on a dataset's training split; (exported model folder, seconds)."""
    import logging

    from procvid.train.cli import train

    logging.getLogger("lightning").setLevel(logging.WARNING)
    path = out / name / "model"
    started = time.perf_counter()
    train("script", ["--config", CONFIG, "--config", "configs/trainer/cpu.yaml", "--data.dataset", name,
                     "--model.export_dir", str(path), "--trainer.default_root_dir", str(out / name),
                     "--trainer.logger", "false", "--trainer.callbacks", "null",
                     "--trainer.enable_progress_bar", "false", "--trainer.enable_checkpointing", "false"])
    return path, time.perf_counter() - started


def predictors(dataset, train: dict, model) -> dict:
    from procvid.graph import induce_graph
    from procvid.graph.script import START, consecutive_pairs
    from procvid.graph.script_model import GraphWalk, LinearScript, MarkovBaseline

    steps = {t: list(task.steps) for t, task in dataset.tasks.items()}
    graphs = {t: induce_graph(seqs, dataset.tasks[t].texts()) for t, seqs in train.items()}
    transitions = {t: consecutive_pairs([[START, *s, END] for s in seqs]) for t, seqs in train.items()}
    model_graphs = {t: model.model_graph(t) for t in train}
    return {"script model": model,
            "graph walk": GraphWalk(graphs, transitions),
            "model graph walk": GraphWalk(model_graphs, transitions),
            "bigram Markov": MarkovBaseline(train, steps),
            "linear script": LinearScript(steps)}


def next_step(predictor, test: dict, steps: dict) -> tuple[float, float, int]:
    hits1, hits3, n = 0, 0, 0
    for task, seqs in test.items():
        for seq in seqs:
            dists = predictor.predict(task, [seq[:k] for k in range(len(seq))])
            for truth, dist in zip(seq, dists):
                top = [s for s, _ in ranked(dist, steps[task])[:3]]
                hits1 += top[0] == truth
                hits3 += truth in top
                n += 1
    return 100 * hits1 / n, 100 * hits3 / n, n


def completion(predictor, test: dict, steps: dict, width: int) -> tuple[float, float, int]:
    from procvid.ground import path_edit_accuracy

    acc, edit = [], []
    for task, seqs in test.items():
        for seq in seqs:
            if len(seq) < 2:
                continue
            cut = len(seq) // 2
            truth = seq[cut:]
            pred = beam_search(predictor, task, seq[:cut], width, 2 * len(steps[task]))[0][0]
            acc.append(np.mean([j < len(pred) and pred[j] == r for j, r in enumerate(truth)]))
            edit.append(path_edit_accuracy(pred, truth))
    return 100 * float(np.mean(acc)), 100 * float(np.mean(edit)), len(acc)


def benchmark(name: str, model_file: Path | None, out: Path) -> None:
    from procvid.checkpoint import WEIGHTS_NAME
    from procvid.graph.script_model import ScriptModel

    dataset, train, test, unseen = load(name)
    seconds = None
    if model_file is None:
        model_file, seconds = train_model(name, out)
    model = ScriptModel.from_pretrained(model_file)
    steps = {t: list(task.steps) for t, task in dataset.tasks.items()}
    n_train, n_test = (sum(map(len, s.values())) for s in (train, test))
    trained = f"trained in {seconds:.0f} s" if seconds is not None else f"from {model_file}"
    print(f"\n{name}: {len(dataset.tasks)} tasks, {n_train} training / {n_test} test sequences"
          f"{f' ({unseen} more of tasks without training sequences left out)' if unseen else ''}; "
          f"script model {trained} ({(model_file / WEIGHTS_NAME).stat().st_size / 1e6:.2f} MB)")
    started = time.perf_counter()
    rows = []
    for label, predictor in predictors(dataset, train, model).items():
        acc1, r3, n_prefixes = next_step(predictor, test, steps)
        cacc, cedit, n_completions = completion(predictor, test, steps, 1)
        rows.append((label, acc1, r3, cacc, cedit))
        if label == "script model":
            rows.append(("script model, beam 5", acc1, r3, *completion(predictor, test, steps, 5)[:2]))
    print(f"{'predictor':<22} {'Acc@1':>6} {'R@3':>6} {'CAcc@1':>7} {'CEdit':>6}   "
          f"({n_prefixes} next-step predictions, {n_completions} completions)")
    for label, *values in rows:
        print(f"{label:<22} {values[0]:6.1f} {values[1]:6.1f} {values[2]:7.1f} {values[3]:6.1f}")
    print(f"evaluation {time.perf_counter() - started:.0f} s")


def main(argv=None) -> int:
    import torch

    torch.set_num_threads(1)  # the models are tiny: more threads only contend (see ScriptModule)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(DATASETS), help="comma-separated subset of crosstask,coin")
    ap.add_argument("--models", metavar="DIR", help="use the model folders <DIR>/<dataset>/model instead of training")
    ap.add_argument("--out", default="runs/bench_script", help="where trained models are written")
    args = ap.parse_args(argv)
    for name in args.datasets.split(","):
        model_file = Path(args.models) / name / "model" if args.models else None
        benchmark(name, model_file, Path(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
