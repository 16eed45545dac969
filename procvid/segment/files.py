"""The segments file format and its writers.

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
    One thumbnail per segment: the key frame as the embed stage decoded it (the encoder's input
    size, at most THUMBNAIL_SIZE on the short side), else decoded again at that size.
``<stem>.timeline.png``
    See :mod:`procvid.report.timeline`.

With the shard layout (procvid.shards) the documents are the ``doc`` column of
``segments-NNNNN.parquet`` (one row per video, keyed by its output name), no CSV is written and
key frames only when asked for.
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError
from procvid.outputs import atomic_save, ensure_dir
from procvid.segment.base import Segment
from procvid.shards import ShardStore, has_shards, read_row, split_ref

FORMAT = "procvid-segments"
FORMAT_VERSION = 1
STORE = "segments"  # the store name in the shard layout (segments-NNNNN.parquet)
SEGMENTS_SUFFIX = ".segments.json"
CSV_SUFFIX = ".segments.csv"
TIMELINE_SUFFIX = ".timeline.png"
KEYFRAMES_SUFFIX = ".keyframes"
THUMBNAIL_SIZE = 128  # short side of key-frame thumbnails, pixels
CSV_COLUMNS = ["Scene Number", "Start Frame", "Start Timecode", "Start Time (seconds)", "End Frame",
               "End Timecode", "End Time (seconds)", "Length (frames)", "Length (timecode)", "Length (seconds)"]


def output_paths(out_dir: Path, rel: Path) -> dict[str, Path]:
    stem = out_dir / rel.with_suffix("")
    return {kind: stem.with_name(stem.name + suffix) for kind, suffix in
            (("json", SEGMENTS_SUFFIX), ("csv", CSV_SUFFIX), ("timeline", TIMELINE_SUFFIX),
             ("keyframes", KEYFRAMES_SUFFIX))}


def stem_of(path: Path, root: str | os.PathLike | None = None) -> str:
    """The video stem of a segments file (or of a shard row reference). With `root`, the folder it was
    found under, the stem keeps its sub-folders (``a/x`` for ``root/a/x.segments.json``, a shard row's
    key as it is), so videos of the same name in different sub-folders stay apart in later stages."""
    split = split_ref(path)
    if split is not None:
        return split[1] if root is not None else Path(split[1]).name
    name = path.name[: -len(SEGMENTS_SUFFIX)] if path.name.endswith(SEGMENTS_SUFFIX) else path.stem
    if root is None:
        return name
    try:
        parent = Path(path).parent.relative_to(root)
    except ValueError:
        return name
    return (parent / name).as_posix()


def add_input(found: dict, stem: str, source) -> None:
    """found[stem] = source, one clear line when another input already has that stem (their outputs would
    overwrite each other); the same source twice is one input."""
    if found.get(stem, source) != source:
        raise ProcvidError(f"two inputs are named {stem}: {found[stem]} and {source}")
    found[stem] = source


def name_of(stem: str) -> str:
    """A stem's video name without its sub-folders: what task prefixes, dataset ids and ground truth use."""
    return stem.rsplit("/", 1)[-1]


def name_prefix(stem: str, fallback: str) -> str:
    """The task a video's name gives: the `<task>_` prefix of its name, else `fallback` (each caller's rule
    for names without one)."""
    name = name_of(stem)
    return name.split("_", 1)[0] if "_" in name else fallback


def is_segments(path: Path) -> bool:
    """A segments file, or a row of the segments shards."""
    split = split_ref(path)
    return split[0].name.startswith(STORE + "-") if split else Path(path).name.endswith(SEGMENTS_SUFFIX)


def segments_entries(folder: str | os.PathLike, shards: bool | None = None) -> list[Path]:
    """Every segments document under `folder`: its files, or references to the rows of its shards
    (procvid.shards; shard by shard). shards: None: the shards when there are any."""
    if shards or (shards is None and has_shards(folder, STORE)):
        return [Path(r) for r in ShardStore(folder, STORE).refs()]
    return sorted(Path(folder).rglob("*" + SEGMENTS_SUFFIX))


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


