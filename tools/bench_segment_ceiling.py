"""How far can boundary detection go on the segmentation benchmark? Supervised reference detectors.

    .venv/bin/python tools/bench_segment_ceiling.py

SBD and UVD learn no boundaries. To tell a weak detector from inputs that do not hold the answer,
this trains boundary classifiers *with* ground truth and scores them like tools/bench_segment.py
(benchmark world seed 2, 120 videos, +-1 s, 2-fps frame grid):

* features +-4 frames: an MLP on 9 consecutive embeddings of `--encoder` (default `video`, the input of
  every detector in procvid.segment);
* pixels, 1 frame: a small CNN on one 48-px frame;
* pixels, 9 frames: the same CNN on 9 stacked 48-px frames (+-2 s), so it sees motion.

Training data: the world the shipped models were trained on (seed 0, 120 videos); target: the frame
nearest each true boundary. Boundaries are the peaks of the predicted probability above a threshold
chosen on the tuning world (seed 3, 60 videos). These are references for the benchmark, not
detectors procvid ships: they need boundary labels of the same world.

Also prints the recall of the shipped sbd detector by kind of boundary (start or end of a step,
carried object or tool step), which shows where its misses are.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_segment import features_dir, prepare
from scipy.signal import find_peaks

from procvid.metrics.segmentation import boundary_prf, boundary_times
from procvid.segment import get_detector

WINDOW = 4  # frames on each side of the frame being classified
THRESHOLDS = np.round(np.arange(0.1, 0.95, 0.05), 2)
WORLDS = {"train": ("datasets/synth/train", 0, 120), "tune": ("datasets/synth/tune_seg", 3, 60),
          "bench": ("datasets/synth/bench_seg", 2, 120)}


def boundary_targets(video) -> np.ndarray:
    y = np.zeros(len(video.t), np.float32)
    for b in boundary_times(video.gt, video.t):
        y[np.argmin(np.abs(video.t - b))] = 1.0
    return y


def neighbours(n: int, window: int) -> np.ndarray:
    """[n, 2w+1] indices of frames i-w .. i+w, clamped to the video."""
    return np.clip(np.arange(n)[:, None] + np.arange(-window, window + 1)[None, :], 0, n - 1)


def train_classifier(net: torch.nn.Module, inputs, targets, steps: int, batch: int, lr: float) -> torch.nn.Module:
    """Binary cross-entropy on random samples; `inputs(idx)` builds the batch of sample indices idx."""
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.01)
    y = torch.from_numpy(targets)
    pos_weight = torch.tensor(3.0)  # ~1 frame in 8 is a boundary
    for _ in range(steps):
        idx = torch.randint(len(y), (batch,))
        loss = F.binary_cross_entropy_with_logits(net(inputs(idx.numpy()))[:, 0], y[idx], pos_weight=pos_weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def peaks_f1(videos, probs, threshold: float) -> tuple[float, float, float]:
    """Boundary P/R/F1 (micro over videos) of the peaks of each probability curve above threshold."""
    matched = num_pred = num_true = 0
    for video, p in zip(videos, probs):
        peaks = find_peaks(np.r_[0.0, p, 0.0], height=threshold)[0] - 1
        s = boundary_prf(video.t[peaks], boundary_times(video.gt, video.t), 1.0)
        matched, num_pred, num_true = matched + s.matched, num_pred + s.num_pred, num_true + s.num_true
    precision, recall = matched / max(num_pred, 1), matched / max(num_true, 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def reference_row(name: str, make_net, inputs: dict, data: dict, steps: int, batch: int, lr: float):
    """Train on the 'train' split, pick the threshold on 'tune', score 'bench' (inputs: one Stacked
    per split)."""
    targets = np.concatenate([boundary_targets(v) for v in data["train"]])
    torch.manual_seed(0)
    net = train_classifier(make_net(), inputs["train"], targets, steps, batch, lr)

    def probs(split):
        x = inputs[split]
        with torch.no_grad():
            batches = np.array_split(np.arange(x.n), max(1, x.n // 512))
            out = torch.sigmoid(torch.cat([net(x(i))[:, 0] for i in batches]))
        return np.split(out.numpy(), np.cumsum([len(v.t) for v in data[split]])[:-1])

    tune = probs("tune")
    threshold = max(THRESHOLDS, key=lambda h: peaks_f1(data["tune"], tune, h)[2])
    p, r, f1 = peaks_f1(data["bench"], probs("bench"), threshold)
    print(f"  {name:<24} B-P {p:.3f}  B-R {r:.3f}  B-F1 {f1:.3f}  (threshold {threshold:g} from the tuning world)",
          flush=True)


class Stacked:
    """Sample i of a set of videos: rows of `per_frame` (concatenated over videos) for frames
    i-w .. i+w of i's own video, stacked along the last axis."""

    def __init__(self, per_frame: list[np.ndarray], window: int):
        offsets = np.cumsum([0] + [len(a) for a in per_frame])[:-1]
        self.rows = np.concatenate([o + neighbours(len(a), window) for o, a in zip(offsets, per_frame)])
        self.data = np.concatenate(per_frame)
        self.n = len(self.rows)

    def __call__(self, idx: np.ndarray) -> torch.Tensor:
        x = self.data[self.rows[idx]]  # [B, 2w+1, ...]
        if x.ndim == 3:  # embeddings [B, 2w+1, D] -> [B, (2w+1) D]
            return torch.from_numpy(x.reshape(len(idx), -1).astype(np.float32))
        x = torch.from_numpy(x).permute(0, 1, 4, 2, 3).flatten(1, 2)  # pixels -> [B, (2w+1) 3, H, W]
        return x.float() / 255.0 - 0.5


