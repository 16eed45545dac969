"""procvid embed: videos -> feature cache (safetensors + JSON sidecars)."""

HELP = "embed videos with a frozen image encoder into a feature cache"
EXAMPLES = [
    "procvid embed ../shared/data/videos --out features/",
    "procvid embed videos.txt --out features/ --encoder ViT-B-32:/models/open_clip_pytorch_model.bin --fps 1",
    "procvid embed data/ --out features/ --shard 0/4 --workers 4 --device cuda",
]


def add_arguments(p):
    p.add_argument("inputs", nargs="+", help="video files, folders (searched recursively) or .txt lists of paths")
    p.add_argument("--out", required=True, help="output folder for <stem>.safetensors + <stem>.json")
    p.add_argument("--encoder", default="default",
                   help="`default` (shipped procvid-clip-tiny), or open_clip NAME:PRETRAINED (tag, file or folder)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fps", type=float, help="frames sampled per second (default 1)")
    g.add_argument("--every", type=int, help="take every k-th frame")
    g.add_argument("--num-frames", type=int, help="take N frames spread uniformly")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument("--workers", type=int, default=2, help="decoding threads")
    p.add_argument("--shard", help="I/N: process only the I-th of N disjoint, stable parts (0-based)")
    p.add_argument("--overwrite", action="store_true", help="recompute entries that are already valid")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local: decoding threads + one encoder; ray: Ray Data (RAY_ADDRESS for a cluster)")
    p.add_argument("--no-progress", action="store_true")


def sampling_from_args(args):
    from procvid.video import Sampling

    if args.every:
        return Sampling(every=args.every)
    if args.num_frames:
        return Sampling(num=args.num_frames)
    return Sampling(fps=args.fps or 1.0)


def run(args) -> int:
    from procvid.batch import FAILURES_FILE, parse_shard
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.errors import ProcvidError
    from procvid.video import find_videos

    if args.batch_size < 1 or args.workers < 1:
        raise ProcvidError("--batch-size and --workers must be at least 1")
    try:
        sampling = sampling_from_args(args)
    except ValueError as e:
        raise ProcvidError(str(e)) from None
    shard = parse_shard(args.shard)
    videos = find_videos(args.inputs)
    if not videos:
        raise ProcvidError(f"no video files found in {' '.join(args.inputs)}")
    encoder = load_encoder(args.encoder, device=args.device, precision=args.precision)
    summary = embed_videos(videos, args.out, encoder, sampling, batch_size=args.batch_size,
                           workers=args.workers, shard=shard, overwrite=args.overwrite,
                           progress=not args.no_progress, engine=args.engine)
    print(summary.line())
    if summary.failed:
        print(f"failures with reasons: {args.out}/{FAILURES_FILE}")
    return 1 if summary.failed else 0
