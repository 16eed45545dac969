"""Procedure planning benchmark: the learned and graph-script planners on held-out synthetic worlds (visual:
start and goal observations), and a label-level variant on CrossTask, COIN and NIV annotations.

    .venv/bin/python tools/bench_plan.py                   # all tables (~1.5 min once worlds and features exist)
    .venv/bin/python tools/bench_plan.py --skip-real       # synthetic worlds only
    .venv/bin/python tools/bench_plan.py --tune            # the settings grid on the tuning world (seed 3)
    .venv/bin/python tools/bench_plan.py --model runs/planner/model   # another planner folder

Protocol (PDPP / SCHEMA): every window of T consecutive steps of a test video (consecutive repeats of a step
merged), T = 3, 4, 5; start = the frames in the 1 s after the window's first step starts, goal = the frames
in the 1 s before its last step ends (mean of the `video` encoder's feature rows at 2 fps:
procvid.forecast.plan.observation; for the state head also of the planner's second encoder, `default`).
The task is not given: each planner finds it. Scores, in %:
  SR    success rate: windows whose T predicted steps are all right, in order;
  mAcc  mean accuracy per position: the share of the T positions predicted right, averaged over windows;
  mIoU  per window |P & G| / |P | G| of the predicted and true step sets (a step of another task counts as
        a different step), averaged over windows. (PDPP computes IoU over a whole batch at once and P3IV
        per window over one-hot action sets; ours is the per-window set version.)
Rows:
  learned              procvid-planner's transformer, task from its task head, decoded as the best valid
                       path of the task's graph script under its position log-probabilities + set_weight x
                       the set evidence of its state head (which steps are done at the start and at the
                       goal, from both encoders' observations) + transition_weight x the transition
                       log-probabilities (the shipped default)
  learned, no state    ablation: the same without the set evidence and transitions (the default before
                       state recognition)
  learned, no trans.   ablation: with the set evidence, without the transitions
  learned, free        the same network, each position's most probable step (no graph constraint)
  graph script         start / goal step recognised by prototypes, then the most probable valid path
  graph, no constraint the same scores without the graph (Viterbi over bigram transitions)
  graph, true ends     the graph-script path between the true first and last steps, task given (what
                       perfect state recognition would give)
Held-out worlds (never used for training or settings): bench_seg (v1, seed 2, 120 videos) and
bench_plan_seed7 (v1, seed 7, 60 videos); made with their features (both encoders) when missing. Settings (temperature,
alpha, decoding, set_weight, transition_weight) were chosen on tune_seg (seed 3) with --tune (which also
prints a diagnosis of the learned planner's misses there); training: forecast_train_seed11.

Label level (real annotations; no video features exist here): the first and last steps of each test window
are given as labels with the task; planners predict the T steps (so the first and last are right by
construction and only the T-2 middle steps are open: much easier than the published visual setting).
Splits: CrossTask official (train / videos_val.csv), COIN PDPP 70/30 (coin_train_70 / coin_test_30),
NIV (no official split: 70/30 of the videos, drawn with seed 0). Graph scripts, transitions and window
counts come from the training videos only. Rows: graph script (most probable valid path with those ends;
Viterbi when none is valid), bigram Markov (Viterbi with those ends, no graph), most frequent training
window with those ends (else the Markov path). Published visual SR beside it, for orientation only.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

HORIZONS = (3, 4, 5)
SYNTH = Path("datasets/synth")
HELD_OUT = [("bench_seg", 2, 120), ("bench_plan_seed7", 7, 60)]
TUNE = ("tune_seg", 3, 60)
MODEL = Path("checkpoints/procvid-planner")
# published visual success rates at T=3 (the figures), shown for orientation only
PUBLISHED = {"crosstask": "PDPP 37.2, SCHEMA 31.8", "coin": "SCHEMA 32.4", "niv": "-"}


def prepare(name: str, seed: int, num_videos: int, encoder: str | None = "video", state_encoder: str | None = None):
    """(dataset, features folder, state features folder or None) of a v1 world, generated and embedded with the
    planner's encoder (and with `state_encoder`, its second encoder, when given) if missing."""
    from procvid.data import load_dataset
    from procvid.data.synthetic import ensure_world
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.graph.build import file_stem
    from procvid.video import Sampling, find_videos

    if not encoder:
        raise SystemExit("the planner does not name the encoder of its training features: nothing to embed with")
    world = SYNTH / name
    ensure_world(world, num_videos, seed, progress=False)
    folders = []
    for spec in (encoder, state_encoder):
        if spec:  # a path spec (ViT-B-32:/models/x.bin) makes a file-name-safe folder name
            folders.append(Path(f"{world}_features_{file_stem(spec)}"))
            embed_videos(find_videos([world / "videos"]), folders[-1], load_encoder(spec), Sampling(fps=2.0),
                         progress=False)
    return load_dataset(world), folders[0], folders[1] if state_encoder else None


