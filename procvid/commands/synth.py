"""`procvid synth`: generate the synthetic procedural-video world (videos + ground truth)."""

from __future__ import annotations

import argparse

from procvid.registry import COMMANDS

TIMINGS = ("crosstask", "coin", "captaincook4d")  # procvid.data.synthetic.timing.TIMINGS (kept light)

HELP = "generate synthetic instructional videos with ground-truth task graphs, steps and labels"
EXAMPLES = [
    "procvid synth --out data/synth --videos 100 --seed 0",
    "procvid synth --out data/synth_hard --videos 30 --difficulty 0.9 --size 128 --workers 2",
    "procvid synth --out data/synth_v2 --videos 30 --version 2 --timing crosstask --max-duration 300",
    "procvid synth --out data/synth_mistakes --videos 60 --seed 5 --mistakes 0.5",
]
COMMANDS.register("synth", HELP, __name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (resumed if it already holds the same world)")
    parser.add_argument("--videos", type=int, default=100, metavar="N",
                        help="number of videos (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--difficulty", type=float, default=0.5,
                        help="camera jitter, lighting drift and noise in [0, 1] (default 0.5)")
    parser.add_argument("--size", type=int, default=96, metavar="PX",
                        help="frame side in pixels, even (default 96)")
    parser.add_argument("--fps", type=float, default=10.0, help="frames per second (default 10)")
    parser.add_argument("--min-duration", type=float, default=None, metavar="S",
                        help="shortest video in seconds (v1 default 30; v2: none, the timing's own "
                             "lengths; a bound rescales a video's whole timeline when redraws miss it)")
    parser.add_argument("--max-duration", type=float, default=None, metavar="S",
                        help="longest video in seconds (v1 default 90; v2: none, up to 3600)")
    parser.add_argument("--version", type=int, default=1, choices=(1, 2),
                        help="world version: 1 (default; the shipped models' world) or 2 (real "
                             "datasets' step timing, repeated steps, camera pans and zoom, lighting "
                             "changes, textured cluttered background, distractors, occlusion)")
    parser.add_argument("--timing", default=None, choices=TIMINGS,
                        help="v2: whose annotation statistics time the steps (default crosstask)")
    parser.add_argument("--mistakes", type=float, default=0.0, metavar="P",
                        help="v1: probability per video of one mistake (a step before its preconditions, "
                             "a required step skipped, or a step repeated), listed in OUT/mistakes.json and "
                             "as error tags of the annotations (default 0: none)")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes (default 2)")


def run(args: argparse.Namespace) -> int:
    import time

    from procvid.commands.options import check_positive
    from procvid.data.synthetic import generate_world, task_specs, video_codec

    check_positive(videos=args.videos, size=args.size, fps=args.fps, workers=args.workers)
    started = time.monotonic()
    out = generate_world(
        args.out,
        num_videos=args.videos,
        seed=args.seed,
        difficulty=args.difficulty,
        size=args.size,
        fps=args.fps,
        min_duration=args.min_duration,
        max_duration=args.max_duration,
        workers=args.workers,
        version=args.version,
        timing=args.timing,
        mistakes=args.mistakes,
    )
    total = _total_duration(out / "videos.csv")
    elapsed = time.monotonic() - started
    print(f"{args.videos} videos of {len(task_specs())} tasks, {total / 60:.1f} min in total "
          f"({video_codec()}, {args.size}px, {args.fps:g} fps) in {elapsed:.0f} s -> {out}")
    return 0


def _total_duration(index) -> float:
    import csv

    with open(index, newline="") as f:
        return sum(float(row["duration"]) for row in csv.DictReader(f))