def mlp(inputs: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(inputs, 256), torch.nn.GELU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(256, 1))


def cnn(channels: int) -> torch.nn.Module:
    layers, width = [], channels
    for out in (48, 64, 96):
        layers += [torch.nn.Conv2d(width, out, 3, 2, 1), torch.nn.GELU()]
        width = out
    return torch.nn.Sequential(*layers, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(width, 1))


def decode(videos, size: int, fps: float) -> list[np.ndarray]:
    from procvid.video import Sampling, read_frames

    out = []
    for v in videos:
        frames, times = read_frames(v.path, Sampling(fps=fps), size=size)
        if len(times) != len(v.t) or np.abs(times - v.t).max() > 1e-3:
            raise SystemExit(f"{v.id}: decoded frames do not line up with its features")
        out.append(frames)
    return out


def sbd_recall_by_kind(videos, tolerance: float = 1.0):
    """Recall of the default sbd detector per (step kind, start/end), greedy nearest matching."""
    from procvid.data.synthetic.tasks import task_spec

    det, hits = get_detector("sbd"), Counter()
    for v in videos:
        pred = np.array([s.start for s in det.detect(v.X, v.t)[1:]])
        used = np.zeros(len(pred), bool)
        spec = task_spec(v.id.rsplit("_", 1)[0])
        for start, end, step in sorted(v.gt):
            kind = "carried object" if spec.actions[int(step) - 1].kind in ("place", "move") else "tool step"
            for which, at in (("start", start), ("end", end)):
                d = np.where(used, np.inf, np.abs(pred - at)) if len(pred) else np.array([np.inf])
                j = int(np.argmin(d))
                found = d[j] <= tolerance
                used[j] |= found
                hits[kind, which, found] += 1
    for kind in ("carried object", "tool step"):
        print("  " + kind + ": " + ", ".join(
            f"{which}s {hits[kind, which, True] / max(1, hits[kind, which, True] + hits[kind, which, False]):.2f}"
            f" (n={hits[kind, which, True] + hits[kind, which, False]})" for which in ("start", "end")))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fps", type=float, default=2.0, help="sampling rate of features and frames")
    ap.add_argument("--encoder", default="video", help="features of the MLP reference and the sbd recall")
    ap.add_argument("--pixels", type=int, default=48, help="frame size of the pixel references")
    ap.add_argument("--steps", type=int, default=3000, help="training steps of each reference")
    args = ap.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = {}
    for split, (world, seed, n) in WORLDS.items():
        data[split], _ = prepare(Path(world), seed, n, features_dir(Path(world), args.encoder), args.fps,
                                 args.encoder)
    print(f"boundary P/R/F1 at +-1 s on {len(data['bench'])} benchmark videos (seed 2), trained on "
          f"{len(data['train'])} videos of seed 0 with their boundaries; {args.fps:g} fps")
    print("where the shipped sbd detector's misses are (recall by kind of boundary):")
    sbd_recall_by_kind(data["bench"])
    print("supervised references:")
    dim = data["train"][0].X.shape[1]
    features = {split: Stacked([v.X for v in videos], WINDOW) for split, videos in data.items()}
    reference_row("features, +-4 frames", lambda: mlp((2 * WINDOW + 1) * dim), features, data, args.steps, 256, 1e-3)
    frames = {split: decode(videos, args.pixels, args.fps) for split, videos in data.items()}
    for name, window in (("pixels, 1 frame", 0), ("pixels, 9 frames", WINDOW)):
        pixels = {split: Stacked(f, window) for split, f in frames.items()}
        reference_row(name, lambda w=window: cnn(3 * (2 * w + 1)), pixels, data, args.steps, 64, 2e-3)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