def queries(dataset, features: Path, horizon: int, state_features: Path | None = None) -> list[tuple]:
    """(task, true steps, start observation, goal observation, start and goal observations of the state
    features or None) of every window of `horizon` steps."""
    from procvid.features import load_features
    from procvid.forecast.plan import observation, step_windows

    out = []
    for v in dataset.videos:
        emb, times, _ = load_features(features / f"{v.video_id}.json")
        state = load_features(state_features / f"{v.video_id}.json")[:2] if state_features else None
        for steps, a, b in step_windows(v, horizon):
            out.append((v.task_id, steps, observation(emb, times, a, "start"), observation(emb, times, b, "goal"),
                        observation(*state, a, "start") if state else None,
                        observation(*state, b, "goal") if state else None))
    return out


def done_probs(planner, qs: list[tuple]) -> np.ndarray | None:
    """P(done) [2 (start, goal), windows, V] of the planner's state head (None without one)."""
    if not planner.has_state:
        return None
    obs = np.concatenate([np.stack([q[2] for q in qs]), np.stack([q[3] for q in qs])])
    state = np.concatenate([np.stack([q[4] for q in qs]), np.stack([q[5] for q in qs])]) if planner.state_dim else None
    return planner.predict_done(obs, state).reshape(2, len(qs), -1)


def predictions(planner, qs: list[tuple]) -> tuple:
    """(log P(step) [N, T, V], log P(task) [N, tasks], P(done) or None) of the learned planner for the queries
    of one horizon: one network pass per query set, shared by the rows, the grid and the diagnosis."""
    starts, goals = np.stack([q[2] for q in qs]), np.stack([q[3] for q in qs])
    logp_steps, logp_tasks = planner.predict(starts, goals, len(qs[0][1]))
    return logp_steps, logp_tasks, done_probs(planner, qs)


def scores(pairs: list[tuple]) -> tuple[float, float, float]:
    """(SR, mAcc, mIoU) in % over (predicted, true) pairs of [(task, step), ...] windows."""
    sr = np.mean([p == t for p, t in pairs])
    acc = np.mean([np.mean([a == b for a, b in zip(p, t)]) for p, t in pairs])
    iou = np.mean([len(set(p) & set(t)) / len(set(p) | set(t)) for p, t in pairs])
    return 100 * sr, 100 * acc, 100 * iou


def visual_rows(planner, qs: list[tuple]) -> dict[str, list[tuple]]:
    """Row label -> (predicted, true) pairs for the queries of one horizon."""
    horizon = len(qs[0][1])
    truth = [[(task, s) for s in steps] for task, steps, *_ in qs]
    logp_steps, logp_tasks, done = predictions(planner, qs)
    rows = defaultdict(list)

    def add(label, plan, i):
        rows[label].append(([(plan.task, s) for s in plan.steps], truth[i]))

    for i, (task, steps, start, goal, *_) in enumerate(qs):
        row_done = None if done is None else done[:, i]
        add("learned", planner.decode_learned(logp_steps[i], logp_tasks[i], decode="graph", done=row_done)[0], i)
        add("learned, no state", planner.decode_learned(logp_steps[i], logp_tasks[i], decode="graph",
                                                        set_weight=0.0, transition_weight=0.0)[0], i)
        if done is not None:
            add("learned, no trans.", planner.decode_learned(logp_steps[i], logp_tasks[i], decode="graph",
                                                             done=row_done, transition_weight=0.0)[0], i)
        add("learned, free", planner.decode_learned(logp_steps[i], logp_tasks[i], decode="free")[0], i)
        add("graph script", planner.plan_graph(start, goal, horizon)[0], i)
        add("graph, no constraint", planner.plan_graph(start, goal, horizon, constrained=False)[0], i)
        add("graph, true ends", ends_plan(planner, task, steps[0], steps[-1], horizon), i)
    return rows


