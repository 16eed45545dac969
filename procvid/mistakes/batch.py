"""The mistakes stage: online mistake detection over annotated datasets (`procvid mistakes`) and over
the grounded step paths of `procvid run`.

Output folder (one file per sequence, written atomically; a rerun that would write the same content
rewrites nothing, by the folder's manifest):
  <sequence>.mistakes.json  {"format": "procvid-mistakes", "version": 1, "video", "task", "method",
                             "settings", "steps": [{"index", "step", "text", "flag", "score", "reason",
                             "names" (the steps the reason names), "probability"?, "label"?, "start"?,
                             "end"?}], "flags": [0/1 per step], "flagged", "absent_at_end": [steps
                             required but not done when the sequence ends]}
  predictions.json          {sequence: [0/1 flag per step, in step order]}
  settings.json             the detector, its settings, how they were chosen (cross-validation table)
  scores.json               when the sequences carry mistake labels: step-level scores
                            (procvid.metrics.mistakes), per-tag recall, false alarms on error-free ones

Training data (`protocol`): "split" learns from the mistake-free videos of the dataset's train split
and scores another split (Assembly101-O: 135 -> 182); "loo" scores every video with what its task's
other mistake-free videos teach (CaptainCook4D: graphs from the recipe's normal recordings, the
scored recording left out). "auto" is split when the train split holds only mistake-free videos,
else loo. Settings not given are chosen by cross-validation within the training
videos under "split" (procvid.mistakes.select), else they keep their defaults.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.mistakes.base import MISSING, Verdict, labels_of
from procvid.outputs import prepare_output_dir, stamp
from procvid.shards import StageDocs

log = logging.getLogger(__name__)

FORMAT = "procvid-mistakes"
SUFFIX = ".mistakes.json"


@dataclass
class MistakeRun:
    out: Path | None  # where it was written (None: kept in memory)
    method: str
    settings: dict
    protocol: str
    selection: dict | None  # cross-validation (procvid.mistakes.select.Selection.to_dict), if any
    docs: dict = field(default_factory=dict)  # sequence -> its <sequence>.mistakes.json document
    scores: dict | None = None  # step-level scores etc. when labelled (summarize)
    seconds: float = 0.0


def is_clean(video) -> bool:
    """A video without any recorded mistake (no error tags, not marked as an error recording)."""
    return not video.meta.get("is_error") and not any(s.errors for s in video.segments) \
        and not video.meta.get("missing_errors")


def sequence_doc(video_id: str, task_id: str, path: list, verdicts: list[Verdict], absent: list, texts: dict,
                 method: str, settings: dict, labels: list | None = None, times: list | None = None) -> dict:
    steps = []
    for i, (step, v) in enumerate(zip(path, verdicts)):
        row = {"index": i, "step": step, "text": texts.get(step, str(step)), "flag": v.flag,
               "score": round(float(v.score), 6), "reason": v.reason, "names": [texts.get(s, str(s)) for s in v.steps]}
        if v.probability is not None:
            row["probability"] = round(float(v.probability), 6)
        if labels is not None:
            row["label"] = labels[i]
        if times is not None and times[i] is not None:
            row["start"], row["end"] = times[i]
        steps.append(row)
    flags = [int(v.flag) for v in verdicts]
    return {"format": FORMAT, "version": 1, "video": video_id, "task": task_id, "method": method,
            "settings": settings, "steps": steps, "flags": flags, "flagged": sum(flags), "absent_at_end": absent}


def absent_steps(path: list, verdicts: list[Verdict], unfinished: list) -> list:
    """Steps reported missing by the end: named as a missing precondition on the way and still not done
    when the sequence ends, or required and not done (unfinished)."""
    done = set(path)
    named = [s for v in verdicts if v.reason == MISSING for s in v.steps if s not in done]
    return list(dict.fromkeys([*named, *unfinished]))


def write_docs(out_dir: Path, docs: dict, extra: dict, shards: int | None = None) -> None:
    """Each sequence's document and the extra files (name -> JSON-able), skipping current ones.
    shards: the sequences' documents in that many Parquet shards instead (procvid.shards, store "mistakes")."""
    from procvid.graph.build import file_stem

    stems = {name: "/".join(map(file_stem, name.split("/"))) for name in docs}  # sub-folders of stems mirrored
    if len(set(stems.values())) != len(stems):
        raise ProcvidError("two sequences share a file name once made file-name-safe")
    store = StageDocs(out_dir, "mistakes", SUFFIX, shards)
    names = store.plan(list(docs), lambda name: stems[name])
    for name in names:
        key = stamp("mistakes", [json.dumps(docs[name], indent=1, default=str) + "\n"], {})
        if store.current(stems[name], key) is None:
            store.write(stems[name], key, docs[name])
        else:
            store.skip(stems[name])
    store.close()
    files = StageDocs(out_dir, "mistakes", "")
    for name, doc in extra.items():
        key = stamp("mistakes", [json.dumps(doc, indent=1, default=str) + "\n"], {})
        if files.current(name, key) is None:
            files.write(name, key, doc)


