"""Benchmark `procvid embed` against a naive loop, side by side on the same videos and encoder.

Prints frames per second of:
  pipeline     procvid's embed_videos (decode ahead in threads, resize while decoding, batches
               mixing videos)
  naive        decode each sampled frame separately (seek per frame, full resolution), open_clip's
               PIL preprocess, encode one frame at a time
  decode-only  procvid's decoder alone (at the encoder's input size)
  encode-only  the encoder alone on already-prepared batches
and the pipeline / naive ratio (target >= 3x on CPU; on GPU pipeline >= 90% of encode-only).

    python tools/bench_embed.py                       # the shared real clips, the default encoder
    python tools/bench_embed.py --encoder ViT-B-32:random --device cuda
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procvid.embedding import embed_videos  # noqa: E402
from procvid.engine import LocalEngine  # noqa: E402
from procvid.encoders import load_encoder  # noqa: E402
from procvid.paths import shared_data_dir  # noqa: E402
from procvid.video import Sampling, find_videos, iter_frames  # noqa: E402


def naive_loop(videos, encoder, sampling) -> int:
    """What research code often does: random access per frame, PIL transforms, batch of one."""
    import decord
    import open_clip
    from PIL import Image

    from procvid.video import VideoReader

    preprocess = open_clip.image_transform(encoder.image_size, is_train=False,
                                           mean=encoder.mean.flatten().tolist(), std=encoder.std.flatten().tolist())
    n = 0
    for path, _ in videos:
        info = VideoReader(path).info  # same frame choice as the pipeline: one per target time
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
        idx = np.minimum((sampling.target_times(info.duration) * info.fps).astype(int), len(vr) - 1)
        for i in np.unique(idx):
            frame = vr[int(i)].asnumpy()
            x = preprocess(Image.fromarray(frame)).unsqueeze(0)
            encoder.encode_prepared(x)
            n += 1
    return n


def decode_only(videos, sampling, size) -> int:
    return sum(len(f) for path, _ in videos for f, _ in iter_frames(path, sampling, size=size))


def encode_only(encoder, n_frames, batch_size) -> int:
    batch = encoder.prepare_images(np.random.default_rng(0).integers(0, 255, (batch_size, 240, 320, 3), np.uint8))
    done = 0
    while done < n_frames:
        encoder.encode_prepared(batch)
        done += batch_size
    return done


def timed(fn, *args):
    t = time.perf_counter()
    n = fn(*args)
    return n, time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="videos or folders (default: the shared real clips)")
    ap.add_argument("--encoder", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    videos = find_videos(args.inputs or [shared_data_dir() / "videos"])
    encoder = load_encoder(args.encoder, device=args.device)
    sampling = Sampling(fps=args.fps)
    print(f"encoder {encoder.id} on {getattr(encoder, 'device', 'cpu')}, {len(videos)} videos, "
          f"{args.fps} fps, batch {args.batch_size}, {args.workers} decode workers, "
          f"torch threads {torch.get_num_threads()}")
    encode_only(encoder, args.batch_size, args.batch_size)  # warm up kernels and allocator

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        s = embed_videos(videos, tmp, encoder, sampling, batch_size=args.batch_size,
                         progress=False, engine=LocalEngine(args.workers))
        pipe = (s.frames, time.perf_counter() - t)
    naive = timed(naive_loop, videos, encoder, sampling)
    dec = timed(decode_only, videos, sampling, encoder.image_size)
    enc = timed(encode_only, encoder, pipe[0], args.batch_size)

    rate = {name: n / secs for name, (n, secs) in
            {"pipeline": pipe, "naive": naive, "decode-only": dec, "encode-only": enc}.items()}
    print(f"{'':12} {'frames':>7} {'seconds':>8} {'frames/s':>9}")
    for name, (n, secs) in {"pipeline": pipe, "naive": naive, "decode-only": dec, "encode-only": enc}.items():
        print(f"{name:12} {n:7d} {secs:8.2f} {rate[name]:9.1f}")
    print(f"pipeline / naive        = {rate['pipeline'] / rate['naive']:.2f}x  (target >= 3x on CPU)")
    print(f"pipeline / encode-only  = {rate['pipeline'] / rate['encode-only']:.0%}  (target >= 90% on GPU)")
    bound = "decoding" if rate["decode-only"] < rate["encode-only"] else "encoding"
    print(f"bound by {bound}")


if __name__ == "__main__":
    main()