def ends_plan(planner, task, first, last, horizon):
    """The graph planner's best path of the task with the given first and last steps."""
    from procvid.forecast.plan import Plan

    k = len(planner.task_steps[task])
    pos = np.zeros((horizon, k))
    steps = planner.task_steps[task]
    if first in steps and last in steps:
        pos[[0, -1]] = -np.inf
        pos[0, steps.index(first)] = 0.0
        pos[-1, steps.index(last)] = 0.0
        plans = planner.plan_graph_scores(task, pos)
        if plans:
            return plans[0]
    return Plan(task, [first] * (horizon - 1) + [last], [], 0.0)


def upper_bounds(qs: list[tuple]) -> tuple[float, float]:
    """SR (%) that no planner can beat on these windows when it knows the true task and first and last steps
    (a), or those and the set of steps in the window (b), but not their order: per group of windows that
    agree on what is known, the count of its most frequent step order (the test windows' own statistics)."""
    bounds = []
    for key in (lambda task, s: (task, s[0], s[-1]), lambda task, s: (task, s[0], s[-1], frozenset(s))):
        groups = defaultdict(Counter)
        for task, steps, *_ in qs:
            groups[key(task, steps)][steps] += 1
        bounds.append(100 * sum(c.most_common(1)[0][1] for c in groups.values()) / len(qs))
    return bounds[0], bounds[1]


def print_table(title: str, results: dict[int, dict[str, tuple]], counts: dict[int, int]) -> None:
    print(f"\n{title}")
    print(f"{'planner':<22}" + "".join(f"  T={t}: {'SR':>5} {'mAcc':>5} {'mIoU':>5}" for t in results))
    for label in next(iter(results.values())):
        print(f"{label:<22}" + "".join(f"       {r[label][0]:5.1f} {r[label][1]:5.1f} {r[label][2]:5.1f}"
                                       for r in results.values()))
    print("windows: " + ", ".join(f"T={t}: {n}" for t, n in counts.items()))


def visual(planner, name: str, seed: int, num_videos: int, horizons=HORIZONS, note: str = "held-out") -> dict:
    dataset, features, state_features = prepare(name, seed, num_videos, planner.encoder_spec,
                                                planner.state_encoder_spec)
    results, counts, bounds = {}, {}, {}
    for horizon in horizons:
        qs = queries(dataset, features, horizon, state_features)
        results[horizon] = {label: scores(pairs) for label, pairs in visual_rows(planner, qs).items()}
        counts[horizon], bounds[horizon] = len(qs), upper_bounds(qs)
    print_table(f"{name} (synthetic v1, seed {seed}, {num_videos} videos, {note}): visual planning",
                results, counts)
    print("SR upper bounds (the order inside a window is not observable): knowing the true task, first and last "
          "step: " + ", ".join(f"T={t}: {a:.1f}" for t, (a, _) in bounds.items())
          + "; knowing also the set of steps: " + ", ".join(f"T={t}: {b:.1f}" for t, (_, b) in bounds.items()))
    return results


# ---------------------------------------------------------------------------- label level, real annotations


def real_split(name: str):
    """(dataset, training paths by task, test paths by task, left out: test paths of tasks never trained on)."""
    from procvid.data import load_dataset
    from procvid.graph.script_model import split_sequences

    dataset = load_dataset(name)
    if name == "niv":  # 30% of the videos drawn with seed 0 (as procvid.train.world.validation_mask, no Lightning)
        test = set(np.random.default_rng(0).permutation(len(dataset.videos))[: round(0.3 * len(dataset.videos))])
        for i, v in enumerate(dataset.videos):
            v.split = "test" if i in test else "train"
    train_split, test_split = {"crosstask": ("train", "val"), "coin": ("train", "test"), "niv": ("train", "test")}[name]
    train, test = split_sequences(dataset, train_split), split_sequences(dataset, test_split)
    unseen = sum(len(s) for t, s in test.items() if t not in train)
    return dataset, train, {t: s for t, s in test.items() if t in train}, unseen


