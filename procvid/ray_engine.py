"""Scale-out on Ray Data: the same per-video work as the local engine, spread over a cluster.

Embedding is a two-stage Ray Data pipeline: decoding in CPU tasks, encoding in a pool of actors
that each hold the encoder (given `num_gpus=1` each when the cluster has GPUs) and write each
video's cache entry themselves, so outputs are idempotent per video exactly as with the local
engine. Connect to a cluster with RAY_ADDRESS; otherwise a local Ray instance is started.

A decoded video travels as one record of uint8 frames at the encoder's input size
(about 150 KB per frame at 224 px: a 10-minute video at 1 fps is 90 MB).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np


def init_ray() -> None:
    import ray

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)


def _decode(row: dict) -> dict:
    from procvid.errors import VideoError
    from procvid.video import Sampling, iter_frames

    try:
        chunks = list(iter_frames(row["path"], Sampling(**json.loads(row["sampling"])), size=row["size"]))
        if not chunks:
            raise VideoError(row["path"], "no frames could be decoded")
        frames = np.concatenate([c[0] for c in chunks])
        times = np.concatenate([c[1] for c in chunks])
        return {**row, "frames": frames, "times": times, "error": ""}
    except VideoError as e:
        return {**row, "frames": np.zeros((0, 1, 1, 3), np.uint8), "times": np.zeros(0), "error": e.reason}
    except Exception as e:  # keep the batch going; the reason lands in failures.jsonl
        return {**row, "frames": np.zeros((0, 1, 1, 3), np.uint8), "times": np.zeros(0),
                "error": f"{type(e).__name__}: {e}"}


class _EncodeAndWrite:
    """Actor: holds one encoder; encodes a decoded video and writes its feature-cache entry."""

    def __init__(self, spec: str, device: str, precision: str, batch_size: int, out_dir: str):
        from procvid.encoders import load_encoder

        self.encoder = load_encoder(spec, device=device, precision=precision)
        self.batch_size = batch_size
        self.out_dir = out_dir

    def __call__(self, row: dict) -> dict:
        from procvid import features

        result = {"path": row["path"], "error": row["error"], "frames": 0}
        if row["error"]:
            return result
        frames = row["frames"]
        emb = self.encoder.encode_images(frames, self.batch_size)
        features.write_entry(self.out_dir, row["rel"], emb, row["times"], json.loads(row["key"]))
        result["frames"] = len(emb)
        return result


def embed_jobs(jobs: list, out_dir: Path, encoder, sampling, batch_size: int, progress: bool):
    """Run planned embedding jobs (procvid.embedding._Job) on Ray; yields (job, frames, error)."""
    import ray
    import ray.data

    init_ray()
    ray.data.DataContext.get_current().enable_progress_bars = progress
    gpus = ray.cluster_resources().get("GPU", 0)
    device = "cuda" if gpus else "cpu"
    rows = [{"path": str(j.path), "rel": str(j.rel), "key": json.dumps(j.key), "size": encoder.image_size,
             "sampling": json.dumps(sampling.to_dict())} for j in jobs]
    actors = max(1, int(gpus) if gpus else min(2, int(ray.cluster_resources().get("CPU", 1))))
    ds = (ray.data.from_items(rows)
          .map(_decode)
          .map(_EncodeAndWrite, concurrency=actors, num_gpus=1 if gpus else 0,
               fn_constructor_kwargs={"spec": encoder.spec, "device": device, "precision": "auto",
                                      "batch_size": batch_size, "out_dir": str(out_dir)}))
    by_path = {str(j.path): j for j in jobs}
    for row in ds.iter_rows():
        yield by_path[row["path"]], int(row["frames"]), row["error"]


def _segment_task(row: dict) -> dict:
    from procvid.segment import get_detector
    from procvid.segment.run import Item, try_segment

    item = Item(Path(row["rel"]), Path(row["video"]) if row["video"] else None, Path(row["features"]))
    paths = {k: Path(v) for k, v in json.loads(row["paths"]).items()}
    _, frames, error, encoder_id = try_segment(
        item, get_detector(row["method"], **json.loads(row["params"])), row["num_segments"] or None, paths,
        row["keyframes"] or None, row["timeline"], json.loads(row["gt"]) or None)
    return {"rel": row["rel"], "frames": frames, "error": error, "encoder": encoder_id}


def segment_items(todo: list, detector, num_segments, keyframes, timeline, truth, progress: bool):
    """Segment (item, paths) pairs on Ray; yields (item, frames, error, encoder id)."""
    import ray.data

    init_ray()
    ray.data.DataContext.get_current().enable_progress_bars = progress
    params = detector.to_dict()
    method = params.pop("name")
    gt = json.dumps({k: [list(s) for s in v] for k, v in (truth or {}).items()})
    rows = [{"rel": str(it.rel), "video": str(it.video) if it.video else "", "features": str(it.features),
             "method": method, "params": json.dumps(params), "num_segments": num_segments or 0,
             "paths": json.dumps({k: str(v) for k, v in paths.items()}), "keyframes": keyframes or "",
             "timeline": timeline, "gt": gt} for it, paths in todo]
    by_rel = {str(it.rel): it for it, _ in todo}
    for row in ray.data.from_items(rows).map(_segment_task).iter_rows():
        yield by_rel[row["rel"]], int(row["frames"]), row["error"], row["encoder"]
