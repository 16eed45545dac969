"""Step-grounding benchmark on held-out synthetic videos (procvid.ground against ground truth).

    .venv/bin/python tools/bench_ground.py            # table on datasets/synth/heldout_seed1
    .venv/bin/python tools/bench_ground.py --tune     # grid search of the defaults on the tuning world

World: datasets/synth/heldout_seed1 (60 videos, seed 1; the encoder and sbd were trained on seed 0,
the grounding defaults tuned on seed 3), embedded with the `video` encoder at 2 fps through the
feature cache (<world>_features_video). Each video is grounded against the text embeddings of its task's
steps, from three kinds of units: the ground-truth step segments (idle gaps given as background),
the segments of the uvd and sbd detectors (default parameters; they also cut out idle gaps, which
the grounding must drop), and single frames. Orders (see procvid.ground): linear = step id order;
graph = the precedence graph induced (procvid.graph.induce_graph) from the training world's step
orders (datasets/synth/train, seed 0); true graph = the world's own task graphs; any = any order.
"argmax" is the no-alignment baseline: every unit takes its best step, or background where no step
scores above the drop threshold; its path is the sequence of label runs (repeats possible).

Metrics, per video then averaged (Edit, Exact) or pooled over frames (Frame, StepFr):
Edit   = 1 - Levenshtein(predicted path, true path) / max(lengths)    (procvid.ground.path_edit_accuracy)
Exact  = share of videos whose predicted path equals the true path
Frame  = frame accuracy on the 2-fps grid, background a class of its own (MoF without label matching)
StepFr = frame accuracy over the frames inside true steps only
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

import numpy as np

from procvid.ground import DROP_PERCENTILE, STEP_COST, ground_video, path_edit_accuracy, step_scores
from procvid.metrics.segmentation import BACKGROUND, frame_labels, mof

UNITS = ["gt", "uvd", "sbd", "frames"]
ORDERS = ["argmax", "linear", "graph", "true graph", "any"]
TUNE_GRID = {"drop_percentile": [0, 25, 50, 65, 75, 85], "step_cost": [0.0, 0.5, 1.0, 2.0, 4.0]}


def prepare(world: Path, seed: int, num_videos: int, encoder_spec: str, fps: float):
    """Generate and embed the world if needed. Returns (dataset, per-video (video, X, t), text embeddings)."""
    from procvid.data import load_dataset
    from procvid.data.synthetic import ensure_world
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.features import entry_paths, load_features
    from procvid.video import Sampling, find_videos

    ensure_world(world, num_videos, seed)
    from bench_segment import features_dir

    features = features_dir(world, encoder_spec)
    encoder = load_encoder(encoder_spec)
    videos = find_videos([world / "videos"])
    summary = embed_videos(videos, features, encoder, Sampling(fps=fps), progress=False)
    if summary.failed:
        raise SystemExit(f"{summary.failed} videos could not be embedded; see {features}/failures.jsonl")
    dataset = load_dataset(world)
    texts = {tid: encoder.encode_texts(list(task.texts().values())) for tid, task in dataset.tasks.items()}
    by_id = {v.video_id: v for v in dataset.videos}
    data = []
    for _, rel in videos:
        X, t, _ = load_features(entry_paths(features, rel)[1])
        data.append((by_id[rel.stem], X, t))
    return dataset, data, texts


def detect_units(data, names: list[str]) -> dict:
    """name -> per-video (start_frame, end_frame) units; gt = the true step segments on the frame grid."""
    from procvid.segment import get_detector

    units = {}
    for name in names:
        if name == "frames":
            units[name] = [None] * len(data)
        elif name == "gt":
            units[name] = [[tuple(int(x) for x in np.searchsorted(t, [s.start, s.end])) for s in v.segments
                            if np.searchsorted(t, s.start) < np.searchsorted(t, s.end)] for v, _, t in data]
        else:
            det = get_detector(name)
            units[name] = [[(s.start_frame, s.end_frame) for s in det.detect(X, t)] for _, X, t in data]
    return units


def argmax_labels(X, t, text, step_ids, units, drop_percentile: float) -> tuple[list, list]:
    """The no-alignment baseline: (path of label runs, per-frame labels)."""
    per_frame = step_scores(X @ text.T, 1.0, drop_percentile)
    bounds = units or [(i, i + 1) for i in range(len(t))]
    labels = [None] * len(t)
    for a, b in bounds:
        gain = per_frame[a:b].sum(0)
        if gain.max() > 0:
            labels[a:b] = [step_ids[int(gain.argmax())]] * (b - a)
    runs = [x for i, x in enumerate(labels) if x is not None and (i == 0 or labels[i - 1] != x)]
    return runs, labels


def evaluate(data, texts, units, order: str, graphs: dict, **params) -> dict:
    edit, exact, pred_frames, true_frames, seconds = [], [], [], [], 0.0
    for (video, X, t), bounds in zip(data, units):
        step_ids, text = texts[video.task_id]
        started = time.perf_counter()
        if order == "argmax":
            path, labels = argmax_labels(X, t, text, step_ids, bounds,
                                         params.get("drop_percentile", DROP_PERCENTILE))
        else:
            mode = "graph" if order.endswith("graph") else order
            g = ground_video(X, t, text, step_ids, bounds, mode,
                             graphs[order].get(video.task_id), **params)
            path, labels = g.path, g.labels
        seconds += time.perf_counter() - started
        edit.append(path_edit_accuracy(path, video.path))
        exact.append(path == video.path)
        pred_frames.append(np.array([BACKGROUND if x is None else x for x in labels], dtype=object))
        true_frames.append(frame_labels([(s.start, s.end, s.step_id) for s in video.segments], t))
    pred, true = np.concatenate(pred_frames), np.concatenate(true_frames)
    return {"edit": 100 * np.mean(edit), "exact": 100 * np.mean(exact),
            "frame": mof(pred, true, hungarian=False),
            "step_frame": mof(pred, true, hungarian=False, ignore_background=True),
            "ms_per_video": 1000 * seconds / len(data)}


def train_graphs(world: Path, task_ids) -> dict:
    """Precedence graphs induced from a world's step orders."""
    from procvid.data import load_dataset
    from procvid.graph import induce_graph

    train = load_dataset(world)
    return {tid: induce_graph(train.sequences(tid), train.tasks[tid].texts()) for tid in task_ids}


