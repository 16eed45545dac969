"""Step-discovery benchmark on a held-out synthetic world (procvid.discover against ground truth).

    .venv/bin/python tools/bench_discover.py           # table on datasets/synth/discover_seed4 (seed 4, 60 videos)
    .venv/bin/python tools/bench_discover.py --tune    # settings grid on the tuning world (seed 3)
    .venv/bin/python tools/bench_discover.py --real    # rows on efficientnet-lite0 features (18 videos, 1 fps)
    .venv/bin/python tools/bench_discover.py --model DIR   # the steps method with another trained module

World: generated if missing, embedded with the shipped `video` encoder at 2 fps (feature cache
<world>_features_video) and segmented with the sbd detector (<world>_segments_sbd). Methods run per
task with K = auto (and, second block, K = the task's true number of steps): order-kmeans,
agglomerative and steps (the learned temporal module checkpoints/procvid-discover, trained on seed
11). Protocol (procvid.metrics.procedure, EgoProceL definition): per video, Hungarian matching
between true steps (background included) and discovered steps on the 2-fps frame grid; per-step P, R, IoU averaged over steps and
videos; F1 from P and R. "pooled": one matching over all frames of a task (ProceL / CrossTask).
Baselines: uniform K-way split of each video and k-means of each video's frames (K = the task's true
number of steps for both; no shared labels, so no pooled score). Graph F1 (procvid.metrics.graph):
discovered steps mapped to true steps by the pooled matching, the label-free paths induced into graph
scripts (precedence), against the world's true graphs, next to graphs from text-grounded paths
(procvid.ground_files.ground_batch, order any, the same segments).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

PUBLISHED = "EgoProceL zero-shot (HiERO, EgoVLP features; another dataset, not comparable): F1 44.5  IoU 25.3"
METHODS = ["order-kmeans", "agglomerative", "steps"]


def prepare(world: Path, seed: int, num_videos: int):
    from procvid.data import load_dataset
    from procvid.data.synthetic import ensure_world
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.segment import get_detector
    from procvid.segment.batch import segment_batch
    from procvid.video import Sampling, find_videos

    ensure_world(world, num_videos, seed, progress=False)
    features, segments = Path(f"{world}_features_video"), Path(f"{world}_segments_sbd")
    encoder = load_encoder("video")
    embed_videos(find_videos([world / "videos"]), features, encoder, Sampling(fps=2.0), progress=False)
    segment_batch([features], segments, get_detector("sbd"), encoder="video", keyframes=None, progress=False)
    return load_dataset(world), segments, encoder


REAL_ENCODER, REAL_PER_TASK, REAL_FPS = "efficientnet-lite0", 3, 1.0


def prepare_real(world: Path, dataset, per_task: int = REAL_PER_TASK) -> Path:
    """Embed the first `per_task` videos (by name) of each task with the real encoder at 1 fps (slow on
    CPU: ~4 frames/s at 224 px) into <world>_features_efficientnet-lite0 (cached)."""
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.video import Sampling, find_videos

    stems = {v.video_id for t in dataset.tasks for v in sorted((v for v in dataset.videos if v.task_id == t),
                                                                key=lambda v: v.video_id)[:per_task]}
    videos = [v for v in find_videos([world / "videos"]) if v[0].stem in stems]
    features = Path(f"{world}_features_{REAL_ENCODER}")
    embed_videos(videos, features, load_encoder(REAL_ENCODER), Sampling(fps=REAL_FPS), progress=False)
    return features


def load_real(dataset, segments: Path, features: Path):
    """As load(), on the real encoder's features of the videos in `features`: each video's sbd segments
    (found on the `video` features) are carried over by time onto the real features' frame grid, so
    these rows differ from the main table only in the features that are clustered."""
    from procvid.discover import VideoUnits
    from procvid.features import load_features
    from procvid.metrics.segmentation import frame_labels
    from procvid.segment.files import read_segments_doc

    by_id = {v.video_id: v for v in dataset.videos}
    tasks = {}
    for f in sorted(features.glob("*.safetensors")):
        v = by_id[f.stem]
        X, t, _ = load_features(f.with_suffix(".json"))
        t = np.asarray(t, dtype=np.float64)
        doc = read_segments_doc(segments / f"{f.stem}.segments.json")
        units = [(int(np.searchsorted(t, r["start"])), int(np.searchsorted(t, r["end"]))) for r in doc["segments"]]
        truth = frame_labels([(s.start, s.end, s.step_id) for s in v.segments], t, background=-1).astype(np.int64)
        tasks.setdefault(v.task_id, []).append((VideoUnits(f.stem, np.asarray(X, dtype=np.float32), units),
                                                t, truth, v.path))
    return tasks


def load(dataset, segments: Path):
    """task -> list of (VideoUnits, t, true frame labels (step id or -1), true path)."""
    from procvid.discover.stage import _load, DiscoverInput
    from procvid.metrics.segmentation import frame_labels

    by_id = {v.video_id: v for v in dataset.videos}
    tasks = {}
    for f in sorted(segments.glob("*.segments.json")):
        stem = f.name[: -len(".segments.json")]
        v = by_id[stem]
        units, t, _ = _load(DiscoverInput(stem, f, v.task_id))
        truth = frame_labels([(s.start, s.end, s.step_id) for s in v.segments], t, background=-1).astype(np.int64)
        tasks.setdefault(v.task_id, []).append((units, t, truth, v.path))
    return tasks


def uniform_labels(T: int, k: int) -> np.ndarray:
    return np.minimum((np.arange(T) * k) // max(T, 1), k - 1)


def frame_kmeans(X: np.ndarray, k: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    return KMeans(n_clusters=min(k, len(X)), n_init=2, random_state=0).fit(X).labels_


def evaluate(tasks, dataset, method: str, num_steps=None, params=None, grounded_paths=None) -> dict:
    from procvid.discover import get_discoverer
    from procvid.graph import induce_graph
    from procvid.metrics.graph import graph_scores, macro_average
    from procvid.metrics.procedure import match, pooled_scores, procedure_scores

    preds, trues, pooled, graphs, ks, secs = [], [], [], [], [], 0.0
    for task_id, items in tasks.items():
        true_k = len(dataset.tasks[task_id].steps)
        k = true_k if num_steps == "true" else num_steps
        videos = [u for u, *_ in items]
        task_true = [tr for _, _, tr, _ in items]
        if method == "uniform":
            task_pred = [uniform_labels(len(u.X), k) for u in videos]
        elif method == "frame-kmeans":
            task_pred = [frame_kmeans(u.X, k) for u in videos]
        else:
            started = time.perf_counter()
            result = get_discoverer(method, **(params or {})).discover(videos, k)
            secs += time.perf_counter() - started
            ks.append(result.num_steps)
            task_pred = result.frame_labels(videos)
            pooled.append(pooled_scores(task_pred, task_true))
            mapping = {p: t for t, p in match(np.concatenate(task_pred), np.concatenate(task_true)).items()
                       if t != -1 and p != -1}
            seqs = [[mapping[s] for s in path if s in mapping] for path in result.paths(videos)]
            seqs = [[s for i, s in enumerate(q) if s not in q[:i]] for q in seqs]
            if any(seqs):
                g = induce_graph([q for q in seqs if q], dataset.tasks[task_id].texts())
                graphs.append(graph_scores(g, dataset.graphs[task_id]))
        preds += task_pred
        trues += task_true
    s = procedure_scores(preds, trues)
    row = {"P": s.precision, "R": s.recall, "F1": s.f1, "IoU": s.iou, "K": np.mean(ks) if ks else float("nan"),
           "s": secs}
    if pooled:
        row.update(pF1=float(np.mean([p.f1 for p in pooled])), pIoU=float(np.mean([p.iou for p in pooled])))
    if graphs:
        row["gF1"] = macro_average(graphs).f1
    return row


def grounded_graph_f1(dataset, segments: Path, encoder) -> float:
    from procvid.ground_files import GroundInput, ground_batch
    from procvid.graph import induce_graph
    from procvid.metrics.graph import graph_scores, macro_average

    by_id = {v.video_id: v for v in dataset.videos}
    inputs = [GroundInput(f.name[: -len(".segments.json")], f, by_id[f.name[: -len(".segments.json")]].task_id)
              for f in sorted(segments.glob("*.segments.json"))]
    with tempfile.TemporaryDirectory() as tmp:
        docs, _ = ground_batch(inputs, tmp, dataset.tasks, {}, encoder, "any", progress=False)
    scores = []
    for task_id in dataset.tasks:
        seqs = [d["path"] for d in docs.values() if d["task"] == task_id and d["path"]]
        if seqs:
            scores.append(graph_scores(induce_graph(seqs, dataset.tasks[task_id].texts()), dataset.graphs[task_id]))
    return macro_average(scores).f1


def fmt(name: str, r: dict) -> str:
    def f(key):
        return f"{100 * r[key]:6.1f}" if key in r else f"{'-':>6}"
    k = f"{r['K']:5.1f}" if r.get("K") == r.get("K") else f"{'true':>5}"
    return (f"{name:<26} {f('P')} {f('R')} {f('F1')} {f('IoU')} {f('pF1')} {f('pIoU')} {f('gF1')} {k} "
            f"{r['s']:6.2f}")


def params_of(method: str, model: str | None) -> dict:
    return {"model": model} if method == "steps" and model else {}


STEPS_GRID = {"input_weight": [0.0, 0.5, 1.0], "position_weight": [0.0, 0.5, 1.0, 2.0], "background_runs": [1.5, 3.0]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--world", default="datasets/synth/discover_seed4")
    ap.add_argument("--seed", type=int, default=4)
    ap.add_argument("--videos", type=int, default=60)
    ap.add_argument("--tune", action="store_true", help="grid on the tuning world (datasets/synth/tune_seg, seed 3)")
    ap.add_argument("--model", default=None, help="model folder of the steps method (default: the shipped one)")
    ap.add_argument("--real", action="store_true",
                    help=f"rows on the real encoder's features ({REAL_ENCODER}, {REAL_FPS:g} fps) of the first "
                         f"{REAL_PER_TASK} videos of each task (slow to embed on CPU; cached)")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    world, seed = (Path("datasets/synth/tune_seg"), 3) if args.tune else (Path(args.world), args.seed)
    dataset, segments, encoder = prepare(world, seed, args.videos)
    tasks = load(dataset, segments)
    n = sum(map(len, tasks.values()))
    print(f"{n} videos of {len(tasks)} tasks from {world} (seed {seed}); video encoder 2 fps, sbd segments")
    header = f"{'method':<26} {'P':>6} {'R':>6} {'F1':>6} {'IoU':>6} {'pF1':>6} {'pIoU':>6} {'gF1':>6} {'K':>5} {'sec':>6}"
    if args.tune:
        print(header)
        for method, w, runs in itertools.product(METHODS[:2], [0.0, 0.5, 1.0, 2.0], [1.5, 3.0]):
            r = evaluate(tasks, dataset, method, None, {"position_weight": w, "background_runs": runs})
            print(fmt(f"{method} w={w} bg={runs}", r))
        for values in itertools.product(*STEPS_GRID.values()):
            grid = dict(zip(STEPS_GRID, values))
            r = evaluate(tasks, dataset, "steps", None, {**grid, **params_of("steps", args.model)})
            print(fmt("steps " + " ".join(f"{k[:3]}={v}" for k, v in grid.items()), r))
        return 0
    if args.real:
        return real_rows(world, dataset, segments, tasks, header, args.model)
    print(header)
    print("K = auto")
    for m in METHODS:
        print(fmt(m, evaluate(tasks, dataset, m, params=params_of(m, args.model))))
    print("K = the task's true number of steps")
    for m in [*METHODS, "uniform", "frame-kmeans"]:
        print(fmt(m, evaluate(tasks, dataset, m, "true", params_of(m, args.model))))
    videos = [u for items in tasks.values() for u, *_ in items]
    videos = (videos * (100 // len(videos) + 1))[:100]
    from procvid.discover import get_discoverer

    for m in METHODS:
        began = time.perf_counter()
        get_discoverer(m, **params_of(m, args.model)).discover(videos, None)
        print(f"speed: {m} on 100 videos as one task ({sum(len(v.units) for v in videos)} segments, K = auto): "
              f"{time.perf_counter() - began:.1f} s")
    print(f"graph F1 of graphs from text-grounded paths (order any): {100 * grounded_graph_f1(dataset, segments, encoder):.1f}")
    print(PUBLISHED)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


def real_rows(world: Path, dataset, segments: Path, tasks, header: str, model: str | None) -> int:
    """The real-encoder block: the same videos on the `video` features and on the real encoder's."""
    started = time.perf_counter()
    features = prepare_real(world, dataset)
    real = load_real(dataset, segments, features)
    stems = {u.stem for items in real.values() for u, *_ in items}
    subset = {t: [it for it in items if it[0].stem in stems] for t, items in tasks.items()}
    subset = {t: items for t, items in subset.items() if items}
    print(f"real encoder: {len(stems)} videos (the first {REAL_PER_TASK} of each task) of {world}; {REAL_ENCODER} "
          f"at {REAL_FPS:g} fps ({features}) = rows (real); the sbd segments of the `video` features carried over "
          "by time; rows (video): the same videos on the `video` features")
    print(header)
    for k, title in [(None, "K = auto"), ("true", "K = the task's true number of steps")]:
        print(title)
        for m in [*METHODS, *(["uniform", "frame-kmeans"] if k else [])]:
            print(fmt(f"{m} (video)", evaluate(subset, dataset, m, k, params_of(m, model))))
            if m == "steps":
                print(f"{'steps (real)':<26} - (the shipped module takes the `video` encoder's 64-d features)")
                continue
            print(fmt(f"{m} (real)", evaluate(real, dataset, m, k)))
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