def label_level(name: str, horizons=HORIZONS) -> dict:
    from procvid.forecast.plan import Windows, best_paths, transition_logprobs, viterbi
    from procvid.graph import induce_graph
    from procvid.graph.script import consecutive_pairs

    started = time.perf_counter()
    dataset, train, test, unseen = real_split(name)
    graphs = {t: induce_graph(seqs, dataset.tasks[t].texts()) for t, seqs in train.items()}
    windows = Windows(graphs)
    logt = {t: transition_logprobs(windows.steps[t], consecutive_pairs(seqs), 0.1) for t, seqs in train.items()}
    results, counts = {}, {}
    for horizon in horizons:
        seen = defaultdict(Counter)  # (task, first, last) -> counts of training windows
        for t, seqs in train.items():
            for s in seqs:
                for i in range(len(s) - horizon + 1):
                    seen[(t, s[i], s[i + horizon - 1])][tuple(s[i : i + horizon])] += 1
        rows = defaultdict(list)
        for t, seqs in test.items():
            steps = windows.steps[t]
            valid = windows.valid(t, horizon)
            for s in seqs:
                for i in range(len(s) - horizon + 1):
                    truth = list(s[i : i + horizon])
                    first, last = truth[0], truth[-1]
                    if first not in steps or last not in steps:  # a step never seen in training: no plan
                        markov = graph = [first] * (horizon - 1) + [last]
                    else:
                        pos = np.zeros((horizon, len(steps)))
                        pos[[0, -1]] = -np.inf
                        pos[0, steps.index(first)] = pos[-1, steps.index(last)] = 0.0
                        idx, score = viterbi(pos, logt[t])
                        markov = [steps[j] for j in idx] if np.isfinite(score) else [first] * (horizon - 1) + [last]
                        found = best_paths(valid[(valid[:, 0] == steps.index(first))
                                                 & (valid[:, -1] == steps.index(last))], pos, logt[t])
                        graph = [steps[j] for j in found[0][0]] if found else markov
                    known = seen.get((t, first, last))
                    retrieval = list(known.most_common(1)[0][0]) if known else markov
                    for label, pred in (("graph script", graph), ("bigram Markov", markov),
                                        ("frequent window", retrieval)):
                        rows[label].append(([(t, x) for x in pred], [(t, x) for x in truth]))
        results[horizon] = {label: scores(pairs) for label, pairs in rows.items()}
        counts[horizon] = len(rows["graph script"])
    n_train, n_test = sum(map(len, train.values())), sum(map(len, test.values()))
    left = f"; {unseen} test videos of tasks without training videos left out" if unseen else ""
    print_table(f"{name}: label level (first and last step given), {n_train} training / {n_test} test "
                f"videos{left}; published visual SR at T=3 for orientation only: {PUBLISHED[name]} "
                f"({time.perf_counter() - started:.0f} s)", results, counts)
    return results


SET_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
TRANSITION_WEIGHTS = (0.0, 0.5, 1.0)


def tune_decoding(planner, qs: list[tuple]) -> str:
    """SR of the learned planner's graph decoding over the grid set_weight x transition_weight."""
    horizon = len(qs[0][1])
    logp_steps, logp_tasks, done = predictions(planner, qs)
    line = []
    for ws in SET_WEIGHTS:
        for wt in TRANSITION_WEIGHTS:
            pairs = []
            for i, (task, steps, *_) in enumerate(qs):
                p = planner.decode_learned(logp_steps[i], logp_tasks[i], decode="graph", done=done[:, i],
                                           set_weight=ws, transition_weight=wt)[0]
                pairs.append(([(p.task, s) for s in p.steps], [(task, s) for s in steps]))
            line.append(f"{ws}/{wt}: {scores(pairs)[0]:.1f}")
    return f"tune_seg T={horizon}: learned SR by set_weight/transition_weight " + ", ".join(line)


