"""The discover stage: segments files of many videos -> per task the key steps its videos share
(`procvid discover` and `procvid run` without step texts).

Outputs in OUT, per task (file-name-safe stem of the task id):

``<task>.discovery.json``
    ``{"format": "procvid-discovery", "version": 1, "task", "method", "params", "num_steps",
    "k_choice": {"rule", "k", scores, "why"}, "videos": [stems], "steps": [{"id", "text", "name"?,
    "name_similarity"?, "keyframes": [paths], "members": {stem: [{"start", "end", "start_frame",
    "end_frame"}]}, "videos": count, "mean_position"}], "paths": {stem: [step ids in time order]}}``.
``<task>.prototypes.safetensors``
    ``prototypes``: K x D float32, the L2-normalised mean embedding of each step's member segments.
``<task>.keyframes/sNN_MM.jpg``
    Up to `keyframes` frames per step: the member segments nearest the prototype, from their videos.
``graphs/<task>.*``
    The label-free graph script (procvid.graph.build.build_graphs) of the discovered step paths:
    nodes are discovered steps named "step N" (or their grounded name).

A task whose inputs and settings did not change keeps its files (the "current" rule of
procvid.outputs).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from procvid.batch import FailureLog, Progress, RunSummary
from procvid.discover.base import Discovery, VideoUnits, get_discoverer
from procvid.errors import ProcvidError
from procvid.outputs import Manifest, atomic_write, digest, prepare_output_dir, stamp
from procvid.shards import split_ref

log = logging.getLogger(__name__)

FORMAT = "procvid-discovery"
DISCOVERY_SUFFIX = ".discovery.json"
PROTOTYPES_SUFFIX = ".prototypes.safetensors"
DEFAULT_METHOD = "order-kmeans"


@dataclass
class DiscoverInput:
    """One video: its stem, segments file, task, and optionally its segments already read."""

    stem: str
    segments: Path
    task: str
    video: object | None = None  # procvid.segment.files.SegmentedVideo


@dataclass
class TaskDiscovery:
    task: str
    doc: dict
    files: list[Path] = field(default_factory=list)
    graph: object | None = None


def read_task_of(path: str | Path) -> dict[str, str]:
    """stem -> task from a JSON object {stem: task} or a CSV with columns (stem|video|video_id, task|task_id)."""
    import csv

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ProcvidError(f"{path}: cannot read --task-of ({e.strerror})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ProcvidError(f"{path}: not JSON ({e})") from None
        if not isinstance(data, dict):
            raise ProcvidError(f"{path}: expected a JSON object {{video stem: task}}")
        return {str(k): str(v) for k, v in data.items()}
    rows = list(csv.DictReader(text.splitlines()))
    if not rows:
        raise ProcvidError(f"{path}: empty --task-of file")
    stem_col = next((c for c in ("stem", "video", "video_id") if c in rows[0]), None)
    task_col = next((c for c in ("task", "task_id") if c in rows[0]), None)
    if stem_col is None or task_col is None:
        raise ProcvidError(f"{path}: expected CSV columns stem (or video, video_id) and task (or task_id)")
    return {r[stem_col]: r[task_col] for r in rows}


def task_from_name(stem: str, task_of: dict | None = None) -> str:
    """The task of a video: from the --task-of mapping, else the `<task>_` prefix of its name (else the stem
    itself is not split: every unprefixed video belongs to the task "task")."""
    from procvid.segment.files import name_of, name_prefix

    name = name_of(stem)  # the stem may keep sub-folders (a/x): the file may list either
    if task_of:
        if stem not in task_of and name not in task_of:
            raise ProcvidError(f"{stem}: not in the --task-of file")
        return task_of.get(stem, task_of.get(name))
    return name_prefix(stem, "task")


def collect_discover_inputs(inputs: list[str], task_of: dict | None = None) -> list[DiscoverInput]:
    """Segments files (or folders of them) as inputs, each with its task."""
    from procvid.ground_files import collect_ground_inputs
    from procvid.segment.files import SEGMENTS_SUFFIX, is_segments

    found = collect_ground_inputs(inputs)  # names damaged files and stem clashes
    plain = [f for f in found.values() if not is_segments(f)]
    if plain:
        raise ProcvidError(f"{plain[0]}: not a segments file (<stem>{SEGMENTS_SUFFIX}); discovery needs segments: "
                           "run procvid segment first")
    return [DiscoverInput(stem, f, task_from_name(stem, task_of)) for stem, f in found.items()]


def _load(item: DiscoverInput) -> tuple[VideoUnits, np.ndarray, dict]:
    """(units, timestamps, segments doc) of one input."""
    from procvid.features import load_features
    from procvid.segment.files import read_segments_doc

    doc = item.video.doc if item.video is not None else read_segments_doc(item.segments)
    X, t, _ = item.video.features if item.video is not None else load_features(doc["features"])
    units = [(int(r["start_frame"]), int(r["end_frame"])) for r in doc["segments"]]
    if units and max(b for _, b in units) > len(X):
        raise ProcvidError(f"{item.segments}: segments reach frame {max(b for _, b in units)}, "
                           f"the features have {len(X)}")
    return VideoUnits(item.stem, np.asarray(X, dtype=np.float32), units), np.asarray(t, dtype=np.float64), doc


def name_steps(prototypes: np.ndarray, texts: dict, text_embeddings: np.ndarray) -> list[tuple[object, float]]:
    """Name the prototypes with step texts: a one-to-one assignment (Hungarian on cosine similarity)
    while there are texts, then each remaining prototype takes its most similar text."""
    from scipy.optimize import linear_sum_assignment

    ids = list(texts)
    T = np.asarray(text_embeddings, dtype=np.float64)
    T = T / np.maximum(np.linalg.norm(T, axis=1, keepdims=True), 1e-12)
    sim = prototypes.astype(np.float64) @ T.T
    rows, cols = linear_sum_assignment(-sim)
    names = {int(r): int(c) for r, c in zip(rows, cols)}
    return [(ids[names.get(k, int(sim[k].argmax()))], float(sim[k, names.get(k, int(sim[k].argmax()))]))
            for k in range(len(prototypes))]


def discover_task(task: str, loaded: list[tuple[VideoUnits, np.ndarray, dict]], method: str, params: dict,
                  num_steps: int | None) -> tuple[Discovery, dict]:
    """Run a method on one task's videos; (discovery, the discovery.json document without files)."""
    videos = [u for u, _, _ in loaded]
    segments = sum(len(u.units) for u in videos)
    if segments < max(3, (num_steps or 1) + 1):  # a step shared by videos needs a few segments to group
        raise ProcvidError(f"only {segments} segment(s) in {len(videos)} video(s): too few to discover steps")
    result = get_discoverer(method, **params).discover(videos, num_steps)
    paths = result.paths(videos)
    steps = []
    for k in range(result.num_steps):
        members, positions = {}, []
        for (u, t, _), labels in zip(loaded, result.labels):
            period = float(t[1] - t[0]) if len(t) > 1 else 1.0
            spans = [{"start": round(float(t[a]), 3), "end": round(float(t[b - 1]) + period, 3),
                      "start_frame": a, "end_frame": b} for (a, b), lab in zip(u.units, labels) if lab == k]
            if spans:
                members[u.stem] = spans
                positions.append(np.mean([(s["start_frame"] + s["end_frame"]) / 2 / len(u.X) for s in spans]))
        steps.append({"id": k, "text": f"step {k + 1}", "videos": len(members),
                      "mean_position": round(float(np.mean(positions)), 4) if positions else None,
                      "members": members})
    doc = {"format": FORMAT, "version": 1, "task": task, "method": method, "params": result.params,
           "num_steps": result.num_steps, "k_choice": result.k_choice, "videos": [u.stem for u in videos],
           "steps": steps, "paths": {u.stem: p for u, p in zip(videos, paths)}}
    return result, doc