def print_table(rows: list[tuple[str, str, dict]]) -> None:
    print(f"{'units':<7} {'order':<11} {'Edit':>6} {'Exact':>6} {'Frame':>6} {'StepFr':>6} {'ms/vid':>7}")
    for unit, order, r in rows:
        print(f"{unit:<7} {order:<11} {r['edit']:6.1f} {r['exact']:6.1f} {r['frame']:6.1f} "
              f"{r['step_frame']:6.1f} {r['ms_per_video']:7.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="datasets/synth/heldout_seed1", help="benchmark world (created if missing)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the benchmark world if it is created")
    ap.add_argument("--videos", type=int, default=60, help="videos in the benchmark world if it is created")
    ap.add_argument("--train-world", default="datasets/synth/train", help="world whose step orders give the graphs")
    ap.add_argument("--encoder", default="video", help="features for segments and grounding (default video)")
    ap.add_argument("--fps", type=float, default=2.0, help="embedding rate")
    ap.add_argument("--tune", action="store_true",
                    help="grid-search drop_percentile and step_cost on the tuning world (seed 3) instead")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    world = Path("datasets/synth/tune_seg") if args.tune else Path(args.world)
    seed, num_videos = (3, 60) if args.tune else (args.seed, args.videos)
    dataset, data, embedded = prepare(world, seed, num_videos, args.encoder, args.fps)
    texts = {tid: (list(dataset.tasks[tid].steps), emb) for tid, emb in embedded.items()}
    graphs = {"graph": train_graphs(Path(args.train_world), dataset.tasks), "true graph": dataset.graphs,
              "linear": {}, "any": {}, "argmax": {}}
    hours = sum(t[-1] + t[1] - t[0] for *_, t in data) / 3600
    print(f"{len(data)} videos of {len(dataset.tasks)} tasks ({hours * 60:.0f} min) from {world}; "
          f"features: {args.encoder} at {args.fps:g} fps")
    units = detect_units(data, UNITS)

    if args.tune:
        results = []
        for drop, cost in itertools.product(*TUNE_GRID.values()):
            scores = [evaluate(data, texts, units[u], "graph", graphs, drop_percentile=drop, step_cost=cost)
                      for u in ("uvd", "sbd", "frames")]
            mean = {k: np.mean([s[k] for s in scores]) for k in ("edit", "frame")}
            results.append(((mean["edit"] + mean["frame"]) / 2, mean, drop, cost))
        results.sort(key=lambda r: -r[0])
        print("graph order, mean over uvd, sbd and frame units; best 8 by (Edit + Frame) / 2:")
        for score, mean, drop, cost in results[:8]:
            print(f"  {score:5.1f} (Edit {mean['edit']:.1f}, Frame {mean['frame']:.1f})  "
                  f"drop_percentile={drop} step_cost={cost}")
        return 0

    print(f"defaults: drop_percentile={DROP_PERCENTILE:g}, step_cost={STEP_COST:g}; all scores in %")
    rows = [(u, o, evaluate(data, texts, units[u], o, graphs)) for u in UNITS for o in ORDERS]
    print_table(rows)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
