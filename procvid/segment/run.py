"""Batch key-step segmentation: videos or feature files -> segments (JSON, CSV), key frames, timelines.

Outputs per input, named after its stem; sub-folders of an input folder are mirrored as in
``procvid embed``:

``<stem>.segments.json``
    ``{"format": "procvid-segments", "version": 1, "video": source video path or null,
    "features": feature sidecar path, "encoder": encoder id, "sampling": {...},
    "method": detector name, "params": detector parameters, "num_segments": K or null,
    "timestamps": [seconds of every feature frame], "segments": [...]}``.
    Each segment is ``{"start", "end", "start_frame", "end_frame", "score", "keyframe",
    "keyframe_time", "thumbnail"?, "label"?}``: times in seconds, frames index the feature frames
    (end exclusive), ``score`` the boundary confidence at the segment's start (detector specific
    scale), ``keyframe`` the feature frame nearest the segment's mean embedding, ``thumbnail`` its
    image relative to this file. ``timestamps`` is the frame grid that evaluation paints the
    segments on (:func:`read_segments_file`).
``<stem>.segments.csv``
    PySceneDetect's scene-list columns (without its cut-list first row). Frames are the sampled
    feature frames, numbered like PySceneDetect's: Start Frame 1-based, End Frame inclusive.
``<stem>.keyframes/NNN.jpg`` (or .png)
    One thumbnail per segment, decoded from the video at the key frame's timestamp.
``<stem>.timeline.png``
    With ``timeline=True``: see :mod:`procvid.report.timeline`.

An input is skipped when its outputs exist, are newer than its features and were made with the
same method, parameters and K. Failed inputs are listed with their reason in ``failures.jsonl``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from procvid import features
from procvid.batch import FAILURES_FILE, FailureLog, RunSummary, in_shard
from procvid.errors import ProcvidError, VideoError
from procvid.segment.base import Detector, Segment
from procvid.video import VIDEO_EXTENSIONS, Sampling, find_videos

log = logging.getLogger(__name__)

FORMAT = "procvid-segments"
FORMAT_VERSION = 1
SEGMENTS_SUFFIX = ".segments.json"
CSV_SUFFIX = ".segments.csv"
TIMELINE_SUFFIX = ".timeline.png"
KEYFRAMES_SUFFIX = ".keyframes"
THUMBNAIL_SIZE = 128  # short side of key-frame thumbnails, pixels
CSV_COLUMNS = ["Scene Number", "Start Frame", "Start Timecode", "Start Time (seconds)", "End Frame",
               "End Timecode", "End Time (seconds)", "Length (frames)", "Length (timecode)", "Length (seconds)"]


@dataclass
class Item:
    """One input: its output name (relative path) and its video and/or feature sidecar."""

    rel: Path
    video: Path | None = None
    features: Path | None = None


# ---------------------------------------------------------------------------- inputs


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


def embed_missing(items: list[Item], features_dir: Path, encoder_spec: str, sampling: Sampling, device: str,
                  workers: int, progress: bool, failures: FailureLog, summary: RunSummary,
                  engine: str = "local") -> list[Item]:
    """Fill in the features of video items through the cache (valid entries are reused); the items
    whose video cannot be embedded are logged as failures and dropped."""
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder

    videos = [it for it in items if it.features is None]
    if not videos:
        return items
    encoder = load_encoder(encoder_spec, device=device)
    embed_videos([(it.video, it.rel) for it in videos], features_dir, encoder, sampling, workers=workers,
                 progress=progress, engine=engine)
    reasons = {}
    for line in (features_dir / FAILURES_FILE).read_text().splitlines():
        record = json.loads(line)
        reasons[record["item"]] = record["reason"]
    kept = []
    for it in items:
        if it.features is None:
            if str(it.video) in reasons:
                failures.add(str(it.video), reasons[str(it.video)])
                summary.failed += 1
                continue
            it.features = features.entry_paths(features_dir, it.rel)[1]
        kept.append(it)
    return kept


# ---------------------------------------------------------------------------- outputs


def output_paths(out_dir: Path, rel: Path) -> dict[str, Path]:
    stem = out_dir / rel.with_suffix("")
    return {kind: stem.with_name(stem.name + suffix) for kind, suffix in
            (("json", SEGMENTS_SUFFIX), ("csv", CSV_SUFFIX), ("timeline", TIMELINE_SUFFIX),
             ("keyframes", KEYFRAMES_SUFFIX))}


def _header(detector: Detector, num_segments: int | None) -> dict:
    params = detector.to_dict()
    return {"method": params.pop("name"), "params": params, "num_segments": num_segments}


def is_current(paths: dict[str, Path], features_json: Path, header: dict, timeline: bool, keyframes: bool) -> bool:
    """Outputs exist, are newer than the features and were made with the same settings."""
    try:
        done = json.loads(paths["json"].read_text())
        if paths["json"].stat().st_mtime_ns < features_json.stat().st_mtime_ns:
            return False
    except (OSError, ValueError):
        return False
    if any(done.get(k) != v for k, v in header.items()) or not paths["csv"].exists():
        return False
    if timeline and not paths["timeline"].exists():
        return False
    # Thumbnails are only expected where the video could be read (recorded per segment).
    want_thumbs = keyframes and done.get("video") and Path(done["video"]).exists()
    return not want_thumbs or all("thumbnail" in s for s in done.get("segments", []))


def timecode(seconds: float) -> str:
    """HH:MM:SS.mmm, as PySceneDetect writes it."""
    ms = int(round(seconds * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def scenes_csv(segments: list[Segment]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for i, s in enumerate(segments, start=1):
        length = s.end - s.start
        w.writerow([i, s.start_frame + 1, timecode(s.start), f"{s.start:.3f}", s.end_frame, timecode(s.end),
                    f"{s.end:.3f}", s.end_frame - s.start_frame, timecode(length), f"{length:.3f}"])
    return buf.getvalue()


def frames_at(video: str | os.PathLike, times, short_side: int = THUMBNAIL_SIZE) -> list[np.ndarray]:
    """RGB frames on screen at each time (seconds from the stream start), decoded by seeking to the
    key frame before each time; frames are resized so the short side is at most ``short_side``."""
    import av

    from procvid.video import check_file

    path = check_file(video)
    try:
        container = av.open(str(path))
    except Exception as e:  # av raises many error types for non-video input
        raise VideoError(path, f"cannot open as video ({type(e).__name__})") from None
    with container:
        if not container.streams.video:
            raise VideoError(path, "contains no video stream")
        stream = container.streams.video[0]
        base = stream.time_base
        t0 = float(stream.start_time * base) if stream.start_time is not None else 0.0
        w, h = stream.codec_context.width, stream.codec_context.height
        scale = min(1.0, short_side / max(1, min(w, h)))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        out = []
        for t in times:
            container.seek(int((t + t0) / base), stream=stream, backward=True, any_frame=False)
            shown = None
            for frame in container.decode(stream):
                if shown is not None and frame.time is not None and frame.time - t0 > t + 1e-6:
                    break
                shown = frame
            if shown is None:
                raise VideoError(path, f"no frame at {t:.2f} s")
            out.append(shown.to_ndarray(format="rgb24", width=size[0], height=size[1]))
    return out


def write_keyframes(video: Path, segments: list[Segment], times: np.ndarray, folder: Path,
                    fmt: str = "jpg") -> list[str]:
    """Save each segment's key frame as ``folder/NNN.<fmt>``; return the file paths."""
    from PIL import Image

    images = frames_at(video, [float(times[s.keyframe]) for s in segments])
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob(f"*.{fmt}"):  # a previous run may have had more segments
        old.unlink()
    paths = []
    for i, img in enumerate(images, start=1):
        p = folder / f"{i:03d}.{fmt}"
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG" if fmt == "jpg" else "PNG", quality=90)
        features.atomic_write(p, buf.getvalue())
        paths.append(p)
    return paths


