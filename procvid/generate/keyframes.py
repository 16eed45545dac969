"""Key frames of synthetic-world videos: the scene before the first step and at the end of each step.

Key frame 0 of a video is its first frame (the initial scene); key frame k is the last frame labelled
with the k-th performed step. With `window` > 1 each key frame comes with the frames just before it
(the last `window` frames of the step, or the first `window` frames of the video), which training uses
as augmentation: they show the same state with the hand at slightly different places.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError


@dataclass
class VideoKeyFrames:
    video_id: str
    task_id: str
    order: list[int]  # step ids in performed order; key frame k (k >= 1) ends step order[k - 1]
    frames: np.ndarray  # uint8 [len(order) + 1, window, H, W, 3]; [:, -1] are the key frames proper


def key_frame_windows(labels: np.ndarray, window: int = 1) -> tuple[list[int], np.ndarray]:
    """Performed step order and frame indices [len(order) + 1, window] of each key frame's window."""
    labels = np.asarray(labels)
    ends = [i for i in range(len(labels)) if labels[i] > 0 and (i + 1 == len(labels) or labels[i + 1] != labels[i])]
    starts = [i for i in range(len(labels)) if labels[i] > 0 and (i == 0 or labels[i - 1] != labels[i])]
    order = [int(labels[i]) for i in ends]
    before = max(1, starts[0] if starts else len(labels))  # frames before the first step
    rows = [np.minimum(np.arange(window)[::-1], before - 1)]  # ends with frame 0
    for s, e in zip(starts, ends):
        rows.append(np.clip(np.arange(e - window + 1, e + 1), s, None))  # stay inside the step
    return order, np.stack(rows)


def resize_square(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 [N, H, W, 3] -> [N, size, size, 3]: centre crop to a square, area-average resize."""
    import torch
    import torch.nn.functional as F

    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    x = torch.from_numpy(np.ascontiguousarray(frames[:, top:top + side, left:left + side])).permute(0, 3, 1, 2)
    if side != size:
        x = F.interpolate(x.float(), size=(size, size), mode="area" if side > size else "bilinear",
                          **({} if side > size else {"align_corners": False}))
        x = x.round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def world_videos(world: str | Path, videos: list[str] | None = None) -> tuple[list[dict], list[dict]]:
    """tasks.json entries and videos.csv rows of a synthetic world (optionally only `videos`)."""
    world = Path(world)
    if not (world / "videos.csv").exists():
        raise ProcvidError(f"{world}: not a synthetic world (no videos.csv); create one with `procvid synth`")
    tasks = json.loads((world / "tasks.json").read_text())
    with open(world / "videos.csv") as f:
        rows = [r for r in csv.DictReader(f) if videos is None or r["video_id"] in videos]
    return tasks, rows


def load_key_frames(world: str | Path, size: int | None = None, window: int = 1, videos: list[str] | None = None,
                    progress: bool = True) -> list[VideoKeyFrames]:
    """Key frames (resized to `size` when given) of every video of a synthetic world."""
    from tqdm import tqdm

    from procvid.video import Sampling, read_frames

    world = Path(world)
    _, rows = world_videos(world, videos)
    out = []
    for row in tqdm(rows, desc="decoding key frames", unit="video", disable=not progress):
        labels = np.load(world / "labels" / f"{row['video_id']}.npy")
        frames, _ = read_frames(world / row["path"], Sampling(every=1))
        order, index = key_frame_windows(labels[: len(frames)], window)
        picked = frames[np.minimum(index, len(frames) - 1)]  # [S+1, window, H, W, 3]
        if size is not None:
            picked = resize_square(picked.reshape(-1, *picked.shape[2:]), size).reshape(*index.shape, size, size, 3)
        out.append(VideoKeyFrames(row["video_id"], row["task_id"], order, picked))
    return out
