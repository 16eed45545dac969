"""The forecast stage: each video's feature file -> `<stem>.forecast.json`, what comes next after a time
(`procvid forecast` and `procvid run`).

`<stem>.forecast.json`:
{"format": "procvid-forecast", "version": 1, "video", "features", "task", "task_source": given|recognized,
 "task_probabilities"? (recognized: the top 3), "at" (seconds: the end of what was seen), "at_end",
 "method": latent|graph-walk, "model"?, "observed": [grounded step ids started before "at"],
 "next": [{"step", "text", "probability"}] (the top `top`, best first)}

Methods. "latent": the latent forecaster (procvid.forecast.latent) when it was trained on features of
the same encoder and knows the task (or recognises it). Otherwise "graph-walk": the walk on the task's
graph script (procvid.graph.script_model.GraphWalk) after the grounded steps that started before "at";
a video with neither is left out and counted in the returned note.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass
from pathlib import Path

from procvid.batch import FailureLog, Progress, RunSummary
from procvid.errors import ProcvidError
from procvid.features import entry_digest
from procvid.outputs import digest, prepare_output_dir, stamp
from procvid.shards import StageDocs
from procvid.threads import torch_threads

log = logging.getLogger(__name__)

FORMAT = "procvid-forecast"
SUFFIX = ".forecast.json"


def shipped_forecaster() -> Path:
    from procvid.paths import CHECKPOINTS_DIR

    return CHECKPOINTS_DIR / "procvid-forecast"


def load_forecaster(spec):
    """A LatentForecaster from a model folder, "shipped" (checkpoints/procvid-forecast), or as given."""
    from procvid.forecast.latent import LatentForecaster

    if spec is None or isinstance(spec, LatentForecaster):
        return spec
    folder = shipped_forecaster() if spec == "shipped" else Path(spec)
    return LatentForecaster.from_pretrained(folder)


@dataclass
class ForecastInput:
    """One video: its stem, feature sidecar, task (None: recognise it) and grounded steps.json document."""

    stem: str
    features: Path
    task: str | None = None
    grounded: dict | None = None


def _step_texts(task_id, tasks: dict, forecaster) -> dict:
    if task_id in tasks:
        return tasks[task_id].texts()
    if forecaster is not None and task_id in forecaster.vocab.texts:
        return forecaster.vocab.texts[task_id]
    return {}


def forecast_one(item: ForecastInput, tasks: dict, graphs: dict, forecaster, at: float | None, top: int = 3,
                 loaded: tuple | None = None) -> dict | None:
    """The forecast document of one video, or None when no method applies (module doc)."""
    import numpy as np

    from procvid.features import load_features

    X, t, meta = loaded if loaded is not None else load_features(item.features)
    period = float(np.median(np.diff(t))) if len(t) > 1 else 0.5
    end = float(t[-1]) + period if len(t) else 0.0
    until = end if at is None else min(float(at), end)
    grounded = item.grounded or {}
    observed = [s["step"] for s in grounded.get("steps", []) if s.get("start", 0.0) < until]
    doc = {"format": FORMAT, "version": 1, "video": item.stem, "features": str(item.features), "task": item.task,
           "task_source": "given", "at": round(until, 3), "at_end": until >= end, "observed": observed}
    known = forecaster is not None and (item.task is None or item.task in forecaster.vocab.tasks)
    if known and meta.get("encoder") == forecaster.encoder:
        if item.task is None:
            probs = forecaster.recognize([(X, t)], [until])[0]
            doc["task"], doc["task_source"] = max(probs, key=probs.get), "recognized"
            doc["task_probabilities"] = {k: round(v, 4) for k, v in sorted(probs.items(), key=lambda kv: -kv[1])[:3]}
        dist = forecaster.predict([(X, t)], [until], [doc["task"]])[0]  # prototype readout
        doc["method"], doc["model"] = "latent", str(forecaster.folder) if forecaster.folder else None
    elif item.task in graphs and item.task in tasks:
        from procvid.graph.script_model import GraphWalk

        dist = GraphWalk({item.task: graphs[item.task]}).predict(item.task, [observed])[0]
        doc["method"] = "graph-walk"
    else:
        return None
    texts = _step_texts(doc["task"], tasks, forecaster)
    from procvid.graph.script_model import ranked

    best = ranked(dist, [s for s in dist if s in texts] or [s for s in dist if not isinstance(s, str)])[:top]
    total = sum(dist.get(s, 0.0) for s in texts) or 1.0  # the task's steps (END left out) sum to 1
    doc["next"] = [{"step": s, "text": texts.get(s, str(s)), "probability": round(p / total, 4)} for s, p in best]
    return doc


def forecast_batch(inputs: list[ForecastInput], out_dir, tasks: dict | None = None, graphs: dict | None = None,
                   forecaster="shipped", at: float | None = None, top: int = 3, progress: bool = True,
                   shards: int | None = None) -> tuple[dict[str, dict], RunSummary, list[str]]:
    """Forecast every input into out_dir/<stem>.forecast.json (a current file is read, not recomputed).
    Returns ({stem: document}, summary, notes): notes name what could not be forecast and why.
    forecaster: a model folder, "shipped", a LatentForecaster, or None (graph walk only). shards: the
    documents in that many Parquet shards instead (procvid.shards, store "forecast")."""
    tasks, graphs = tasks or {}, graphs or {}
    if at is not None and at < 0:
        raise ProcvidError(f"--at must be a time in seconds >= 0, got {at}")
    model = load_forecaster(forecaster)
    out_dir = prepare_output_dir(out_dir)
    docs = StageDocs(out_dir, "forecast", SUFFIX, shards)
    inputs = docs.plan(inputs, lambda item: item.stem)
    summary = RunSummary(total=len(inputs))
    failures = FailureLog(out_dir)
    model_key = digest(model.info) if model is not None else None
    result, left_out, other_encoder = {}, [], set()
    # one forward pass per video of a small model: one thread (procvid.threads; 13x faster on 2 busy cores)
    with torch_threads(1), Progress(summary, "forecast", progress) as bar:
        for item in inputs:
            try:
                graph = graphs.get(item.task)
                key = stamp("forecast", [entry_digest(item.features), item.task, digest(item.grounded or {}),
                                         digest(sorted(map(str, graph.edges)) if graph is not None else [])],
                            {"model": model_key, "at": at, "top": top})
                doc = docs.current(item.stem, key)
                if doc is not None and doc.get("format") == FORMAT:
                    docs.skip(item.stem)
                    summary.skipped += 1
                else:
                    doc = forecast_one(item, tasks, graphs, model, at, top)
                    if doc is None:
                        docs.skip(item.stem)
                        left_out.append(item.stem)
                    else:
                        docs.write(item.stem, key, doc)
                        summary.done += 1
                if doc is not None:
                    result[item.stem] = doc
                    if doc["method"] != "latent" and model is not None:
                        other_encoder.add(item.stem)
            except (ProcvidError, OSError, ValueError) as e:
                docs.skip(item.stem)
                summary.fail(failures, str(item.features), str(e))
            bar.update()
    docs.close()
    notes = []
    if other_encoder and model is not None:
        notes.append(f"{len(other_encoder)} video(s) forecast by the graph walk on their grounded steps: the "
                     f"forecaster is for {model.encoder} features and known tasks")
    if left_out:
        notes.append(f"{len(left_out)} video(s) not forecast: no forecaster for their features and no graph "
                     "script of their task")
    return result, summary, notes


def summary_line(doc: dict) -> str:
    """'what comes next' in one line."""
    where = "at the end" if doc["at_end"] else f"at {doc['at']:.1f} s"
    nexts = ", ".join(f"{n['text']} ({100 * n['probability']:.0f}%)" for n in doc["next"])
    task = f"{doc['task']}{' (recognized)' if doc['task_source'] == 'recognized' else ''}"
    return f"{doc['video']} [{task}] what comes next {where}: {nexts} [{doc['method']}]"


def forecast_strip(doc: dict) -> str:
    """HTML for the report: the top next steps as probability bars (under a video's timeline)."""
    where = "at the end" if doc["at_end"] else f"at {doc['at']:.1f} s"
    bars = "".join(
        "<div style='display:flex;align-items:center;gap:8px;font-size:13px'>"
        f"<span style='display:inline-block;width:{max(2, round(200 * n['probability']))}px;height:10px;"
        f"background:#4c78a8'></span><span>{html.escape(n['text'])} "
        f"<span class='muted'>{100 * n['probability']:.0f}%</span></span></div>" for n in doc["next"])
    how = "latent forecaster" if doc["method"] == "latent" else "graph walk on the grounded steps"
    return (f"<div class='forecast'><p>what comes next {where} <span class='muted'>({html.escape(how)}"
            f"{', task recognized' if doc['task_source'] == 'recognized' else ''})</span></p>{bars}</div>")


def run_stage(videos: list, grounding: dict, tasks: dict, graphs: dict, out_dir, forecaster: str = "shipped",
              at: float | None = None, progress: bool = True, shards: int | None = None) -> tuple[dict, list, dict]:
    """`procvid run`'s forecast stage over its segmented videos (procvid.segment.files.SegmentedVideo):
    ({stem: document}, skipped entries (what, why, flag) as the pipeline lists them, {input: failure reason}).
    forecaster: a model folder, "shipped" or "none" (graph walk on the grounded steps only)."""
    flag = "forecaster: DIR in the run preset (a model from procvid train forecast on these videos' features)"
    model = None
    if forecaster != "none":
        try:
            model = load_forecaster(forecaster)
        except ProcvidError as e:
            return {}, [("no next-step forecast", str(e), flag)], {}
    inputs = [ForecastInput(v.stem, Path(v.doc["features"]), v.task if v.task in tasks else None,
                            grounding.get(v.stem)) for v in videos if v.doc.get("features")]
    if model is None:
        inputs = [i for i in inputs if i.task is not None]
    docs, summary, notes = forecast_batch(inputs, out_dir, tasks, graphs, model, at, progress=progress, shards=shards)
    skipped = [("latent next-step forecast for some videos", note, flag) for note in notes]
    return docs, skipped, dict(summary.reasons)
