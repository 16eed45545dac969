"""procvid segment: videos or feature files -> key-step segments, key frames and timelines."""

from procvid.registry import COMMANDS, DETECTORS

HELP = "split videos into key-step segments (JSON + PySceneDetect-style CSV, key frames, timeline)"
EXAMPLES = [
    "procvid segment ../shared/data/videos --out segments/ --method sbd --timeline",
    "procvid segment features/ --out segments/ --method uvd --num-segments 7",
    "procvid segment datasets/synth/heldout/videos --out seg/ --fps 2 --timeline --gt datasets/synth/heldout",
]
COMMANDS.register("segment", HELP, __name__)


def add_arguments(p):
    from procvid import defaults
    from procvid.commands import options

    p.add_argument("inputs", nargs="+",
                   help="videos, feature files (.json / .safetensors from procvid embed), folders of either, "
                        "or .txt lists of video paths")
    p.add_argument("--out", required=True, help="output folder for <stem>.segments.json/.csv (+ key frames)")
    p.add_argument("--method", default=defaults.METHOD, type=DETECTORS.check, metavar="NAME",
                   help=f"boundary detector (default {defaults.METHOD}; sbd with --encoder video for synthetic-world "
                        "videos; see: procvid list detectors)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="detector parameter, repeatable (e.g. --param min_segment_s=2); settings chosen for "
                        "the --encoder's features apply where none is given (kcpd on efficientnet-lite0: "
                        "penalty=0.2 merge=0)")
    p.add_argument("--num-segments", type=int, metavar="K", help="known number of segments per video")
    p.add_argument("--features", help="feature cache for video inputs (default OUT/features)")
    options.add_encoder(p)
    options.add_fps(p)
    p.add_argument("--keyframes", default="auto", choices=["auto", "jpg", "png", "none"],
                   help="key-frame thumbnail format, or none (default auto: jpg with the files layout, none with "
                        "shards)")
    p.add_argument("--timeline", action="store_true", help="also draw <stem>.timeline.png")
    p.add_argument("--gt", help="ground truth for the timelines: CrossTask CSV(s), their folder, or a dataset folder")
    options.add_device(p)
    options.add_workers(p)
    p.add_argument("--shard", help="I/N: process only the I-th of N disjoint, stable parts (0-based)")
    options.add_engine(p)
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are up to date")
    options.add_layout(p)
    options.add_no_progress(p)


def parse_params(pairs: list[str]) -> dict:
    """NAME=VALUE strings -> dict; values are JSON when they parse (numbers, true, null), else text."""
    import json

    from procvid.errors import ProcvidError

    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ProcvidError(f"--param {pair!r}: expected NAME=VALUE")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    return params


def run(args) -> int:
    from pathlib import Path

    from procvid.batch import FAILURES_FILE, parse_shard
    from procvid.commands.options import check_positive, engine_from
    from procvid.data.crosstask import read_ground_truth
    from procvid.defaults import detector_params
    from procvid.report.timeline import draw_timelines
    from procvid.segment import get_detector
    from procvid.segment.batch import segment_batch
    from procvid.segment.files import load_segmented
    from procvid.video import Sampling

    check_positive(num_segments=args.num_segments, fps=args.fps)
    engine = engine_from(args)
    # settings chosen for the encoder's features (procvid.defaults.TUNED_PARAMS); --param overrides them
    params = {**detector_params(args.method, args.encoder), **parse_params(args.param)}
    detector = get_detector(args.method, **params)
    truth = read_ground_truth(args.gt) if args.gt else None
    summary = segment_batch(
        args.inputs, args.out, detector, num_segments=args.num_segments, features_dir=args.features,
        encoder=args.encoder, sampling=Sampling(fps=args.fps),
        keyframes=None if args.keyframes == "none" else args.keyframes, shard=parse_shard(args.shard),
        overwrite=args.overwrite, device=args.device, progress=not args.no_progress, engine=engine,
        layout=args.layout)
    if args.timeline:
        draw_timelines(load_segmented(Path(args.out), truth=truth), progress=not args.no_progress,
                       workers=args.workers)
    print(summary.line())
    if summary.failed:
        print(f"failures with reasons: {args.out}/{FAILURES_FILE}")
    return 1 if summary.failed else 0
