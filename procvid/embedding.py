"""The embed stage: videos -> feature cache entries (procvid.features), one per video.

Per video the work is: decode the sampled frames (``produce``, CPU), encode them in fixed-size
forward passes (``consume``, the encoder) and write the entry once all its frames are encoded
(``finish``). An engine (procvid.engine) runs these: the local one decodes ahead in threads and
lets frames of several videos share a forward pass; the Ray one spreads them over a cluster.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from procvid import features
from procvid.batch import FailureLog, Progress, RunSummary, in_shard
from procvid.encoders import EncoderSetup
from procvid.encoders.base import Encoder
from procvid.engine import LocalEngine
from procvid.threads import encode_threads, torch_threads
from procvid.errors import ProcvidError, VideoError
from procvid.video import DecodeReport, Sampling, iter_frames

log = logging.getLogger(__name__)


@dataclass
class EmbedJob:
    """One video to embed: its path, output name (relative path) and cache key."""

    path: Path
    rel: Path
    key: dict


def plan_jobs(videos, out_dir: Path, encoder_id: str, sampling: Sampling, frame_size, shard, overwrite,
              summary: RunSummary, failures: FailureLog, store=None) -> list[EmbedJob]:
    """Keep this shard's videos, drop those whose cache entry is already current. store: the
    procvid.shards.ShardStore of the shard layout (None: per-video files); jobs then go shard by shard."""
    videos = [(p, rel) for p, rel in videos if in_shard(str(rel), shard)]
    if store is not None:  # shard by shard: each features shard is read once for the checks below
        videos = store.ordered(videos, lambda v: features.entry_key(v[1]))
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
            summary.fail(failures, str(p), f"cannot read file ({e.strerror})")
            continue
        current = (store.get(features.entry_key(rel), features.stored_key(key)) is not None if store is not None
                   else features.is_valid(out_dir, rel, key))
        if not overwrite and current:
            summary.skipped += 1
            continue
        jobs.append(EmbedJob(p, rel, key))
    return jobs


class KeptFrames:
    """The sampled frames the embed stage decoded, kept for the next stage's key-frame thumbnails
    (procvid.segment.batch) so that it does not decode them again by seeking (a run spent more on
    that than on detecting the boundaries).

    Frames are kept at most `short_side` pixels on their short side (smaller when the encoder
    decodes smaller: 48 px for the `video` encoder) and up to `max_bytes` in all; a video that does
    not fit is not kept (its thumbnails are decoded by seeking, at the same size). Thread-safe: the
    decoding threads add, the segment stage takes."""

    def __init__(self, short_side: int = 128, max_bytes: int = 256 << 20):
        import threading

        self.short_side, self.max_bytes = short_side, max_bytes
        self.bytes = 0
        self._videos: dict[str, tuple[list, list]] = {}  # rel -> (time arrays, frame arrays)
        self._full: set[str] = set()
        self._lock = threading.Lock()

    def add(self, rel, frames: np.ndarray, times: np.ndarray) -> None:
        key = str(rel)
        if key in self._full:
            return
        frames = self._shrunk(frames)
        with self._lock:
            if self.bytes + frames.nbytes > self.max_bytes:
                self._full.add(key)
                self._drop(key)
                return
            self.bytes += frames.nbytes
            held = self._videos.setdefault(key, ([], []))
            held[0].append(np.asarray(times, np.float64))
            held[1].append(frames)

    def _shrunk(self, frames: np.ndarray) -> np.ndarray:
        h, w = frames.shape[1:3]
        if min(h, w) <= self.short_side:
            return frames
        from PIL import Image

        from procvid.video import _resized

        size = _resized(w, h, self.short_side)
        return np.stack([np.asarray(Image.fromarray(f).resize(size, Image.BILINEAR)) for f in frames])

    def _drop(self, key: str) -> None:
        held = self._videos.pop(key, None)
        if held:
            self.bytes -= sum(f.nbytes for f in held[1])

    def forget(self, rel) -> None:
        with self._lock:
            self._drop(str(rel))

    def take(self, rel, times) -> list[np.ndarray] | None:
        """The kept frames at exactly these `times` (the video's feature timestamps), and forget the
        video; None when it was not kept (then decode them: procvid.video.frames_at)."""
        with self._lock:
            held = self._videos.get(str(rel))
            self._drop(str(rel))
        if not held:
            return None
        kept_times, frames = np.concatenate(held[0]), np.concatenate(held[1])
        idx = np.searchsorted(kept_times, np.asarray(times, np.float64))
        idx = np.minimum(idx, len(kept_times) - 1)
        if not np.allclose(kept_times[idx], times, rtol=0, atol=1e-9):
            return None
        return [frames[i] for i in idx]


class _Decode:
    """produce: a video's sampled frames at the encoder's input size, in chunks.

    Each chunk's aux is ``{"times": timestamps, "decode": DecodeReport.to_dict()}``; the report is
    final only once decoding has ended, so the last chunk is held back until then and carries it
    (earlier chunks carry the report so far: same fields, which Ray's row format wants). With
    `keep`, the frames are also kept there (KeptFrames)."""

    def __init__(self, sampling: Sampling, size: int | None, chunk: int, keep: KeptFrames | None = None):
        self.sampling, self.size, self.chunk, self.keep = sampling, size, chunk, keep

    def __call__(self, job: EmbedJob):
        report = DecodeReport()
        held = None
        for frames, times in iter_frames(job.path, self.sampling, size=self.size, chunk=self.chunk, report=report):
            if self.keep is not None:
                self.keep.add(job.rel, frames, times)
            if held is not None:
                yield held[0], {"times": held[1], "decode": report.to_dict()}
            held = (frames, times)
        if held is not None:
            yield held[0], {"times": held[1], "decode": report.to_dict()}


# A video whose decoded frames end (or, next to decode errors, pause) more than
# max(_MISSING_S, _MISSING_FRACTION x duration) short of the container's duration is not cached: a
# file cut short (an interrupted download or copy keeps the index, so the duration is the full one)
# or damaged. Healthy files end within a frame of their duration (all shared clips and synthetic
# videos: < 0.1 s); the margin is for durations that are not the video's own (a container duration
# that counts a longer audio track, one estimated from the bitrate), at the price of letting a file
# that lost less than that at its end pass. Decode errors that cost no more than that (a damaged
# packet skipped, a decord failure that PyAV recovered) are recorded in the sidecar's `decode` and
# do not fail the video; FFmpeg's log messages (concealed slice errors) are not seen at all.
_MISSING_S = 2.0
_MISSING_FRACTION = 0.10


def _incomplete(decode: dict) -> str | None:
    """Why a decode (DecodeReport.to_dict()) is too incomplete to cache, or None."""
    duration, start, end = decode["duration"], decode["start"], decode["end"]
    allowed = max(_MISSING_S, _MISSING_FRACTION * duration)
    if duration - end > allowed:
        errors = f"; {decode['errors']} decode errors, first: {decode['first_error']}" if decode["errors"] else ""
        return f"decoded only {start:.1f}–{end:.1f} s of {duration:.1f} s (file truncated or damaged{errors})"
    if decode["errors"] and decode["largest_gap"] > allowed:
        a = decode["gap_at"]
        return (f"no frames decoded between {a:.1f} and {a + decode['largest_gap']:.1f} s of {duration:.1f} s "
                f"(damaged stream; {decode['errors']} decode errors, first: {decode['first_error']})")
    return None


def _encode(encoder: Encoder, chunks: list[np.ndarray]) -> list[np.ndarray]:
    """consume: per-frame vectors of frame chunks, possibly of several videos and sizes (any
    grouping gives the same vectors)."""
    import torch

    if not chunks:
        return []
    vectors = encoder.encode_blocks(torch.cat([encoder.prepare_images(c) for c in chunks]))
    return np.split(vectors, np.cumsum([len(c) for c in chunks])[:-1])


class _Write:
    """finish: one video's embeddings from its per-frame vectors, written as a cache entry (or, for
    the shard layout, returned as a row for the driver to put in its shard)."""

    def __init__(self, out_dir: Path, rows: bool = False):
        self.out_dir, self.rows = out_dir, rows

    def __call__(self, encoder: Encoder, job: EmbedJob, outputs: list, auxes: list) -> int:
        if not outputs or not sum(len(o) for o in outputs):
            raise VideoError(job.path, "no frames could be decoded")
        # the final report (see _Decode); plain Python values whichever engine carried it
        decode = {k: v.item() if isinstance(v, np.generic) else v for k, v in dict(auxes[-1]["decode"]).items()}
        reason = _incomplete(decode)
        if reason:
            raise VideoError(job.path, reason)
        emb = encoder.finish_sequence(np.concatenate(outputs))
        times = np.concatenate([np.asarray(a["times"], dtype=np.float64) for a in auxes])
        meta = {**job.key, "decode": decode}
        if self.rows:
            return len(emb), int(decode.get("messages", 0)), features.shard_row(emb, times, meta)
        features.write_entry(self.out_dir, job.rel, emb, times, meta)
        return len(emb), int(decode.get("messages", 0)), None


def embed_videos(
    videos: list[tuple[Path, Path]],
    out_dir: str | Path,
    encoder: Encoder,
    sampling: Sampling = Sampling(fps=2.0),
    batch_size: int = 64,
    shard: tuple[int, int] = (0, 1),
    overwrite: bool = False,
    progress: bool = True,
    engine=None,
    keep: KeptFrames | None = None,
    layout: str = "files",
) -> RunSummary:
    """Embed (path, relative output name) pairs, as from `video.find_videos`, into `out_dir`.

    Failed videos are listed in out_dir/failures.jsonl with their reason; the run goes on.
    engine: a procvid.engine engine (default: LocalEngine with 2 decoding threads). keep: where to
    keep the decoded frames for the next stage (only with an engine that decodes in this process).
    layout: "files" (a .safetensors + .json per video) or "shards" (Parquet shards, procvid.shards).
    """
    out_dir = Path(out_dir)
    engine = engine or LocalEngine()
    summary = RunSummary()
    failures = FailureLog(out_dir)
    if encoder.fps and sampling.fps != encoder.fps:  # its time window is in frames, not seconds
        log.warning("%s was trained on frames sampled at %g fps; sampling %s changes its time window",
                    encoder.id, encoder.fps, sampling.to_dict())
    store = None
    if layout == "shards":
        from procvid.shards import ShardStore

        store = ShardStore(out_dir, features.STORE, expected=len(videos))
    jobs = plan_jobs(videos, out_dir, encoder.id, sampling, encoder.image_size, shard, overwrite, summary,
                     failures, store)
    if store is not None:
        jobs = store.plan(jobs, lambda j: features.entry_key(j.rel))
    for job in jobs:
        job.key["encoder_spec"] = encoder.spec  # not part of the cache key: what rebuilds the encoder
    # this process encodes with either engine (the Ray engine's driver works too, beside its actors);
    # an explicit OMP_NUM_THREADS wins
    threads = encode_threads(engine.workers) if getattr(encoder, "device", None) is not None \
        and encoder.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ else None
    try:
        with torch_threads(threads), Progress(summary, "embed", progress) as bar:
            if keep is not None and not isinstance(engine, LocalEngine):
                keep = None  # the frames are decoded in other processes
            outcomes = engine.map_batched(_Decode(sampling, encoder.image_size, batch_size, keep), _encode,
                                          _Write(out_dir, store is not None), jobs, EncoderSetup(encoder), batch_size)
            for job, frames, error in outcomes:
                if error:
                    summary.fail(failures, str(job.path), error)
                    if keep is not None:
                        keep.forget(job.rel)
                    if store is not None:
                        store.skip(features.entry_key(job.rel))
                else:
                    frames, messages, row = frames
                    if store is not None:
                        store.put(features.entry_key(job.rel), features.stored_key(job.key), *row)
                    summary.done += 1
                    summary.frames += frames
                    summary.messages += messages
                    summary.messages_in += messages > 0
                bar.update()
    finally:
        if store is not None:  # also after an interruption: the rows done so far are kept
            store.close()
    return summary
