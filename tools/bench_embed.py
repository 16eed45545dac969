"""Benchmark `procvid embed` against a naive loop and against its own bound, side by side on the same
videos and encoder.

Frames per second of:
  pipeline       procvid's embed_videos (decode ahead in threads, resize while decoding, batches
                 mixing videos, torch threads as embed_videos sets them)
  naive          decode each sampled frame separately (random access, full resolution), prepare
                 it alone, encode one frame at a time (torch's default threads)
  decode-only    procvid's decoder alone (at the encoder's input size)
  pyav-threaded  the reference decoder for the same frames: PyAV with thread_type AUTO decoding every
                 frame and converting (one reformatter) only the sampled ones, at the same size
  encode-only    the encoder alone on already-decoded frames, in its fixed-size passes, with the
                 torch threads the pipeline uses
After one untimed warm-up pass of the pipeline, each repeat measures all of them back to back (a loaded
machine slows them alike); the table gives
the median rate over `--repeats`, then the ratios the targets are about:
  pipeline / min(decode-only, encode-only) >= 0.9   (overlap reaches the bound)
  (also printed: pipeline / (1 / (1/decode-only + 1/encode-only)), the bound when decoding and encoding
  share the same CPU cores, as they do without a GPU)
  pipeline / naive >= 3x                            (on CPU, for the default and ViT-B-32 encoders)
  decode-only / pyav-threaded >= 0.9                (decoding at the decoder's rate)

    python tools/bench_embed.py                                   # shared real clips, default encoder
    python tools/bench_embed.py --encoder ViT-B-32:random --repeats 3
    python tools/bench_embed.py datasets/synth/tune_seg/videos --encoder video
    python tools/bench_embed.py --run --baseline /tmp/base        # procvid run, this tree vs an old one
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from procvid.embedding import embed_videos  # noqa: E402
from procvid.threads import encode_threads  # noqa: E402
from procvid.encoders import load_encoder  # noqa: E402
from procvid.engine import LocalEngine  # noqa: E402
from procvid.paths import shared_data_dir  # noqa: E402
from procvid.video import Sampling, VideoReader, find_videos, iter_frames  # noqa: E402


def naive_loop(videos, encoder, sampling) -> int:
    """What research code often does: random access per frame at full size, batch of one."""
    import decord

    n = 0
    for path, _ in videos:
        with VideoReader(path) as reader:  # same frame choice as the pipeline: one per target time
            info = reader.info
        vr = decord.VideoReader(str(path), ctx=decord.cpu(0))
        idx = np.minimum((sampling.target_times(info.duration) * info.fps).astype(int), len(vr) - 1)
        for i in np.unique(idx):
            frame = vr[int(i)].asnumpy()
            encoder.encode_prepared(encoder.prepare_images(frame[None]))
            n += 1
    return n


def decode_only(videos, sampling, size) -> int:
    return sum(len(f) for path, _ in videos for f, _ in iter_frames(path, sampling, size=size))


def pyav_threaded(videos, sampling, size) -> int:
    """PyAV, frame-threaded, every frame decoded, the frame on screen at each target time converted."""
    import av
    from av.video.reformatter import VideoReformatter

    n = 0
    for path, _ in videos:
        with VideoReader(path, size=size, backend="pyav") as reader:
            w, h = reader.out_size
            targets = sampling.target_times(reader.info.duration)
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            t0 = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            reformatter, k, prev = VideoReformatter(), 0, None
            for frame in container.decode(stream):
                t = float(frame.pts * frame.time_base) - t0 if frame.pts is not None else 0.0
                if prev is not None and k < len(targets) and targets[k] + 1e-6 < t:
                    reformatter.reformat(prev, width=w, height=h, format="rgb24").to_ndarray()
                    n += 1
                    while k < len(targets) and targets[k] + 1e-6 < t:
                        k += 1
                prev = frame
            if prev is not None and k < len(targets):
                reformatter.reformat(prev, width=w, height=h, format="rgb24").to_ndarray()
                n += 1
    return n


def encode_only(encoder, frames: np.ndarray, n_frames: int) -> int:
    """The encoder on decoded frames (prepare + fixed-size passes of a block each, the last one padded
    as in the pipeline), as many frames as the pipeline's."""
    done = 0
    while done < n_frames:
        take = frames[: n_frames - done]
        encoder.encode_blocks(encoder.prepare_images(take))
        done += len(take)
    return done


