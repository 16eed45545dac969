"""procvid segment: videos or feature files -> key-step segments, key frames and timelines."""

HELP = "split videos into key-step segments (JSON + PySceneDetect-style CSV, key frames, timeline)"
EXAMPLES = [
    "procvid segment ../shared/data/videos --out segments/ --method sbd --timeline",
    "procvid segment features/ --out segments/ --method uvd --num-segments 7",
    "procvid segment datasets/synth/heldout/videos --out seg/ --fps 2 --timeline --gt datasets/synth/heldout",
]
METHODS = ["sbd", "uvd", "novelty", "kcpd", "uniform"]


def add_arguments(p):
    p.add_argument("inputs", nargs="+",
                   help="videos, feature files (.json / .safetensors from procvid embed), folders of either, "
                        "or .txt lists of video paths")
    p.add_argument("--out", required=True, help="output folder for <stem>.segments.json/.csv (+ key frames)")
    p.add_argument("--method", default="sbd", choices=METHODS, help="boundary detector (default sbd)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="detector parameter, repeatable (e.g. --param min_segment_s=2)")
    p.add_argument("--num-segments", type=int, metavar="K", help="known number of segments per video")
    p.add_argument("--features", help="feature cache for video inputs (default OUT/features)")
    p.add_argument("--encoder", default="video",
                   help="encoder for video inputs (see procvid embed; default video, the clip-level model the "
                        "shipped sbd predictor was trained on)")
    p.add_argument("--fps", type=float, default=2.0,
                   help="frames embedded per second for video inputs (default 2, the video encoder's rate)")
    p.add_argument("--keyframes", default="jpg", choices=["jpg", "png", "none"],
                   help="key-frame thumbnail format, or none (default jpg)")
    p.add_argument("--timeline", action="store_true", help="also draw <stem>.timeline.png")
    p.add_argument("--gt", help="ground truth for the timelines: CrossTask CSV(s), their folder, or a dataset folder")
    p.add_argument("--device", default="auto", help="encoder device: auto, cpu, cuda, ...")
    p.add_argument("--workers", type=int, default=2, help="decoding threads while embedding")
    p.add_argument("--shard", help="I/N: process only the I-th of N disjoint, stable parts (0-based)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: this process; ray: Ray Data for embedding and segmentation (RAY_ADDRESS for a cluster)")
    p.add_argument("--overwrite", action="store_true", help="redo inputs whose outputs are up to date")
    p.add_argument("--no-progress", action="store_true")


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
    from procvid.batch import FAILURES_FILE, parse_shard
    from procvid.errors import ProcvidError
    from procvid.segment import get_detector
    from procvid.segment.run import segment_batch
    from procvid.video import Sampling

    if args.num_segments is not None and args.num_segments < 1:
        raise ProcvidError("--num-segments must be at least 1")
    if args.fps <= 0 or args.workers < 1:
        raise ProcvidError("--fps must be positive and --workers at least 1")
    detector = get_detector(args.method, **parse_params(args.param))
    summary = segment_batch(
        args.inputs, args.out, detector, num_segments=args.num_segments, features_dir=args.features,
        encoder=args.encoder, sampling=Sampling(fps=args.fps),
        keyframes=None if args.keyframes == "none" else args.keyframes, timeline=args.timeline, gt=args.gt,
        shard=parse_shard(args.shard), overwrite=args.overwrite, device=args.device, workers=args.workers,
        progress=not args.no_progress, engine=args.engine)
    print(summary.line())
    if summary.failed:
        print(f"failures with reasons: {args.out}/{FAILURES_FILE}")
    return 1 if summary.failed else 0