def _dump(doc: dict) -> str:
    """JSON with one line per header field and per segment (readable and diff-friendly)."""
    fields = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "segments"]
    segments = ",\n".join(f"  {json.dumps(r)}" for r in doc["segments"])
    return "{\n" + ",\n".join([*fields, f' "segments": [\n{segments}\n ]']) + "\n}\n"


def read_segments_file(path: str | os.PathLike) -> tuple[dict, list[Segment]]:
    """A ``<stem>.segments.json`` as (header with ``timestamps`` as an array, segments)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ProcvidError(f"{path}: cannot read segments file ({e})") from None
    if data.get("format") != FORMAT or "segments" not in data or "timestamps" not in data:
        raise ProcvidError(f"{path}: not a procvid segments file")
    header = {k: v for k, v in data.items() if k != "segments"}
    header["timestamps"] = np.asarray(data["timestamps"], dtype=np.float64)
    return header, [Segment.from_dict(d) for d in data["segments"]]


# ---------------------------------------------------------------------------- ground truth


def read_ground_truth(path: str | os.PathLike) -> dict[str, list[tuple[float, float, str]]]:
    """Per video id, its (start, end, step) segments from CrossTask-format CSVs (rows
    ``step,start,end``): a ``<task>_<video>.csv`` file, a folder of them, or a dataset folder
    with an ``annotations/`` sub-folder (a CrossTask release or a synthetic world)."""
    from procvid.data.files import read_csv_rows

    path = Path(path)
    if not path.exists():
        raise ProcvidError(f"{path}: no such file or directory")
    if path.is_dir() and (path / "annotations").is_dir():
        path = path / "annotations"
    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    if not files:
        raise ProcvidError(f"{path}: no <task>_<video>.csv annotation files")
    gt = {}
    for f in files:
        _, sep, video_id = f.stem.partition("_")
        if not sep:
            raise ProcvidError(f"{f}: annotation files are named <task>_<video>.csv")
        try:
            gt[video_id] = [(float(r[1]), float(r[2]), str(r[0]).strip()) for r in read_csv_rows(f)]
        except (ValueError, IndexError):
            raise ProcvidError(f"{f}: expected rows 'step,start,end'") from None
    return gt


# ---------------------------------------------------------------------------- batch


def segment_one(item: Item, detector: Detector, num_segments: int | None, paths: dict[str, Path],
                keyframes: str | None, timeline: bool, gt: dict | None) -> dict:
    """Segment one input and write its outputs; return the header it wrote (without segments)."""
    X, t, meta = features.load_features(item.features)
    segments = detector.detect(X, t, num_segments)
    video = item.video or (Path(meta["source"]) if meta.get("source") else None)
    records = [{**s.to_dict(), "keyframe_time": float(t[s.keyframe])} for s in segments]
    thumbs = None
    if keyframes and video is not None and video.exists():
        try:
            thumbs = write_keyframes(video, segments, t, paths["keyframes"], keyframes)
        except VideoError as e:
            log.warning("%s: no key-frame thumbnails (%s)", item.rel, e.reason)
        else:
            for r, p in zip(records, thumbs):
                r["thumbnail"] = str(p.relative_to(paths["json"].parent))
    if timeline:
        from procvid.report.timeline import draw_timeline

        video_id = item.rel.with_suffix("").name
        draw_timeline(paths["timeline"], X, t, segments, gt=(gt or {}).get(video_id), thumbnails=thumbs,
                      title=f"{item.rel}: {detector.name}, {len(segments)} segments")
    features.atomic_write(paths["csv"], scenes_csv(segments))
    doc = {"format": FORMAT, "version": FORMAT_VERSION, "video": str(video) if video else None,
           "features": str(Path(item.features).resolve()), "encoder": meta.get("encoder"),
           "sampling": meta.get("sampling"), **_header(detector, num_segments),
           "timestamps": [round(float(x), 6) for x in t], "segments": records}
    features.atomic_write(paths["json"], _dump(doc))  # last: marks the item done
    return {k: v for k, v in doc.items() if k != "segments"}


def try_segment(item: Item, detector: Detector, num_segments: int | None, paths: dict[str, Path],
                keyframes: str | None, timeline: bool, gt: dict | None) -> tuple[Item, int, str, str]:
    """segment_one for batches: (item, frames, error reason or "", encoder id); never raises."""
    try:
        done = segment_one(item, detector, num_segments, paths, keyframes, timeline, gt)
        return item, len(done["timestamps"]), "", done["encoder"]
    except Exception as e:  # keep the batch going; the reason lands in failures.jsonl
        reason = e.reason if isinstance(e, VideoError) else (
            str(e) if isinstance(e, ProcvidError) else f"{type(e).__name__}: {e}")
        return item, 0, reason, ""


def segment_batch(inputs: list[str | os.PathLike], out_dir: str | os.PathLike, detector: Detector,
                  num_segments: int | None = None, features_dir: str | os.PathLike | None = None,
                  encoder: str = "default", sampling: Sampling = Sampling(fps=1.0), keyframes: str | None = "jpg",
                  timeline: bool = False, gt: str | os.PathLike | None = None, shard: tuple[int, int] = (0, 1),
                  overwrite: bool = False, device: str = "auto", workers: int = 2,
                  progress: bool = True, engine: str = "local") -> RunSummary:
    """Segment every input into ``out_dir`` (format in the module docstring). Videos are embedded
    first into ``features_dir`` (default ``out_dir/features``) through the feature cache."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    features_dir = Path(features_dir) if features_dir else out_dir / "features"
    truth = read_ground_truth(gt) if gt else None
    items = [it for it in collect_inputs(inputs, out_dir) if in_shard(str(it.rel), shard)]
    if not items:
        raise ProcvidError(f"no videos or feature files found in {' '.join(map(str, inputs))}")
    expected = getattr(detector, "encoder", None)  # a learned detector is tied to its training features
    warned: set[str] = set()
    summary = RunSummary(total=len(items))
    failures = FailureLog(out_dir)
    items = embed_missing(items, features_dir, encoder, sampling, device, workers, progress, failures, summary,
                          engine)
    header = _header(detector, num_segments)
    bar = tqdm(total=summary.total, initial=summary.failed, unit="video", desc="segment", disable=not progress,
               dynamic_ncols=True)
    try:
        todo = []
        for it in items:
            paths = output_paths(out_dir, it.rel)
            if not overwrite and is_current(paths, it.features, header, timeline, bool(keyframes)):
                summary.skipped += 1
                bar.update(1)
            else:
                todo.append((it, paths))
        if engine == "ray" and todo:
            from procvid.ray_engine import segment_items

            results = segment_items(todo, detector, num_segments, keyframes, timeline, truth, progress)
        else:
            results = (try_segment(it, detector, num_segments, paths, keyframes, timeline, truth)
                       for it, paths in todo)
        for it, frames, error, encoder_id in results:
            if error:
                failures.add(str(it.video or it.features), error)
                summary.failed += 1
                log.warning("%s: %s", it.video or it.features, error)
            else:
                summary.frames += frames
                summary.done += 1
                if expected and encoder_id != expected and expected not in warned:
                    warned.add(expected)
                    log.warning("features of %s come from encoder %s, but the %s model was trained on "
                                "features of %s: results may be poor", it.rel, encoder_id, detector.name, expected)
            bar.update(1)
    finally:
        bar.close()
    return summary


