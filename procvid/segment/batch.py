"""The segment stage: videos or feature files -> segments files, CSVs and key-frame thumbnails
(format in procvid.segment.files).

Videos are embedded first through the feature cache (procvid.embedding). An input is skipped when
its outputs are current (procvid.outputs: same features, detector settings and code). Failed inputs
are listed with their reason in ``failures.jsonl``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from procvid import features
from procvid.batch import FailureLog, Progress, RunSummary, in_shard
from procvid.engine import LocalEngine
from procvid.errors import ProcvidError, VideoError
from procvid.outputs import Manifest, atomic_write, stamp
from procvid.segment.base import Detector
from procvid.segment.files import (FORMAT, FORMAT_VERSION, SEGMENTS_SUFFIX, THUMBNAIL_SIZE, dump_segments,
                                   output_paths, scenes_csv, write_keyframes)
from procvid.video import VIDEO_EXTENSIONS, Sampling, find_videos, frames_at

log = logging.getLogger(__name__)


@dataclass
class Item:
    """One input: its output name (relative path) and its video and/or feature sidecar."""

    rel: Path
    video: Path | None = None
    features: Path | None = None


def _is_feature_sidecar(p: Path) -> bool:
    return p.suffix == ".json" and not p.name.endswith(SEGMENTS_SUFFIX) and p.with_suffix(".safetensors").exists()


def collect_inputs(inputs: list[str | os.PathLike], exclude: Path | None = None) -> list[Item]:
    """Videos (files, folders searched recursively, .txt lists) and feature files (.json sidecars
    or .safetensors, or folders of them), in a stable order. Output names must be unique. Feature
    files found in folders under ``exclude`` (our own output folder) are not inputs."""
    skip = exclude.resolve() if exclude else None
    items: dict[str, Item] = {}

    def add(item: Item) -> None:
        key = str(item.rel.with_suffix(""))
        other = items.get(key)
        if other is not None and (other.video or other.features) != (item.video or item.features):
            raise ProcvidError(f"two inputs map to the same output name {key}: {other.video or other.features} "
                               f"and {item.video or item.features}; pass their common parent folder instead")
        items[key] = item

    video_args = []
    for arg in inputs:
        p = Path(arg)
        if p.suffix in (".json", ".safetensors") and p.is_file():
            add(Item(Path(p.with_suffix(".json").name), features=p.with_suffix(".json")))
        elif p.is_dir():
            for f in sorted(p.rglob("*.json")):
                if _is_feature_sidecar(f) and not (skip and f.resolve().is_relative_to(skip)):
                    add(Item(f.relative_to(p), features=f))
            if any(f.suffix.lower() in VIDEO_EXTENSIONS for f in p.rglob("*") if f.is_file()):
                video_args.append(p)
        elif not p.exists():
            raise ProcvidError(f"{p}: no such file or directory")
        else:
            video_args.append(p)
    for video, rel in find_videos(video_args) if video_args else []:
        add(Item(rel, video=video))
    return [items[k] for k in sorted(items)]


def embed_missing(items: list[Item], features_dir: Path, encoder_spec, sampling: Sampling, device: str,
                  engine, progress: bool, failures: FailureLog, summary: RunSummary, keep=None) -> list[Item]:
    """Fill in the features of video items through the cache (current entries are reused); the
    items whose video cannot be embedded are logged as failures and dropped. encoder_spec: a spec
    (loaded only when some video needs embedding) or an Encoder. keep: a procvid.embedding.KeptFrames
    that gets the frames decoded on the way."""
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder

    videos = [it for it in items if it.features is None]
    if not videos:
        return items
    encoder = load_encoder(encoder_spec, device=device) if isinstance(encoder_spec, str) else encoder_spec
    embedded = embed_videos([(it.video, it.rel) for it in videos], features_dir, encoder, sampling,
                            progress=progress, engine=engine, keep=keep)
    summary.messages += embedded.messages
    summary.messages_in += embedded.messages_in
    kept = []
    for it in items:
        if it.features is None:
            reason = embedded.reasons.get(str(it.video))
            if reason is not None:
                summary.fail(failures, str(it.video), reason, logged=True)
                continue
            it.features = features.entry_paths(features_dir, it.rel)[1]
        kept.append(it)
    return kept


def _header(detector: Detector, num_segments: int | None) -> dict:
    params = detector.to_dict()
    return {"method": params.pop("name"), "params": params, "num_segments": num_segments}


@dataclass
class SegmentJob:
    item: Item
    paths: dict
    stamp: str
    thumbnails: str | None  # key-frame format, or None when there is no readable video


class _SegmentOne:
    """The per-input work: detect, write thumbnails, the CSV and (last, marking it done) the JSON.

    Thumbnails are the key frames as the embed stage decoded them (kept in `kept`, a
    procvid.embedding.KeptFrames), else decoded again by seeking at that same size: the short side
    of the encoder's input (the sidecar's frame_size), at most THUMBNAIL_SIZE."""

    def __init__(self, num_segments: int | None, kept=None):
        self.num_segments, self.kept = num_segments, kept

    def __call__(self, detector: Detector, job: SegmentJob) -> tuple[int, str]:
        item, paths = job.item, job.paths
        X, t, meta = features.load_features(item.features)
        segments = detector.detect(X, t, self.num_segments)
        video = item.video or (Path(meta["source"]) if meta.get("source") else None)
        records = [{**s.to_dict(), "keyframe_time": float(t[s.keyframe])} for s in segments]
        if job.thumbnails:
            times = [float(t[s.keyframe]) for s in segments]
            try:
                images = self.kept.take(item.rel, times) if self.kept is not None else None
                if images is None:
                    images = frames_at(video, times, short_side=min(THUMBNAIL_SIZE, meta.get("frame_size")
                                                                    or THUMBNAIL_SIZE))
            except VideoError as e:
                log.warning("%s: no key-frame thumbnails (%s)", item.rel, e.reason)
            else:
                for r, p in zip(records, write_keyframes(images, paths["keyframes"], job.thumbnails)):
                    r["thumbnail"] = str(p.relative_to(paths["json"].parent))
        atomic_write(paths["csv"], scenes_csv(segments))
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "video": str(video) if video else None,
               "features": str(Path(item.features).resolve()), "encoder": meta.get("encoder"),
               "sampling": meta.get("sampling"), **_header(detector, self.num_segments),
               "timestamps": [round(float(x), 6) for x in t], "segments": records}
        atomic_write(paths["json"], dump_segments(doc))
        return len(t), meta.get("encoder") or ""


class _Same:
    """setup that hands every worker the same (picklable) object."""

    def __init__(self, value):
        self.value = value

    def __call__(self):
        return self.value


def segment_batch(inputs: list[str | os.PathLike], out_dir: str | os.PathLike, detector: Detector,
                  num_segments: int | None = None, features_dir: str | os.PathLike | None = None,
                  encoder="video", sampling: Sampling = Sampling(fps=2.0), keyframes: str | None = "jpg",
                  shard: tuple[int, int] = (0, 1), overwrite: bool = False, device: str = "auto",
                  progress: bool = True, engine=None) -> RunSummary:
    """Segment every input into ``out_dir`` (format in procvid.segment.files). Videos are embedded
    first into ``features_dir`` (default ``out_dir/features``) through the feature cache."""
    out_dir = Path(out_dir)
    engine = engine or LocalEngine()
    features_dir = Path(features_dir) if features_dir else out_dir / "features"
    items = [it for it in collect_inputs(inputs, out_dir) if in_shard(str(it.rel), shard)]
    if not items:
        raise ProcvidError(f"no videos or feature files found in {' '.join(map(str, inputs))}")
    expected = getattr(detector, "encoder", None)  # a learned detector is tied to its training features
    summary = RunSummary(total=len(items))
    failures = FailureLog(out_dir)
    # key frames as embedding decodes them (this process only; a Ray engine decodes elsewhere)
    from procvid.embedding import KeptFrames

    kept = KeptFrames() if keyframes and isinstance(engine, LocalEngine) else None
    items = embed_missing(items, features_dir, encoder, sampling, device, engine, progress, failures, summary, kept)
    header = _header(detector, num_segments)
    manifest = Manifest(out_dir)
    todo = []
    for it in items:
        paths = output_paths(out_dir, it.rel)
        digest, recorded = _read_sidecar(it.features)  # read once: its digest stamps the outputs
        source = it.video or recorded
        thumbs = keyframes if keyframes and source is not None and source.exists() else None
        key = stamp("segment", [digest], {**header, "keyframes": thumbs})
        if not overwrite and manifest.is_current(paths["json"], key, paths["csv"]):
            summary.skipped += 1
        else:
            todo.append(SegmentJob(it, paths, key, thumbs))
    warned = False
    with Progress(summary, "segment", progress) as bar:
        for job, result, error in engine.map(_SegmentOne(num_segments, kept), todo, _Same(detector)):
            source = str(job.item.video or job.item.features)
            if error:
                summary.fail(failures, source, error)
            else:
                frames, encoder_id = result
                manifest.record(job.paths["json"], job.stamp)
                summary.frames += frames
                summary.done += 1
                if expected and encoder_id != expected and not warned:
                    warned = True
                    log.warning("features of %s come from encoder %s, but the %s model was trained on "
                                "features of %s: results may be poor", job.item.rel, encoder_id, detector.name,
                                expected)
            bar.update()
    return summary


def _read_sidecar(features_json: Path) -> tuple[str, Path | None]:
    """(content digest of a feature sidecar, its source video); ("", None) when it cannot be read."""
    import hashlib
    import json

    try:
        raw = Path(features_json).read_bytes()
        meta = json.loads(raw)
    except (OSError, ValueError):
        return "", None
    source = meta.get("source") if isinstance(meta, dict) else None
    return hashlib.sha1(raw).hexdigest(), Path(source) if source else None
