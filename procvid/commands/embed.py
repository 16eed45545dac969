"""procvid embed: videos -> feature cache (safetensors + JSON sidecars, or Parquet shards)."""

from procvid.registry import COMMANDS

HELP = "embed videos with a frozen image encoder into a feature cache"
EXAMPLES = [
    "procvid embed ../shared/data/videos --out features/",
    "procvid embed videos.txt --out features/ --encoder ViT-B-32:/models/open_clip_pytorch_model.bin --fps 1",
    "procvid embed data/ --out features/ --shard 0/4 --workers 4 --device cuda",
    "procvid embed corpus/ --out features/ --layout shards   # Parquet shards + index instead of a file pair per video",
]
COMMANDS.register("embed", HELP, __name__)


def add_arguments(p):
    from procvid.commands import options

    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or .txt lists of paths")
    p.add_argument("--out", required=True, help="output folder for <stem>.safetensors + <stem>.json")
    options.add_encoder(p)
    g = p.add_mutually_exclusive_group()
    options.add_fps(g)
    g.add_argument("--every", type=int, help="take every k-th frame instead")
    g.add_argument("--num-frames", type=int, help="take N frames spread uniformly instead")
    p.add_argument("--batch-size", type=int, default=64, help="frames gathered per encoding call (default 64)")
    options.add_device(p)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    options.add_workers(p)
    p.add_argument("--shard", help="I/N: process only the I-th of N disjoint, stable parts (0-based)")
    p.add_argument("--overwrite", action="store_true", help="recompute entries that are already valid")
    options.add_engine(p)
    options.add_layout(p)
    options.add_no_progress(p)


def sampling_from_args(args):
    from procvid.commands.options import check_positive
    from procvid.video import Sampling

    check_positive(fps=args.fps, every=args.every, num_frames=args.num_frames)
    if args.every:
        return Sampling(every=args.every)
    if args.num_frames:
        return Sampling(num=args.num_frames)
    return Sampling(fps=args.fps)


def run(args) -> int:
    from procvid.batch import FAILURES_FILE, parse_shard
    from procvid.commands.options import check_positive, engine_from
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.errors import ProcvidError
    from procvid.video import find_videos

    check_positive(batch_size=args.batch_size)
    sampling = sampling_from_args(args)
    engine = engine_from(args)
    shard = parse_shard(args.shard)
    videos = find_videos(args.inputs)
    if not videos:
        raise ProcvidError(f"no video files found in {' '.join(args.inputs)}")
    from procvid.shards import choose_layout

    layout = choose_layout(args.layout, len(videos), args.out)
    encoder = load_encoder(args.encoder, device=args.device, precision=args.precision)
    summary = embed_videos(videos, args.out, encoder, sampling, batch_size=args.batch_size, shard=shard,
                           overwrite=args.overwrite, progress=not args.no_progress, engine=engine, layout=layout)
    print(summary.line())
    if summary.failed:
        print(f"failures with reasons: {args.out}/{FAILURES_FILE}")
    return 1 if summary.failed else 0
