"""procvid demo: the main job on the embedded default, end to end on a fresh synthetic world.

Synthesises instructional videos with known ground truth, embeds them with the shipped encoder,
finds key steps with UVD, induces one graph script per task, and scores every stage.
"""

HELP = "run the pipeline end to end on a freshly synthesised world with the shipped models"
EXAMPLES = ["procvid demo --out demo_out", "procvid demo --out demo_out --videos 30 --seed 7"]


def add_arguments(p):
    p.add_argument("--out", default="demo_out", help="output folder (reruns reuse what is there)")
    p.add_argument("--videos", type=int, default=18, help="videos to synthesise (spread over the tasks)")
    p.add_argument("--seed", type=int, default=100, help="world seed (the shipped models were trained on seed 0)")
    p.add_argument("--encoder", default="default")
    p.add_argument("--fps", type=float, default=2.0)


def run(args) -> int:
    from pathlib import Path

    from procvid.data import load_dataset
    from procvid.data.synthetic import generate_world
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.features import entry_paths, load_features
    from procvid.graph import induce_graph
    from procvid.graph.export import write_all
    from procvid.metrics.graph import graph_scores, macro_average
    from procvid.metrics.segmentation import evaluate, summarize
    from procvid.segment import get_detector
    from procvid.video import Sampling, find_videos

    out = Path(args.out)
    world = out / "world"
    print(f"[1/4] synthesising {args.videos} videos (seed {args.seed}) -> {world}")
    generate_world(world, num_videos=args.videos, seed=args.seed, min_duration=30, max_duration=60)
    data = load_dataset(world)

    print(f"[2/4] embedding with the {args.encoder} encoder at {args.fps} fps -> {out / 'features'}")
    encoder = load_encoder(args.encoder)
    videos = find_videos([world / "videos"])
    summary = embed_videos(videos, out / "features", encoder, Sampling(fps=args.fps))
    print("      " + summary.line())

    print("[3/4] key steps with UVD, scored against the true step boundaries")
    detector = get_detector("uvd")
    scores = []
    for video in data.videos:
        emb, times, _ = load_features(entry_paths(out / "features", f"{video.video_id}.mp4")[1])
        pred = detector.detect(emb, times)
        truth = [(s.start, s.end, s.step_id) for s in video.segments]
        scores.append(evaluate(pred, truth, times, tolerance=1.0))
    seg = summarize(scores)
    print(f"      boundary F1 (+-1 s) {seg['boundary_f1']:.2f} (P {seg['boundary_precision']:.2f}, "
          f"R {seg['boundary_recall']:.2f}); MoF {seg['mof']:.1f}; F1@10/25/50 {seg['f1@10']:.1f}/"
          f"{seg['f1@25']:.1f}/{seg['f1@50']:.1f}; Edit {seg['edit']:.1f} over {len(scores)} videos")

    print(f"[4/4] graph scripts per task from the videos' step orders -> {out / 'graphs'}")
    graph_rows = []
    for task_id, task in data.tasks.items():
        graph = induce_graph(data.sequences(task_id), {i: s.text for i, s in task.steps.items()})
        write_all(graph, out / "graphs", task_id, title=task.name)
        graph_rows.append(graph_scores(graph, data.graphs[task_id]))
    g = macro_average(graph_rows)
    print(f"      graph F1 against the true task graphs: {g.f1:.1%} (macro over {len(graph_rows)} tasks, "
          f"{len(data.videos) // len(data.tasks)} videos each)")
    print(f"done: features in {out / 'features'}, task graphs (PNG, JSON, GraphML, DOT) in {out / 'graphs'}")
    return 0