def read_graphs(folder, tasks: dict | None) -> dict:
    """Graph scripts of a folder (node-link JSON, one per task as `procvid graph build` writes them;
    the task is the graph's task_id attribute, else the file stem); files of other formats are skipped.
    tasks: the known tasks (a graph of another task is refused), or None to take every graph."""
    from procvid.graph.export import read_json

    folder = Path(folder)
    if not folder.is_dir():
        raise ProcvidError(f"{folder}: not a folder of graph scripts")
    graphs = {}
    for path in sorted(folder.glob("*.json")):
        if path.name.endswith(SUFFIX) or path.name in ("predictions.json", "settings.json", "scores.json"):
            continue
        graph = read_json(path)
        task_id = str(graph.graph.get("task_id", path.stem))
        if tasks is not None and task_id not in tasks:
            raise ProcvidError(f"{path}: task {task_id!r} is not a task of the dataset")
        graphs[task_id] = graph
    if not graphs:
        raise ProcvidError(f"{folder}: no graph scripts (*.json) found")
    return graphs


def detect_dataset(dataset, method: str, out_dir, settings: dict | None = None, split: str | None = None,
                   graphs: dict | None = None, protocol: str = "auto", folds: int = 5) -> MistakeRun:
    """Online mistake detection over a dataset's videos (module doc); writes OUT and returns the run."""
    import time

    started = time.perf_counter()
    run = run_detection(dataset, method, settings, split, graphs, protocol, folds)
    run.out = Path(out_dir)
    extra = {"predictions.json": {name: doc["flags"] for name, doc in run.docs.items()},
             "settings.json": {"method": method, "settings": run.settings, "protocol": run.protocol,
                               "dataset": dataset.name, "split": split, "selection": run.selection}}
    if run.scores is not None:
        extra["scores.json"] = run.scores
    write_docs(prepare_output_dir(out_dir), run.docs, extra)
    run.seconds = time.perf_counter() - started
    return run


def run_detection(dataset, method: str, settings: dict | None = None, split: str | None = None,
                  graphs: dict | None = None, protocol: str = "auto", folds: int = 5) -> MistakeRun:
    """detect_dataset without writing: the documents and scores in memory."""
    import time

    from procvid.mistakes.select import cross_validate
    from procvid.registry import MISTAKES

    started = time.perf_counter()
    cls = MISTAKES.get(method)
    settings = dict(settings or {})
    if protocol == "auto":  # split where the train split is mistake-free (Assembly101-O), else leave one out
        clean_train = "train" in dataset.splits and all(is_clean(v) for v in dataset.split("train").videos)
        protocol = "split" if clean_train and (split or "test") != "train" else "loo"
    if protocol not in ("split", "loo"):
        raise ProcvidError(f"protocol is split or loo, not {protocol!r}")
    steps = {t: list(task.steps) for t, task in dataset.tasks.items()}
    texts = {t: task.texts() for t, task in dataset.tasks.items()}
    selection = None
    if protocol == "split":
        if "train" not in dataset.splits:
            raise ProcvidError(f"{dataset.name} has no train split to learn from (use protocol loo)")
        scored = dataset.split(split or ("test" if "test" in dataset.splits else "train")).videos
        train = sorted((v for v in dataset.split("train").videos if v.segments and is_clean(v)),
                       key=lambda v: v.video_id)
        if not train:
            raise ProcvidError(f"{dataset.name}: no mistake-free training videos to learn from")
        training = [(v.task_id, v.path) for v in train]
        selection = cross_validate(cls, training, steps, settings, folds, graphs)
        settings = selection.settings
        sequences: dict = {}
        for task_id, path in training:
            sequences.setdefault(task_id, []).append(path)
        detector = cls.build(sequences, steps, graphs, **settings)
        detectors = {v.video_id: detector for v in scored}
    else:
        scored = dataset.split(split).videos if split else dataset.videos
        clean = {}
        for v in dataset.videos:
            if v.segments and is_clean(v):
                clean.setdefault(v.task_id, []).append(v)
        shared, detectors = {}, {}
        for v in scored:
            own = any(u is v for u in clean.get(v.task_id, []))
            if graphs is not None and cls.GRAPH_SETTINGS:  # given graphs replace what would be learned
                key = "given"
            else:
                key = (v.task_id, v.video_id if own else None)
            if key not in shared:
                others = [u.path for u in clean.get(v.task_id, []) if u is not v]
                if graphs is None and not others:
                    shared[key] = None
                else:
                    shared[key] = cls.build({v.task_id: others} if others else {}, steps, graphs, **settings)
            detectors[v.video_id] = shared[key]
        detector = next((d for d in shared.values() if d is not None), None)
        if detector is None:
            raise ProcvidError(f"{dataset.name}: no mistake-free videos to learn from")
    used = detector.describe()
    docs = {}
    for v in scored:
        det = detectors[v.video_id]
        if det is None:  # a task without other mistake-free videos: nothing learned, every step unknown
            verdicts = [Verdict(True, 1.0, "unknown step") for _ in v.path]
            unfinished = []
        else:
            verdicts = det.run(v.task_id, v.path)
            unfinished = det.unfinished(v.task_id, v.path)
        times = [(s.start, s.end) if s.start is not None else None for s in v.segments]
        absent = absent_steps(v.path, verdicts, unfinished)
        docs[v.video_id] = sequence_doc(v.video_id, v.task_id, v.path, verdicts, absent, texts.get(v.task_id, {}),
                                        method, used, labels_of(v), times)
    run = MistakeRun(None, method, used, protocol, selection.to_dict() if selection else None, docs)
    run.scores = summarize(scored, docs)
    run.seconds = time.perf_counter() - started
    return run