def diagnose(planner, qs: list[tuple]) -> str:
    """Where the learned planner (its default decoding) goes wrong: of the windows it misses, how many have the
    task, the first step, the last step, the set of steps (same task) and set + both ends right (so only the
    order of the middle steps is wrong); and, knowing the true task, how often the state head's thresholded
    done probabilities (done at the goal, not at the start, P > 0.5) name exactly the window's first T - 1
    steps (its last step is still in progress at the goal)."""
    horizon = len(qs[0][1])
    logp_steps, logp_tasks, done = predictions(planner, qs)
    miss, state_right = Counter(), 0
    for i, (task, steps, *_) in enumerate(qs):
        p = planner.decode_learned(logp_steps[i], logp_tasks[i], done=None if done is None else done[:, i])[0]
        if done is not None:
            names, idx = planner.task_steps[task], planner.task_index[task]
            inside = (done[1, i, idx] > 0.5) & (done[0, i, idx] <= 0.5)
            state_right += {names[j] for j in np.flatnonzero(inside)} == set(steps[:-1])
        if p.task == task and list(p.steps) == list(steps):
            continue
        same = p.task == task
        first, last, members = (same and p.steps[0] == steps[0], same and p.steps[-1] == steps[-1],
                                same and set(p.steps) == set(steps))
        for key, right in (("missed", True), ("task", same), ("first", first), ("last", last), ("set", members),
                           ("set + ends", first and last and members)):
            miss[key] += int(right)
    line = (f"tune_seg T={horizon}: learned misses {miss['missed']} of {len(qs)} windows; of those right: "
            + ", ".join(f"{k} {miss[k]}" for k in ("task", "first", "last", "set", "set + ends")))
    if done is not None:
        line += f"; state head's thresholded window set right (true task): {100 * state_right / len(qs):.1f}%"
    return line


def tune(planner) -> None:
    """The settings grid on the tuning world: graph-planner temperature, the learned decodings and (with a
    state head) the weights of the set evidence and transitions; a diagnosis of the learned planner's misses."""
    dataset, features, state_features = prepare(*TUNE, planner.encoder_spec, planner.state_encoder_spec)
    base = planner.temperature
    for horizon in HORIZONS:
        qs = queries(dataset, features, horizon, state_features)
        print(diagnose(planner, qs))
        if planner.has_state:
            print(tune_decoding(planner, qs))
        line = []
        for temperature in (0.01, 0.02, 0.05, 0.1, 0.2):
            planner.temperature = temperature
            pairs = [([(p.task, s) for s in p.steps], [(task, s) for s in steps])
                     for task, steps, start, goal, *_ in qs for p in planner.plan_graph(start, goal, horizon)[:1]]
            line.append(f"t={temperature}: SR {scores(pairs)[0]:.1f}")
        planner.temperature = base
        rows = visual_rows(planner, qs)
        print(f"tune_seg T={horizon}: graph script " + ", ".join(line) + "; "
              + ", ".join(f"{label} SR {scores(p)[0]:.1f}" for label, p in rows.items()))


def main(argv=None) -> int:
    import torch

    from procvid.forecast.plan import ProcedurePlanner

    torch.set_num_threads(1)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(MODEL), help="planner model folder (default: the shipped one)")
    ap.add_argument("--skip-real", action="store_true", help="no label-level tables on real annotations")
    ap.add_argument("--skip-synthetic", action="store_true", help="no visual tables on synthetic worlds")
    ap.add_argument("--tune", action="store_true", help="print the settings grid on the tuning world only")
    args = ap.parse_args(argv)
    planner = ProcedurePlanner.from_pretrained(args.model)
    if args.tune:
        tune(planner)
        return 0
    started = time.perf_counter()
    if not args.skip_synthetic:
        print(f"planner {args.model}: settings {planner.info.get('settings')}, "
              f"trained on {planner.info.get('dataset')}")
        for name, seed, n in HELD_OUT:
            visual(planner, name, seed, n)
    if not args.skip_real:
        for name in ("crosstask", "coin", "niv"):
            label_level(name)
    print(f"\nplanning benchmark {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