def _keyframes(doc: dict, result: Discovery, loaded, folder: Path, per_step: int) -> None:
    """Write up to `per_step` key frames per step (member segments nearest the prototype)."""
    from procvid.segment.files import write_keyframes
    from procvid.video import frames_at

    by_stem = {u.stem: (u, t, d) for u, t, d in loaded}
    for step in doc["steps"]:
        k = step["id"]
        candidates = []
        for stem, spans in step["members"].items():
            u, t, d = by_stem[stem]
            for s in spans:
                frames = u.X[s["start_frame"]:s["end_frame"]].astype(np.float64)
                sim = frames @ result.prototypes[k]
                best = s["start_frame"] + int(sim.argmax())
                candidates.append((-float(sim.max()), stem, float(t[best])))
        images, paths = [], []
        for _, stem, when in sorted(candidates)[:per_step]:
            video = by_stem[stem][2].get("video")
            if not video or not Path(video).exists():
                continue
            try:
                images.append(frames_at(video, [when])[0])
            except Exception as e:  # a key frame is an extra: a video that fails to decode loses it only
                log.warning("%s: no key frame at %.2f s (%s)", video, when, e)
                continue
        if images:
            sub = folder / f"s{k + 1:02d}"
            paths = write_keyframes(images, sub)
        step["keyframes"] = [str(p.relative_to(folder.parent)) for p in paths]


