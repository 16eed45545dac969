"""The ground stage: segments or feature files of videos of known tasks -> one `<stem>.steps.json`
step path per video (`procvid ground` and `procvid run`), and the tasks' steps from files or datasets.

`<stem>.steps.json`:
{"format": "procvid-steps", "version": 1, "source": input file, "features": feature sidecar, "task": id,
 "encoder": text encoder id, "order": linear|graph|any, "params": {...}, "path": [step ids in order; a
 repeated step again where it is repeated, only with repeat_margin],
 "steps": [{"step", "text", "start", "end" (seconds), "start_frame", "end_frame" (exclusive), "similarity"}]}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from procvid.batch import FailureLog, Progress, RunSummary
from procvid.errors import ProcvidError
from procvid.ground import DROP_PERCENTILE, STEP_COST, ground_video
from procvid.outputs import digest, stamp
from procvid.shards import StageDocs
from procvid import features
from procvid.features import feature_sidecars
from procvid.segment.files import (add_input, is_segments, name_of, name_prefix, read_segments_file,
                                   segments_entries, stem_of)
from procvid.shards import has_shards

log = logging.getLogger(__name__)

FORMAT = "procvid-steps"
STEPS_SUFFIX = ".steps.json"


def load_tasks(spec: str) -> tuple[dict, dict]:
    """(tasks by id, graph scripts by task id) from a tasks.json, a CrossTask tasks file or a dataset."""
    from procvid.data import load_dataset
    from procvid.data.crosstask import read_tasks_file
    from procvid.data.files import read_json
    from procvid.data.procedures import Step, Task

    path = Path(spec)
    if path.is_file() and path.suffix == ".json":
        try:
            tasks = {str(t["id"]): Task(str(t["id"]), t.get("name", str(t["id"])),
                                        {s["id"]: Step(s["id"], s["text"]) for s in t["steps"]})
                     for t in read_json(path)}
        except (KeyError, TypeError) as e:
            raise ProcvidError(f"{path}: expected a tasks.json list of {{id, name, steps: [{{id, text}}]}} ({e})")
        return _with_steps(tasks, path), {}
    if path.is_file():
        return _with_steps(read_tasks_file(path), path), {}
    dataset = load_dataset(spec)
    return _with_steps(dataset.tasks, spec), dataset.graphs


def _with_steps(tasks: dict, source) -> dict:
    empty = [t for t, task in tasks.items() if not task.steps]
    if empty:
        raise ProcvidError(f"{source}: task {empty[0]} has no steps to ground")
    return tasks


def task_of(stem: str, task: str | None, tasks: dict) -> str:
    """The task of an input: `task` when given, the only task, or the `<task>_` prefix of its name."""
    if task:
        if task not in tasks:
            raise ProcvidError(f"unknown task {task!r} (tasks: {', '.join(sorted(tasks)[:20])})")
        return task
    if len(tasks) == 1:
        return next(iter(tasks))
    prefix = name_prefix(stem, name_of(stem))  # a name without "_" may be the task itself
    if prefix in tasks:
        return prefix
    raise ProcvidError(f"{stem}: cannot tell its task from the name; pass --task")


def read_units(source: Path) -> tuple[Path, list[tuple[int, int]] | None]:
    """(feature sidecar, segment frame ranges or None for every frame) of one input."""
    if not is_segments(source):
        return source, None
    header, segments = read_segments_file(source)
    return Path(header["features"]), [(s.start_frame, s.end_frame) for s in segments]


def choose_order(order: str, task_id: str, graphs: dict) -> str:
    """`auto`: graph order where the task's graph script is known, else the task's linear order."""
    if order == "auto":
        return "graph" if task_id in graphs else "linear"
    if order == "graph" and task_id not in graphs:
        raise ProcvidError(f"order graph: no graph script for task {task_id}; pass one (--graph FILE) or "
                           "choose another order")
    return order


def ground_file(source: Path, task, text_embeddings, encoder_id: str, order: str = "linear", graph=None,
                drop_percentile: float = DROP_PERCENTILE, step_cost: float = STEP_COST,
                repeat_margin: float | None = None) -> dict:
    """Ground one segments or feature file against its task's step texts; the steps.json document."""
    from procvid.features import load_features

    features, units = read_units(source)
    return ground_loaded(source, features, units, load_features(features), task, text_embeddings, encoder_id,
                         order, graph, drop_percentile, step_cost, repeat_margin)