def summarize(videos, docs: dict) -> dict | None:
    """Scores of labelled sequences: pooled step scores, recall per error tag, false alarms on clean
    videos, and the 'Missing Step' recall (None when no video carries a mistake label)."""
    from collections import Counter

    from procvid.metrics.mistakes import missing_recall, mistake_scores, tag_recall

    videos = list(videos)
    if not any(not is_clean(v) for v in videos):
        return None
    labels = [x for v in videos for x in labels_of(v)]
    flags = [x for v in videos for x in docs[v.video_id]["flags"]]
    out = {"steps": mistake_scores(labels, flags)}
    flag_map = {v.video_id: docs[v.video_id]["flags"] for v in videos}
    tags = Counter(t for v in videos for s in v.segments for t in s.errors)
    out["tag_recall"] = {tag: dict(zip(("flagged", "total"), tag_recall(videos, flag_map, tag)))
                         for tag in sorted(tags)}
    if any(v.meta.get("missing_errors") for v in videos):
        absent = {v.video_id: docs[v.video_id]["absent_at_end"] for v in videos}
        out["missing_step"] = dict(zip(("reported", "total"), missing_recall(videos, absent)))
    clean = [v for v in videos if is_clean(v)]
    if clean:
        flagged = [docs[v.video_id]["flagged"] for v in clean]
        absent = [bool(docs[v.video_id]["absent_at_end"]) for v in clean]
        steps = sum(len(v.path) for v in clean)
        out["false_alarms"] = {"videos": len(clean), "flags": sum(flagged), "steps": steps,
                               "per_video": sum(flagged) / len(clean), "step_rate": sum(flagged) / max(steps, 1),
                               "videos_with_any": sum(1 for f in flagged if f) / len(clean),
                               "absent_reported": sum(absent) / len(clean)}
    return out


def format_summary(scores: dict) -> list[str]:
    from procvid.metrics.mistakes import format_scores

    lines = [f"steps: {format_scores(scores['steps'])}"]
    for tag, r in scores.get("tag_recall", {}).items():
        if tag != "mistake" and r["total"]:
            lines.append(f"recall of {tag}: {r['flagged']}/{r['total']} = {100 * r['flagged'] / r['total']:.1f}%")
    if "missing_step" in scores and scores["missing_step"]["total"]:
        m = scores["missing_step"]
        lines.append(f"Missing Step reported absent by the end: {m['reported']}/{m['total']} = "
                     f"{100 * m['reported'] / m['total']:.1f}%")
    if "false_alarms" in scores:
        fa = scores["false_alarms"]
        lines.append(f"false alarms on {fa['videos']} mistake-free videos: {fa['per_video']:.2f} per video, "
                     f"{100 * fa['step_rate']:.1f}% of their steps, {100 * fa['videos_with_any']:.1f}% of them "
                     f"with any; a step reported missing at the end in {100 * fa['absent_reported']:.1f}%")
    return lines


