"""Batch video embedding: decode ahead in threads, encode batches that mix frames of several
videos, write one feature-cache entry per video as soon as all its frames are encoded."""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from procvid import features
from procvid.batch import FailureLog, RunSummary, in_shard
from procvid.encoders.base import Encoder
from procvid.errors import ProcvidError, VideoError
from procvid.video import Sampling, iter_frames

log = logging.getLogger(__name__)

_DONE, _FAILED, _EXIT = object(), object(), object()  # queue message kinds


@dataclass
class _Job:
    path: Path
    rel: Path
    key: dict
    chunks: list = field(default_factory=list)  # encoded [n, D] arrays, in order
    times: list = field(default_factory=list)
    in_buffer: int = 0  # frames queued for encoding but not encoded yet
    decoded: bool = False
    failed: bool = False


def plan_jobs(videos, out_dir: Path, encoder_id: str, sampling: Sampling, frame_size, shard, overwrite,
              summary: RunSummary, failures: FailureLog) -> list[_Job]:
    """Keep this shard's videos, drop those whose cache entry is already valid."""
    videos = [(p, rel) for p, rel in videos if in_shard(str(rel), shard)]
    seen: dict[str, Path] = {}
    for p, rel in videos:
        if str(rel) in seen:
            raise ProcvidError(
                f"two inputs map to the same output name {rel}: {seen[str(rel)]} and {p}; "
                "pass their common parent folder instead so subfolders are kept"
            )
        seen[str(rel)] = p
    summary.total = len(videos)
    jobs = []
    for p, rel in videos:
        try:
            key = features.cache_key(p, encoder_id, sampling.to_dict(), frame_size)
        except OSError as e:
            failures.add(str(p), f"cannot read file ({e.strerror})")
            summary.failed += 1
            continue
        if not overwrite and features.is_valid(out_dir, rel, key):
            summary.skipped += 1
            continue
        jobs.append(_Job(p, rel, key))
    return jobs


def embed_videos(
    videos: list[tuple[Path, Path]],
    out_dir: str | Path,
    encoder: Encoder,
    sampling: Sampling = Sampling(fps=1.0),
    batch_size: int = 64,
    workers: int = 2,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    progress: bool = True,
    engine: str = "local",
) -> RunSummary:
    """Embed (path, relative output name) pairs, as from `video.find_videos`, into `out_dir`.

    Failed videos are listed in out_dir/failures.jsonl with their reason; the run goes on.
    engine: "local" (decoding threads + this process's encoder) or "ray" (procvid.ray_engine).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    summary = RunSummary()
    failures = FailureLog(out_dir)
    frame_size = encoder.image_size
    if encoder.fps and sampling.fps != encoder.fps:  # its time window is in frames, not seconds
        log.warning("%s was trained on frames sampled at %g fps; sampling %s changes its time window",
                    encoder.id, encoder.fps, sampling.to_dict())
    jobs = plan_jobs(videos, out_dir, encoder.id, sampling, frame_size, shard, overwrite, summary, failures)
    bar = tqdm(total=summary.total, initial=summary.skipped + summary.failed, unit="video",
               disable=not progress, dynamic_ncols=True)

    def fail(job: _Job, reason: str):
        if not job.failed:
            job.failed = True
            failures.add(str(job.path), reason)
            summary.failed += 1
            bar.update(1)
            log.warning("%s: %s", job.path, reason)

    def finish(job: _Job):
        if job.failed or not job.decoded or job.in_buffer:
            return
        if not job.times:
            return fail(job, "no frames could be decoded")
        emb = encoder.finish_sequence(np.concatenate(job.chunks))
        features.write_entry(out_dir, job.rel, emb, np.concatenate(job.times), job.key)
        summary.done += 1
        summary.frames += len(emb)
        job.chunks, job.times = [], []
        bar.update(1)
        bar.set_postfix_str(f"{summary.frames / max(bar.format_dict['elapsed'], 1e-9):.1f} frames/s")

    try:
        if engine == "ray" and jobs:
            from procvid.ray_engine import embed_jobs

            for job, frames, error in embed_jobs(jobs, out_dir, encoder, sampling, batch_size, progress):
                if error:
                    fail(job, error)
                else:
                    summary.done += 1
                    summary.frames += frames
                    bar.update(1)
        else:
            _run_overlapped(jobs, encoder, sampling, frame_size, batch_size, workers, fail, finish)
    finally:
        bar.close()
    return summary


def _run_overlapped(jobs, encoder, sampling, frame_size, batch_size, workers, fail, finish):
    """Decoder threads feed prepared frame chunks through a bounded queue; this thread encodes."""
    todo: queue.Queue = queue.Queue()
    for j in range(len(jobs)):
        todo.put(j)
    out: queue.Queue = queue.Queue(maxsize=4 * max(1, workers))
    stop = threading.Event()

    def decode_worker():
        try:
            while not stop.is_set():
                try:
                    j = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    for frames, times in iter_frames(jobs[j].path, sampling, size=frame_size, chunk=batch_size):
                        if stop.is_set():
                            return
                        out.put((j, encoder.prepare_images(frames), times))
                    out.put((j, _DONE, None))
                except VideoError as e:
                    out.put((j, _FAILED, e.reason))
                except Exception as e:  # keep the batch going; the reason lands in failures.jsonl
                    out.put((j, _FAILED, f"{type(e).__name__}: {e}"))
        finally:
            out.put((None, _EXIT, None))

    n_workers = max(1, min(workers, len(jobs)))
    threads = [threading.Thread(target=decode_worker, daemon=True) for _ in range(n_workers if jobs else 0)]
    for t in threads:
        t.start()
    buffer: list[tuple[int, torch.Tensor]] = []
    buffered = 0

    def flush():
        nonlocal buffer, buffered
        if not buffer:
            return
        batch = torch.cat([x for _, x in buffer])
        emb = np.concatenate([encoder.encode_prepared(batch[i : i + batch_size])
                              for i in range(0, len(batch), batch_size)])
        offset = 0
        owners = []
        for j, x in buffer:
            jobs[j].chunks.append(emb[offset : offset + len(x)])
            jobs[j].in_buffer -= len(x)
            offset += len(x)
            owners.append(j)
        buffer, buffered = [], 0
        for j in dict.fromkeys(owners):
            finish(jobs[j])

    exited = 0
    try:
        while exited < len(threads):
            j, payload, times = out.get()
            if payload is _EXIT:
                exited += 1
            elif payload is _FAILED:
                fail(jobs[j], times)
            elif payload is _DONE:
                jobs[j].decoded = True
                finish(jobs[j])
            elif not jobs[j].failed:
                buffer.append((j, payload))
                buffered += len(payload)
                jobs[j].in_buffer += len(payload)
                jobs[j].times.append(times)
                if buffered >= batch_size:
                    flush()
        flush()
    finally:
        stop.set()