def ground_loaded(source: Path, features: Path, units, loaded: tuple, task, text_embeddings, encoder_id: str,
                  order: str = "linear", graph=None, drop_percentile: float = DROP_PERCENTILE,
                  step_cost: float = STEP_COST, repeat_margin: float | None = None) -> dict:
    """`ground_file` on inputs the caller has read already: `units` as from read_units, `loaded` =
    load_features(features). repeat_margin: see procvid.ground.mark_repeats (None: each step once)."""
    import numpy as np

    X, t, meta = loaded
    text_dim = np.shape(text_embeddings)[-1]
    if np.ndim(X) == 2 and X.shape[1] != text_dim:
        raise ProcvidError(f"features from {meta.get('encoder') or 'an unknown encoder'} are "
                           f"{X.shape[1]}-d, step texts from {encoder_id} are {text_dim}-d: embed and ground with "
                           "one joint image-text model (--encoder on both; e.g. ViT-B-32:/path/to/weights)")
    if meta.get("encoder") and meta["encoder"] != encoder_id:
        log.warning("%s: features come from %s, step texts from %s: the similarities mean little",
                    source.name, meta["encoder"], encoder_id)
    result = ground_video(X, t, text_embeddings, list(task.steps), units, order, graph, drop_percentile, step_cost,
                          repeat_margin)
    period = float(t[1] - t[0]) if len(t) > 1 else 1.0
    params = {"drop_percentile": drop_percentile, "step_cost": step_cost}
    if repeat_margin is not None:  # only when chosen, so default documents stay as they were
        params["repeat_margin"] = repeat_margin
    return {"format": FORMAT, "version": 1, "source": str(source), "features": str(features),
            "task": task.id, "encoder": encoder_id, "order": order,
            "params": params,
            "path": result.path,
            "steps": [{"step": step, "text": task.steps[step].text, "start": round(float(t[a]), 3),
                       "end": round(float(t[b - 1]) + period, 3), "start_frame": a, "end_frame": b,
                       "similarity": round(sim, 4)} for step, a, b, sim in result.spans]}



def collect_ground_inputs(inputs: list[str]) -> dict[str, Path]:
    """Output stem -> segments file or feature sidecar; a folder gives its segments files, else its features."""
    found: dict[str, Path] = {}
    for arg in inputs:
        p = Path(arg)
        root = p if p.is_dir() else None  # a folder's sub-folders stay in the stems (and the outputs)
        if p.is_dir():
            files = segments_entries(p) or (feature_sidecars(p) if has_shards(p, features.STORE) else sorted(
                f for f in p.rglob("*.json") if f.with_suffix(".safetensors").exists()))
        elif p.is_file() and p.suffix in (".json", ".safetensors"):
            files = [p.with_suffix(".json") if p.suffix == ".safetensors" else p]
        else:
            raise ProcvidError(f"{p}: not a segments file, feature file or folder")
        for f in files:
            if is_segments(f):
                read_segments_file(f)  # a damaged file is named now, before its task is looked up
            add_input(found, stem_of(f, root), f)
    if not found:
        raise ProcvidError(f"no segments or feature files in {' '.join(inputs)}")
    return found


@dataclass
class GroundInput:
    """One video to ground: its stem, segments file or feature sidecar, task id, and optionally its
    segments already read (procvid.segment.files.SegmentedVideo) so nothing is read twice."""

    stem: str
    source: Path
    task: str
    video: object | None = None


class _NoText(ProcvidError):
    pass


class _Texts:
    """Per-worker state: the encoder (loaded on first use) and each task's step-text embeddings."""

    def __init__(self, encoder, device: str):
        """encoder: a spec (loaded on first use) or an Encoder."""
        self.spec, self.device, self.texts = encoder, device, {}
        self.encoder = None if isinstance(encoder, str) else encoder

    def __call__(self, task) -> tuple:
        if self.encoder is None:
            from procvid.encoders import load_encoder

            self.encoder = load_encoder(self.spec, device=self.device)
        if not self.encoder.has_text:  # a setting, not a bad input: stops the stage
            raise _NoText(f"{self.encoder.id} has no text tower, so it cannot name steps: ground with a joint "
                          "image-text model (--encoder ViT-B-32:/path/to/open_clip_pytorch_model.bin)")
        if task.id not in self.texts:
            self.texts[task.id] = self.encoder.encode_texts(list(task.texts().values()))
        return self.texts[task.id], self.encoder.id