# ---------------------------------------------------------------------------- procvid run


def timeline_marks(docs: dict) -> dict:
    """stem -> (start, end, reason) of each flagged step with times, for the report's timelines
    (procvid.report.timeline draw_timelines(marks=...))."""
    out = {}
    for stem, doc in docs.items():
        rows = [(r["start"], r["end"], r["reason"] + (": " + ", ".join(r["names"]) if r["names"] else ""))
                for r in doc["steps"] if r["flag"] and r.get("start") is not None]
        if rows:
            out[stem] = rows
    return out



RUN_SETTINGS = {"successors": True}  # procvid run: swapped steps flagged on both sides


def read_step_paths(inputs: list[str]) -> dict[str, dict]:
    """stem -> steps.json document of grounded videos (the ground stage's output): files, folders of them
    (their sub-folders kept in the stems) or a folder of the stage's Parquet shards."""
    from procvid.data.files import read_json
    from procvid.ground_files import STEPS_SUFFIX
    from procvid.segment.files import add_input
    from procvid.shards import ShardStore, has_shards

    found: dict[str, dict] = {}
    sources: dict = {}  # stem -> where its document is

    def add(stem: str, doc, where) -> None:
        if not isinstance(doc, dict) or "path" not in doc or "task" not in doc:
            raise ProcvidError(f"{where}: not a grounded steps document (procvid ground writes them)")
        add_input(sources, stem, where)
        found[stem] = doc

    for arg in inputs:
        p = Path(arg)
        if p.is_dir() and has_shards(p, "steps"):
            for key, shard, row in ShardStore(p, "steps").rows():  # each shard read once
                add(key, row["doc"], f"{shard}#{key}")
        elif p.is_dir():
            for f in sorted(p.rglob("*" + STEPS_SUFFIX)):
                add(f.relative_to(p).as_posix()[: -len(STEPS_SUFFIX)], read_json(f), f)
        elif p.is_file() and p.name.endswith(STEPS_SUFFIX):
            add(p.name[: -len(STEPS_SUFFIX)], read_json(p), p)
        else:
            raise ProcvidError(f"{p}: not a steps file (<stem>{STEPS_SUFFIX}) or a folder of them")
    if not found:
        raise ProcvidError(f"no grounded steps (*{STEPS_SUFFIX}) in {' '.join(inputs)}")
    return found


def check_paths(paths: dict[str, dict], graphs: dict, tasks: dict, out_dir, settings: dict | None = None,
                shards: int | None = None) -> dict:
    """`procvid run`'s stage: each grounded video's step path checked online against its task's graph
    script with the precondition rule. paths: stem -> its steps.json document ("task", "path", "steps"
    with start/end); graphs: task id -> graph script. Videos of tasks without a graph are left out.
    Writes OUT/<stem>.mistakes.json (or `shards` Parquet shards) and predictions.json; returns stem -> document."""
    from procvid.mistakes.precondition import PreconditionDetector

    settings = {**RUN_SETTINGS, **(settings or {})}
    todo = {stem: doc for stem, doc in paths.items() if doc.get("task") in graphs and doc.get("path") is not None}
    if not todo:
        return {}
    detector = PreconditionDetector(PreconditionDetector.fit({}, {}, graphs), **settings)
    used = detector.describe()
    docs = {}
    for stem, doc in sorted(todo.items()):
        task_id, path = doc["task"], list(doc["path"])
        verdicts = detector.run(task_id, path)
        absent = absent_steps(path, verdicts, detector.unfinished(task_id, path))
        spans = [(s.get("start"), s.get("end")) for s in doc.get("steps", [])]
        times = spans if len(spans) == len(path) else None
        texts = tasks[task_id].texts() if task_id in tasks else \
            {n: d["text"] for n, d in graphs[task_id].nodes(data=True) if d.get("text")}  # the graph names them
        docs[stem] = sequence_doc(stem, task_id, path, verdicts, absent, texts, "precondition", used, times=times)
    write_docs(prepare_output_dir(out_dir), docs, {"predictions.json": {s: d["flags"] for s, d in docs.items()}},
               shards)
    return docs