def discover_batch(inputs: list[DiscoverInput], out_dir: str | Path, method: str = DEFAULT_METHOD,
                   num_steps: int | None = None, params: dict | None = None, tasks: dict | None = None,
                   text_encoder=None, keyframes: int = 3, graph_method: str = "precedence",
                   progress: bool = True) -> tuple[dict[str, TaskDiscovery], RunSummary]:
    """Discover the steps of each task's videos into `out_dir` (format in the module docstring).

    tasks: optional {task id: procvid.data.procedures.Task} whose step texts name the discovered steps
    (needs `text_encoder`, an Encoder or spec with a text tower, matching the features). Returns
    ({task: TaskDiscovery}, summary over videos)."""
    from procvid.data.procedures import Step, Task
    from procvid.graph.build import build_graphs, file_stem
    from procvid.outputs import file_digest

    out_dir = prepare_output_dir(out_dir)
    params = params or {}
    summary = RunSummary(total=len(inputs))
    failures = FailureLog(out_dir)
    manifest = Manifest(out_dir)
    by_task: dict[str, list] = {}
    with Progress(summary, "discover: read", progress) as bar:
        for item in inputs:
            try:
                by_task.setdefault(item.task, []).append((item, _load(item)))
            except (ProcvidError, OSError) as e:
                summary.fail(failures, str(item.segments), str(e))
            bar.update()
    encoder = None
    results: dict[str, TaskDiscovery] = {}
    sequences, graph_tasks = {}, {}
    for task, entries in sorted(by_task.items()):
        stem = file_stem(task)
        json_path, proto_path = out_dir / f"{stem}{DISCOVERY_SUFFIX}", out_dir / f"{stem}{PROTOTYPES_SUFFIX}"
        texts = tasks[task].texts() if tasks and task in tasks else None
        key = stamp("discover", [task, sorted((i.stem, digest(l[2]) if i.video is not None
                                               or split_ref(i.segments) else file_digest(i.segments))
                                              for i, l in entries)],
                    {"method": method, "params": params, "num_steps": num_steps, "texts": texts,
                     "encoder": getattr(text_encoder, "id", text_encoder) if texts else None,
                     "keyframes": keyframes})
        if manifest.is_current(json_path, key, proto_path):
            doc = json.loads(json_path.read_text(encoding="utf-8"))
            summary.skipped += len(entries)
        else:
            loaded = [l for _, l in entries]
            try:
                result, doc = discover_task(task, loaded, method, params, num_steps)
            except ProcvidError as e:
                for item, _ in entries:
                    summary.fail(failures, str(item.segments), f"task {task}: {e}")
                continue
            if texts:
                if encoder is None:
                    from procvid.encoders import load_encoder

                    encoder = text_encoder if not isinstance(text_encoder, str) else load_encoder(text_encoder)
                if not encoder.has_text:
                    raise ProcvidError(f"{encoder.id} has no text tower, so it cannot name discovered steps")
                emb = encoder.encode_texts(list(texts.values()))
                if np.shape(emb)[-1] != result.prototypes.shape[1]:
                    raise ProcvidError(f"step texts from {encoder.id} are {np.shape(emb)[-1]}-d, the features "
                                       f"{result.prototypes.shape[1]}-d: name steps with the encoder of the features")
                for step, (sid, sim) in zip(doc["steps"], name_steps(result.prototypes, texts, emb)):
                    step.update(name=texts[sid], name_step=sid, name_similarity=round(sim, 4))
            if keyframes:
                _keyframes(doc, result, loaded, out_dir / f"{stem}.keyframes", keyframes)
            _write_prototypes(proto_path, result.prototypes)
            atomic_write(json_path, json.dumps(doc, indent=1) + "\n")
            manifest.record(json_path, key)
            summary.done += len(entries)
        results[task] = TaskDiscovery(task, doc, [json_path, proto_path])
        names = {s["id"]: s.get("name") or s["text"] for s in doc["steps"]}
        sequences[task] = [p for p in doc["paths"].values() if p]
        graph_tasks[task] = Task(task, f"{task} (discovered steps)", {k: Step(k, v) for k, v in names.items()})
    if sequences:
        for task, built in build_graphs(sequences, graph_tasks, out_dir / "graphs", graph_method).items():
            results[task].graph = built["graph"]
            results[task].files.extend(built["files"])
    return results, summary


def _write_prototypes(path: Path, prototypes: np.ndarray) -> None:
    from safetensors.numpy import save

    atomic_write(path, save({"prototypes": np.ascontiguousarray(prototypes, dtype=np.float32)}))


def read_prototypes(path: str | Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["prototypes"]