def dump_segments(doc: dict) -> str:
    """JSON with one line per header field and per segment (readable and diff-friendly)."""
    fields = [f" {json.dumps(k)}: {json.dumps(v)}" for k, v in doc.items() if k != "segments"]
    segments = ",\n".join(f"  {json.dumps(r)}" for r in doc["segments"])
    return "{\n" + ",\n".join([*fields, f' "segments": [\n{segments}\n ]']) + "\n}\n"


def read_segments_doc(path: str | os.PathLike) -> dict:
    """A ``<stem>.segments.json`` (or a segments shard row) as it is stored."""
    path = Path(path)
    if split_ref(path) is not None:
        data = read_row(path)["doc"]
    else:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ProcvidError(f"{path}: cannot read segments file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "segments" not in data \
            or "timestamps" not in data:
        raise ProcvidError(f"{path}: not a procvid segments file")
    return data


def read_segments_file(path: str | os.PathLike) -> tuple[dict, list[Segment]]:
    """A ``<stem>.segments.json`` as (header with ``timestamps`` as an array, segments)."""
    data = read_segments_doc(path)
    header = {k: v for k, v in data.items() if k != "segments"}
    header["timestamps"] = np.asarray(data["timestamps"], dtype=np.float64)
    try:
        segments = [Segment.from_dict(d) for d in data["segments"]]
    except (KeyError, TypeError, ValueError) as e:
        raise ProcvidError(f"{path}: malformed segment ({e})") from None
    for i, seg in enumerate(segments, 1):
        if not 0 <= seg.start <= seg.end:
            raise ProcvidError(f"{path}: segment {i} has times {seg.start:g}-{seg.end:g} s (need 0 <= start <= end)")
    return header, segments


def write_keyframes(images: list[np.ndarray], folder: Path, fmt: str = "jpg") -> list[Path]:
    """Save one thumbnail per segment as ``folder/NNN.<fmt>``; return the file paths."""
    from PIL import Image

    ensure_dir(folder)
    for old in folder.glob(f"*.{fmt}"):  # a previous run may have had more segments
        old.unlink()
    paths = []
    for i, img in enumerate(images, start=1):
        p = folder / f"{i:03d}.{fmt}"
        atomic_save(p, lambda f, img=img: Image.fromarray(img).save(
            f, format="JPEG" if fmt == "jpg" else "PNG", quality=90))
        paths.append(p)
    return paths


@dataclass
class SegmentedVideo:
    """One segmented video: its segments file (and its content, read once) and what is known about it."""

    stem: str
    segments: Path
    doc: dict  # the segments file
    task: str | None = None
    truth: list | None = None  # (start, end, step) ground truth, if annotated

    @property
    def features(self) -> tuple:
        """(X, t, meta) of its features, read when asked (each stage asks once) and not kept: a run
        over many videos holds their documents, not their features."""
        from procvid.features import load_features

        return load_features(self.doc["features"])

    @property
    def units(self) -> list[tuple[int, int]]:
        """Its segments as feature frame ranges."""
        return [(r["start_frame"], r["end_frame"]) for r in self.doc["segments"]]

    @property
    def folder(self) -> Path:
        """Where its own files go (timeline, key frames): beside its segments file, or for a shard row
        the segments folder mirrored like the files layout (its key may name sub-folders)."""
        split = split_ref(self.segments)
        return (split[0].parent / split[1]).parent if split else self.segments.parent

    @property
    def timeline(self) -> Path:
        return self.folder / (name_of(self.stem) + TIMELINE_SUFFIX)


def load_segmented(folder: Path, task_of=None, truth: dict | None = None,
                   shards: bool | None = None) -> list[SegmentedVideo]:
    """Every segments document under `folder` (segments_entries), with its task (``task_of(stem)``)
    and ground truth (by name_of); stems keep sub-folders (stem_of with a root)."""
    videos = []
    for f in segments_entries(folder, shards):
        stem = stem_of(f, folder)
        name = name_of(stem)
        videos.append(SegmentedVideo(stem, f, read_segments_doc(f), task_of(stem) if task_of else None,
                                     (truth or {}).get(name)))
    return videos
