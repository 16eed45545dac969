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
from procvid.shards import ShardStore, choose_layout, has_shards, split_ref
from procvid.segment.files import (FORMAT, FORMAT_VERSION, SEGMENTS_SUFFIX, STORE, THUMBNAIL_SIZE,
                                   dump_segments, output_paths, scenes_csv, write_keyframes)
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
        elif p.is_dir() and has_shards(p, features.STORE) and not (skip and p.resolve().is_relative_to(skip)):
            for ref in ShardStore(p, features.STORE).refs():  # features in the shard layout
                add(Item(Path(split_ref(ref)[1] + ".json"), features=ref))
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
                  engine, progress: bool, failures: FailureLog, summary: RunSummary, keep=None,
                  layout: str = "files") -> list[Item]:
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
                            progress=progress, engine=engine, keep=keep, layout=layout)
    store = ShardStore(features_dir, features.STORE) if layout == "shards" else None
    summary.messages += embedded.messages
    summary.messages_in += embedded.messages_in
    kept = []
    for it in items:
        if it.features is None:
            reason = embedded.reasons.get(str(it.video))
            if reason is not None:
                summary.fail(failures, str(it.video), reason, logged=True)
                continue
            it.features = (store.ref(features.entry_key(it.rel)) if store is not None
                           else features.entry_paths(features_dir, it.rel)[1])
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
    """The per-input work: detect, write thumbnails, the CSV and (last, marking it done) the JSON;
    with `rows` (the shard layout) the document is returned for the driver's shard instead.

    Thumbnails are the key frames as the embed stage decoded them (kept in `kept`, a
    procvid.embedding.KeptFrames), else decoded again by seeking at that same size: the short side
    of the encoder's input (the sidecar's frame_size), at most THUMBNAIL_SIZE."""

    def __init__(self, num_segments: int | None, kept=None, rows: bool = False):
        self.num_segments, self.kept, self.rows = num_segments, kept, rows

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
        source = item.features if split_ref(item.features) else Path(item.features).resolve()
        doc = {"format": FORMAT, "version": FORMAT_VERSION, "video": str(video) if video else None,
               "features": str(source), "encoder": meta.get("encoder"),
               "sampling": meta.get("sampling"), **_header(detector, self.num_segments),
               "timestamps": [round(float(x), 6) for x in t], "segments": records}
        if self.rows:
            return len(t), meta.get("encoder") or "", doc
        atomic_write(paths["csv"], scenes_csv(segments))
        atomic_write(paths["json"], dump_segments(doc))
        return len(t), meta.get("encoder") or "", None


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
                  progress: bool = True, engine=None, layout: str = "files") -> RunSummary:
    """Segment every input into ``out_dir`` (format in procvid.segment.files). Videos are embedded
    first into ``features_dir`` (default ``out_dir/features``) through the feature cache. layout:
    "files" (per video) or "shards" (features and segments documents in Parquet shards,
    procvid.shards; no CSVs; key frames only when `keyframes` is given)."""
    out_dir = Path(out_dir)
    engine = engine or LocalEngine()
    features_dir = Path(features_dir) if features_dir else out_dir / "features"
    items = [it for it in collect_inputs(inputs, out_dir) if in_shard(str(it.rel), shard)]
    if not items:
        raise ProcvidError(f"no videos or feature files found in {' '.join(map(str, inputs))}")
    layout = choose_layout(layout, len(items), features_dir)
    if keyframes == "auto":  # at corpus scale thumbnails only on request
        keyframes = "jpg" if layout == "files" else None
    expected = getattr(detector, "encoder", None)  # a learned detector is tied to its training features
    summary = RunSummary(total=len(items))
    failures = FailureLog(out_dir)
    # key frames as embedding decodes them (this process only; a Ray engine decodes elsewhere)
    from procvid.embedding import KeptFrames

    kept = KeptFrames() if keyframes and isinstance(engine, LocalEngine) else None
    items = embed_missing(items, features_dir, encoder, sampling, device, engine, progress, failures, summary, kept,
                          layout)
    header = _header(detector, num_segments)
    manifest = Manifest(out_dir)
    # features in shards: go through them shard by shard (each read once for the stamps below)
    refs = {id(it): split_ref(it.features) for it in items}  # split_ref looks at the file system: once each
    items.sort(key=lambda it: (str(refs[id(it)][0]), refs[id(it)][1]) if refs[id(it)] else ("", str(it.rel)))
    store = None
    if layout == "shards":  # as many shards as the features have: then their shards are read in order too
        first = next((ref for ref in refs.values() if ref), None)
        store = ShardStore(out_dir, STORE, expected=len(items),
                           count=ShardStore(first[0].parent, features.STORE).count if first else None)
    todo = []
    for it in items:
        paths = output_paths(out_dir, it.rel)
        digest, recorded = _read_sidecar(it.features)  # read once: its digest stamps the outputs
        source = it.video or recorded
        thumbs = keyframes if keyframes and source is not None and source.exists() else None
        key = stamp("segment", [digest], {**header, "keyframes": thumbs})
        current = (store.get(features.entry_key(it.rel), key) is not None if store is not None
                   else manifest.is_current(paths["json"], key, paths["csv"]))
        if not overwrite and current:
            summary.skipped += 1
        else:
            todo.append(SegmentJob(it, paths, key, thumbs))
    if store is not None:
        todo = store.plan(todo, lambda job: features.entry_key(job.item.rel))
    with Progress(summary, "segment", progress) as bar:
        try:
            _collect(engine.map(_SegmentOne(num_segments, kept, store is not None), todo, _Same(detector)),
                     store, manifest, summary, failures, expected, detector.name, bar)
        finally:
            if store is not None:  # also after an interruption: the documents done so far are kept
                store.close()
    return summary


def _collect(outcomes, store, manifest: Manifest, summary: RunSummary, failures: FailureLog, expected, name,
             bar) -> None:
    """Record each outcome: its document in the shard store or its file in the manifest."""
    warned = False
    for job, result, error in outcomes:
        source = str(job.item.video or job.item.features)
        if error:
            summary.fail(failures, source, error)
            if store is not None:
                store.skip(features.entry_key(job.item.rel))
        else:
            frames, encoder_id, doc = result
            if store is not None:
                store.put(features.entry_key(job.item.rel), job.stamp, doc)
            else:
                manifest.record(job.paths["json"], job.stamp)
            summary.frames += frames
            summary.done += 1
            if expected and encoder_id != expected and not warned:
                warned = True
                log.warning("features of %s come from encoder %s, but the %s model was trained on "
                            "features of %s: results may be poor", job.item.rel, encoder_id, name, expected)
        bar.update()


def _read_sidecar(features_json: Path) -> tuple[str, Path | None]:
    """(content digest of a feature sidecar, its source video); ("", None) when it cannot be read."""
    import hashlib
    import json

    if split_ref(features_json) is not None:  # a shard row
        meta = features.read_sidecar(features_json)
        source = meta.get("source") if meta else None
        return features.entry_digest(features_json), Path(source) if source else None

    try:
        raw = Path(features_json).read_bytes()
        meta = json.loads(raw)
    except (OSError, ValueError):
        return "", None
    source = meta.get("source") if isinstance(meta, dict) else None
    return hashlib.sha1(raw).hexdigest(), Path(source) if source else None