def ground_batch(inputs: list[GroundInput], out_dir: str | Path, tasks: dict, graphs: dict, encoder=None,
                 order: str = "auto", drop_percentile: float = DROP_PERCENTILE, step_cost: float = STEP_COST,
                 device: str = "auto", progress: bool = True, repeat_margin: float | None = None,
                 shards: int | None = None) -> tuple[dict[str, dict], RunSummary]:
    """Ground every input against its task's step texts into ``out_dir/<stem>.steps.json``; a
    steps file whose inputs and settings did not change is read, not recomputed. Returns
    ({stem: steps document}, summary); failures are listed in ``out_dir/failures.jsonl``. encoder:
    a spec, an Encoder, or None for the encoder that made each input's features. repeat_margin: mark
    repeated steps (procvid.ground.mark_repeats; None, the default: each step once). shards: keep the
    documents in that many Parquet shards instead (procvid.shards, store "steps")."""
    out_dir = Path(out_dir)
    docs = StageDocs(out_dir, "steps", STEPS_SUFFIX, shards)
    inputs = docs.plan(inputs, lambda item: item.stem)
    summary = RunSummary(total=len(inputs))
    failures = FailureLog(out_dir)
    texts = {}  # encoder spec -> _Texts
    orders = {item.task: choose_order(order, item.task, graphs) for item in inputs}  # a bad setting stops here
    result = {}
    with Progress(summary, "ground", progress) as bar:
        for item in inputs:
            task = tasks[item.task]
            try:
                chosen = orders[task.id]
                graph = graphs.get(task.id) if chosen == "graph" else None
                source = digest(item.video.doc) if item.video is not None else features.entry_digest(item.source)
                settings = {"encoder": encoder if isinstance(encoder, str) or encoder is None else encoder.id,
                            "order": chosen, "drop_percentile": drop_percentile, "step_cost": step_cost}
                if repeat_margin is not None:  # absent by default: earlier outputs stay current
                    settings["repeat_margin"] = repeat_margin
                key = stamp("ground", [source, task.id, task.texts(), digest(_edges(graph))], settings)
                doc = docs.current(item.stem, key)
                if doc is not None and doc.get("format") == FORMAT:
                    docs.skip(item.stem)
                    summary.skipped += 1
                else:
                    spec = encoder if encoder is not None else _features_spec(item)
                    embeddings, encoder_id = texts.setdefault(spec if isinstance(spec, str) else id(spec),
                                                              _Texts(spec, device))(task)
                    if item.video is not None:
                        v = item.video
                        doc = ground_loaded(v.segments, Path(v.doc["features"]), v.units, v.features, task,
                                            embeddings, encoder_id, chosen, graph, drop_percentile, step_cost,
                                            repeat_margin)
                    else:
                        doc = ground_file(item.source, task, embeddings, encoder_id, chosen, graph,
                                          drop_percentile, step_cost, repeat_margin)
                    docs.write(item.stem, key, doc)
                    summary.done += 1
                result[item.stem] = doc
            except _NoText:
                raise
            except ProcvidError as e:
                docs.skip(item.stem)
                summary.fail(failures, str(item.source), str(e))
            finally:
                bar.update()
    docs.close()  # an interrupted run leaves its shards in progress unwritten: those are redone
    return result, summary


def _features_spec(item: GroundInput) -> str:
    """The spec of the encoder that made an input's features (recorded by procvid embed)."""
    from procvid.features import read_sidecar

    features = Path(item.video.doc["features"]) if item.video is not None else read_units(item.source)[0]
    spec = (read_sidecar(features) or {}).get("encoder_spec")
    if not spec:
        raise ProcvidError(f"{features}: the features do not say which encoder made them; pass --encoder")
    return spec


def _edges(graph) -> list:
    return sorted(map(str, graph.edges)) if graph is not None else []