# ---------------------------------------------------------------------------- evaluation

SCORE_COLUMNS = [("boundary_precision", "B-P", "{:.3f}"), ("boundary_recall", "B-R", "{:.3f}"),
                 ("boundary_f1", "B-F1", "{:.3f}"), ("mof", "MoF", "{:.1f}"), ("f1@10", "F1@10", "{:.1f}"),
                 ("f1@25", "F1@25", "{:.1f}"), ("f1@50", "F1@50", "{:.1f}"), ("edit", "Edit", "{:.1f}"),
                 ("num_segments_mae", "|dK|", "{:.2f}")]


def method_label(header: dict) -> str:
    return header["method"] + (" (K given)" if header.get("num_segments") is not None else "")


def evaluate_predictions(pred_dir: str | os.PathLike, gt: dict, tolerance: float = 1.0):
    """Score every ``*.segments.json`` under ``pred_dir`` against ``gt`` (from
    :func:`read_ground_truth`), matched by video id (the file stem). Returns
    ({label: [VideoScores]}, {label: params}, ids of predictions without ground truth). The label is
    the method, with "(K given)" for known K and "#n" when a method ran with several settings."""
    from procvid.metrics.segmentation import evaluate

    files = sorted(Path(pred_dir).rglob("*" + SEGMENTS_SUFFIX))
    if not files:
        raise ProcvidError(f"{pred_dir}: no *{SEGMENTS_SUFFIX} files (procvid segment writes them)")
    runs: dict[tuple[str, str], list] = {}  # (label, settings) -> [(header, segments, video id)]
    unmatched = []
    for f in files:
        header, segments = read_segments_file(f)
        video_id = f.name[: -len(SEGMENTS_SUFFIX)]
        if video_id not in gt:
            unmatched.append(video_id)
            continue
        settings = json.dumps(header["params"], sort_keys=True)
        runs.setdefault((method_label(header), settings), []).append((header, segments, video_id))
    scores, params = {}, {}
    for (label, settings), videos in runs.items():
        variants = sorted(s for lb, s in runs if lb == label)
        if len(variants) > 1:
            label = f"{label} #{variants.index(settings) + 1}"
        params[label] = json.loads(settings)
        scores[label] = [evaluate(segs, gt[vid], h["timestamps"], tolerance=tolerance) for h, segs, vid in videos]
    return scores, params, unmatched


def format_table(rows: list[tuple[str, dict]], extra: list[tuple[str, str, str]] = ()) -> str:
    """A fixed-width table of dataset summaries (procvid.metrics.segmentation.summarize)."""
    columns = [*SCORE_COLUMNS, *extra]
    width = max([len("method"), *(len(label) for label, _ in rows)])
    lines = [f"{'method':<{width}} {'videos':>6} " + " ".join(f"{name:>7}" for _, name, _ in columns)]
    for label, summary in rows:
        cells = [fmt.format(summary[key]) if key in summary else "-" for key, _, fmt in columns]
        lines.append(f"{label:<{width}} {summary.get('num_videos', 0):>6} " + " ".join(f"{c:>7}" for c in cells))
    return "\n".join(lines)