def timed(fn, *args):
    """(frames, wall seconds, CPU seconds of this process, all its threads)."""
    t, c = time.perf_counter(), time.process_time()
    n = fn(*args)
    return n, time.perf_counter() - t, time.process_time() - c


def bench_embed(args) -> None:
    videos = find_videos(args.inputs or [shared_data_dir() / "videos"])
    encoder = load_encoder(args.encoder, device=args.device)
    sampling = Sampling(fps=args.fps)
    cpu = getattr(encoder, "device", torch.device("cpu")).type == "cpu"
    threads = encode_threads(args.workers) if cpu else torch.get_num_threads()
    print(f"encoder {encoder.id} on {getattr(encoder, 'device', 'cpu')}, {len(videos)} videos, {args.fps} fps, "
          f"batch {args.batch_size}, {args.workers} decode workers, torch threads {threads} (of "
          f"{torch.get_num_threads()}), {args.repeats} repeats")
    # frames the encoder would get: a block of the first video's sampled frames at its input size
    sample = next(iter_frames(videos[0][0], sampling, size=encoder.image_size, chunk=encoder.block_size))[0]
    sample = np.concatenate([sample] * -(-encoder.block_size // len(sample)))[: encoder.block_size]
    default_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    encode_only(encoder, sample, len(sample))  # warm up kernels and allocator
    torch.set_num_threads(default_threads)
    rates: dict[str, list[float]] = {}
    frames: dict[str, int] = {}
    cpu_per_frame: dict[str, list[float]] = {}

    def note(name, n, secs, cpu_secs=None):
        rates.setdefault(name, []).append(n / secs)
        frames[name] = n
        if cpu_secs is not None:
            cpu_per_frame.setdefault(name, []).append(cpu_secs / max(n, 1))

    # one untimed pass first: the pipeline is measured first in every repeat, so without it the first
    # repeat alone would pay for cold file caches and first-use costs (decoder libraries, batch shapes)
    with tempfile.TemporaryDirectory() as tmp:
        embed_videos(videos, tmp, encoder, sampling, batch_size=args.batch_size, progress=False,
                     engine=LocalEngine(args.workers))
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            s = embed_videos(videos, tmp, encoder, sampling, batch_size=args.batch_size, progress=False,
                             engine=LocalEngine(args.workers))
            note("pipeline", s.frames, time.perf_counter() - t)
        if not args.no_naive:  # research code as it is usually run: torch's default threads
            note("naive", *timed(naive_loop, videos, encoder, sampling))
        torch.set_num_threads(threads)  # the encoder gets what it gets in the pipeline
        note("encode-only", *timed(encode_only, encoder, sample, s.frames))
        torch.set_num_threads(default_threads)
        note("decode-only", *timed(decode_only, videos, sampling, encoder.image_size))
        note("pyav-threaded", *timed(pyav_threaded, videos, sampling, encoder.image_size))

    rate = {name: statistics.median(r) for name, r in rates.items()}
    print(f"{'':14} {'frames':>7} {'frames/s (median)':>18}  per repeat")
    for name in rates:
        print(f"{name:14} {frames[name]:7d} {rate[name]:18.1f}  {' '.join(f'{r:.1f}' for r in rates[name])}")
    bound_name = "decode-only" if rate["decode-only"] < rate["encode-only"] else "encode-only"
    bound = statistics.median(p / min(d, e) for p, d, e in zip(rates["pipeline"], rates["decode-only"],
                                                                rates["encode-only"]))
    print(f"pipeline / bound ({bound_name}) = {bound:.2f}  (target >= 0.9)")
    # Without a GPU both stages need the same cores: a frame costs the CPU seconds of decoding it plus
    # those of encoding it (measured alone), so the cores bound the pipeline at cores / that sum as well
    # as at min(decode-only, encode-only); on a GPU the min() is the bound.
    cores = os.cpu_count() or 1
    shared = statistics.median(
        p / min(d, e, cores / (cd + ce)) for p, d, e, cd, ce in zip(
            rates["pipeline"], rates["decode-only"], rates["encode-only"], cpu_per_frame["decode-only"],
            cpu_per_frame["encode-only"]))
    cpu_ms = {k: 1000 * statistics.median(v) for k, v in cpu_per_frame.items()}
    print(f"pipeline / CPU-time bound      = {shared:.2f}  (min(decode-only, encode-only, {cores} cores / "
          f"CPU per frame: decoding {cpu_ms['decode-only']:.2f} ms + encoding {cpu_ms['encode-only']:.2f} ms))")
    if "naive" in rate:
        naive = statistics.median(p / n for p, n in zip(rates["pipeline"], rates["naive"]))
        print(f"pipeline / naive               = {naive:.2f}x  (target >= 3x on CPU)")
    dec = statistics.median(d / p for d, p in zip(rates["decode-only"], rates["pyav-threaded"]))
    print(f"decode-only / pyav-threaded    = {dec:.2f}  (target >= 0.9)")
    if len(frames) and frames["decode-only"] != frames["pyav-threaded"]:
        print(f"note: pyav-threaded converted {frames['pyav-threaded']} frames, procvid {frames['decode-only']}")


def bench_run(args) -> None:
    """`procvid run --no-generate` on a synthetic world, this tree against --baseline, back to back:
    a first run and a rerun of the finished run, each `--repeats` times (fresh output folders)."""
    import os
    import subprocess

    from procvid.data.synthetic import ensure_world

    world = ensure_world(args.world, args.videos, args.seed, min_duration=10, max_duration=20, progress=False)
    world = world.resolve()  # the runs start in a scratch folder
    trees = {"new": Path(__file__).resolve().parent.parent}
    if args.baseline:
        trees = {"old": Path(args.baseline).resolve(), **trees}
    times: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            for name, tree in trees.items():
                out = Path(tmp) / f"{name}{r}"
                cmd = [sys.executable, "-m", "procvid.cli", "run", str(world / "videos"), "--annotations", str(world),
                       "--config", "synthetic", "--no-generate", "--no-progress", "--out", str(out)]
                env = {**os.environ, "PYTHONPATH": str(tree), "TQDM_DISABLE": "1"}
                for what in ("run", "rerun"):
                    t = time.perf_counter()
                    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
                    secs = time.perf_counter() - t
                    if done.returncode:
                        raise SystemExit(f"{name} {what} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
                    times.setdefault(f"{name} {what}", []).append(secs)
                    print(f"repeat {r}: {name:3} {what:5} {secs:7.1f} s", flush=True)
    print(f"procvid run --no-generate on {args.videos} synthetic videos of 10-20 s (seed {args.seed}); medians:")
    for key, values in times.items():
        print(f"  {key:10} {statistics.median(values):7.1f} s")
    if args.baseline:
        for what in ("run", "rerun"):
            ratio = statistics.median(o / n for o, n in zip(times[f"old {what}"], times[f"new {what}"]))
            print(f"  {what}: {ratio:.2f}x faster than the baseline" + ("  (target >= 2x)" if what == "run" else ""))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("inputs", nargs="*", help="videos or folders (default: the shared real clips)")
    ap.add_argument("--encoder", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--fps", type=float, default=2.0)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-naive", action="store_true", help="skip the naive loop (slow with big encoders)")
    ap.add_argument("--run", action="store_true", help="time `procvid run` instead (see bench_run)")
    ap.add_argument("--baseline", metavar="PATH", help="--run: an old tree to time side by side "
                                                       "(e.g. git archive HEAD | tar -x -C /tmp/base)")
    ap.add_argument("--world", default="datasets/synth/run240_seed5", help="--run: the synthetic world's folder")
    ap.add_argument("--videos", type=int, default=240, help="--run: videos in the world")
    ap.add_argument("--seed", type=int, default=5, help="--run: the world's seed")
    args = ap.parse_args(argv)
    if args.run:
        bench_run(args)
    else:
        bench_embed(args)


if __name__ == "__main__":
    main()
