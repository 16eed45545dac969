"""Seconds to segment one hour of 1-fps, 512-d frame embeddings with each registered detector.

    .venv/bin/python tools/bench_segment_speed.py [--hours 1] [--fps 1] [--dim 512] [--repeats 5]

The input is a synthetic procedure: steps of 10-60 s, each a cluster that drifts slowly, with
per-frame jitter of about the size seen in CLIP features (cosine ~0.9 within a step). Prints
the median wall time of several runs, unknown K and known K (K = true number of steps).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from procvid.registry import DETECTORS
from procvid.segment import get_detector


def synthetic_procedure(seconds: float, fps: float, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    T = int(seconds * fps)
    lengths = []
    while sum(lengths) < T:
        lengths.append(int(rng.uniform(10, 60) * fps))
    lengths[-1] -= sum(lengths) - T
    lengths = [n for n in lengths if n > 0]
    centres = rng.normal(size=(len(lengths), dim))
    drift = rng.normal(size=(len(lengths), dim))
    phase = np.concatenate([np.linspace(0, 1, n) for n in lengths])
    step = np.repeat(np.arange(len(lengths)), lengths)
    X = centres[step] + 0.5 * phase[:, None] * drift[step] + 0.3 * rng.normal(size=(T, dim))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(np.float32), np.arange(T) / fps, len(lengths)


def time_it(fn, repeats: int) -> float:
    fn()  # warm-up: imports, allocator
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=1.0)
    ap.add_argument("--fps", type=float, default=1.0)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)

    X, t, k = synthetic_procedure(args.hours * 3600, args.fps, args.dim)
    print(f"input: {X.shape[0]} frames x {X.shape[1]} dims, {k} steps; median of {args.repeats} runs")
    print(f"{'detector':10s} {'unknown K (s)':>14s} {'segments':>9s} {'known K (s)':>12s}")
    for name in DETECTORS.names():
        det = get_detector(name)
        dim = getattr(det, "input_dim", args.dim)  # a learned detector needs its training features' size
        X, t, k = synthetic_procedure(args.hours * 3600, args.fps, dim)
        found = len(det.detect(X, t))
        unknown = time_it(lambda: det.detect(X, t), args.repeats)
        known = time_it(lambda: det.detect(X, t, num_segments=k), args.repeats)
        print(f"{name:10s} {unknown:14.4f} {found:9d} {known:12.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
