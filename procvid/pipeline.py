"""`procvid run`: videos -> features -> segments -> grounded steps -> graph scripts -> key-step
generation example -> HTML report.

Every stage writes files that the next reads, and each stage skips work whose outputs are
already there, so a rerun after an interruption continues where it stopped.
Layout of OUT: features/, segments/ (JSON, CSV, key frames, timelines), steps/ (grounded step paths),
graphs/, generate/<task>/ (plan, key-step images, contact sheet), report/index.html.
"""

from __future__ import annotations

import functools
import json
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from procvid.errors import ProcvidError
from procvid.ground_files import STEPS_SUFFIX

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Pipeline settings; a YAML preset (configs/run/*.yaml) sets any of these fields."""

    encoder: str = "video"  # segments and grounding: the clip-level model, in the default text space
    fps: float = 2.0
    method: str = "sbd"
    method_params: dict = field(default_factory=dict)
    ground_order: str = "auto"  # linear, graph, any; auto: graph where the task's graph is known
    graph_method: str = "precedence"
    graph_tolerance: float = 0.0
    generate: bool = True  # one key-step generation example per task
    generate_steps: int = 5
    kig: str | None = None  # key-step image generator folder (None: the shipped procvid-kig)
    seed: int = 0
    device: str = "auto"
    workers: int = 2

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides) -> RunConfig:
        values = {}
        if path:
            try:
                values = yaml.safe_load(Path(path).read_text()) or {}
            except (OSError, yaml.YAMLError) as e:
                raise ProcvidError(f"{path}: cannot read config ({e})") from None
            unknown = set(values) - set(cls.__dataclass_fields__)
            if unknown:
                raise ProcvidError(f"{path}: unknown settings {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class RunResult:
    report: Path
    segmentation: dict  # method label -> pooled scores (procvid.metrics.segmentation.summarize), if GT
    grounding: dict  # stem -> steps.json document, for videos of a known task
    grounding_scores: dict  # score_grounding, over the grounded videos with ground truth
    graphs: dict  # task id -> {"name", "graph", "videos", "source", "png", "scores"}
    generation: dict  # task id -> {"name", "contact_sheet", "html", "steps", "kig"}


@dataclass
class Video:
    """One segmented video of the run: its segments file (and its content, read once) and what is
    known about it."""

    stem: str
    segments: Path
    doc: dict  # the segments file (procvid.segment.run)
    task: str | None = None
    truth: list | None = None  # (start, end, step) ground truth, if annotated

    @functools.cached_property
    def features(self) -> tuple:
        """(X, t, meta) of its features, read once for grounding and the timeline."""
        from procvid.features import load_features

        return load_features(self.doc["features"])

    @property
    def units(self) -> list[tuple[int, int]]:
        """Its segments as feature frame ranges."""
        return [(r["start_frame"], r["end_frame"]) for r in self.doc["segments"]]


def run_pipeline(inputs: list, out: str | Path, config: RunConfig, annotations: str | None = None,
                 steps: str | None = None, task: str | None = None, progress: bool = True) -> RunResult:
    """Run every stage and write OUT/report/index.html.

    annotations: a dataset (name or folder) giving each video's task and true steps (ground truth in
    timelines and scores, graph scripts from the annotated orders). steps: the tasks' steps only (a
    tasks.json, CrossTask tasks file or dataset; each video's task from `task` or its name prefix);
    the graph scripts then come from the grounded step paths."""
    from procvid.data import load_dataset
    from procvid.ground_files import load_tasks, task_of
    from procvid.segment import get_detector
    from procvid.segment.run import SEGMENTS_SUFFIX, read_ground_truth, segment_batch
    from procvid.video import Sampling

    out = Path(out)
    dataset = load_dataset(annotations) if annotations else None
    if dataset is not None:
        tasks, known_graphs = dataset.tasks, dataset.graphs
    else:
        tasks, known_graphs = load_tasks(steps) if steps else ({}, {})
    gt_dir = _ground_truth_dir(dataset)
    truth = read_ground_truth(gt_dir) if gt_dir else {}
    detector = get_detector(config.method, **config.method_params)
    summary = segment_batch(inputs, out / "segments", detector, features_dir=out / "features",
                            encoder=config.encoder, sampling=Sampling(fps=config.fps), device=config.device,
                            workers=config.workers, progress=progress)
    log.info("segments: %s", summary.line())

    task_by_video = {v.video_id: v.task_id for v in dataset.videos} if dataset else {}
    videos = []
    for f in sorted((out / "segments").rglob("*" + SEGMENTS_SUFFIX)):
        stem = f.name[: -len(SEGMENTS_SUFFIX)]
        video_task = task_by_video.get(stem) if dataset else (task_of(stem, task, tasks) if tasks else None)
        videos.append(Video(stem, f, json.loads(f.read_text()), video_task, truth.get(stem)))
    grounding = ground_videos(videos, out / "steps", tasks, known_graphs, config, progress)
    draw_timelines(videos, grounding, out / "steps", progress)
    graphs = build_task_graphs(tasks, videos, grounding, dataset, out / "graphs", config)
    generation = generation_examples(videos, graphs, out / "generate", config, progress) if config.generate else {}
    segmentation = score_segments(out / "segments", gt_dir) if gt_dir else {}
    from procvid.report.html import write_report

    grounding_scores = score_grounding(videos, grounding)
    report = write_report(out, videos, graphs, segmentation, grounding, generation, grounding_scores)
    return RunResult(report, segmentation, grounding, grounding_scores, graphs, generation)


def _ground_truth_dir(dataset) -> Path | None:
    """Folder of CrossTask-format annotation CSVs for the timelines, if the dataset has one."""
    if dataset is None or dataset.root is None:
        return None
    folder = Path(dataset.root) / "annotations"
    return folder if folder.is_dir() else None


def score_segments(segments_dir: Path, gt_dir: Path) -> dict[str, dict]:
    from procvid.metrics.segmentation import summarize
    from procvid.segment.run import evaluate_predictions, read_ground_truth

    scores, _, _ = evaluate_predictions(segments_dir, read_ground_truth(gt_dir))
    return {label: summarize(videos) for label, videos in scores.items()}


def score_grounding(videos: list[Video], grounding: dict) -> dict:
    """Grounded steps against ground truth (as tools/bench_ground.py): mean step-order accuracy
    (1 - normalised edit distance of the step paths), share of exact paths and frame accuracy on the
    feature grid (background a class of its own), in percent; {} without annotated grounded videos."""
    from procvid.ground import path_edit_accuracy
    from procvid.metrics.segmentation import frame_labels

    paths, exact, correct, total = [], 0, 0, 0
    for v in videos:
        doc = grounding.get(v.stem)
        if doc is None or v.truth is None:
            continue
        truth_path = [str(label) for _, _, label in sorted(v.truth)]
        predicted = [str(step) for step in doc["path"]]
        paths.append(path_edit_accuracy(predicted, truth_path))
        exact += predicted == truth_path
        t = v.doc["timestamps"]
        pred = frame_labels([(s["start"], s["end"], str(s["step"])) for s in doc["steps"]], t)
        true = frame_labels([(a, b, str(label)) for a, b, label in v.truth], t)
        correct += int(sum(p == g for p, g in zip(pred, true)))
        total += len(t)
    if not paths:
        return {}
    return {"videos": len(paths), "path_accuracy": 100 * sum(paths) / len(paths), "exact": 100 * exact / len(paths),
            "frame_accuracy": 100 * correct / max(total, 1)}


def _newer(path: Path, *sources: Path) -> bool:
    """`path` exists and is at least as new as every existing source."""
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        return False
    return all(mtime >= s.stat().st_mtime_ns for s in sources if s.exists())


def ground_videos(videos: list[Video], out_dir: Path, tasks: dict, known_graphs: dict, config: RunConfig,
                  progress: bool = True) -> dict[str, dict]:
    """Name the steps of every video of a known task (procvid.ground on its segments); stem -> steps.json."""
    from tqdm import tqdm

    from procvid.ground_files import choose_order, ground_loaded, read_steps, write_steps

    result, encoder, texts = {}, None, {}
    todo = [v for v in videos if v.task in tasks]
    for v in tqdm(todo, desc="ground", unit="video", disable=not progress or not todo, dynamic_ncols=True):
        path = out_dir / f"{v.stem}{STEPS_SUFFIX}"
        order = choose_order(config.ground_order, v.task, known_graphs)
        doc = read_steps(path) if _newer(path, v.segments) else None
        if doc is None or doc.get("order") != order or doc.get("task") != v.task:
            if encoder is None:
                from procvid.encoders import load_encoder

                encoder = load_encoder(config.encoder, device=config.device)
            task = tasks[v.task]
            if v.task not in texts:
                texts[v.task] = encoder.encode_texts(list(task.texts().values()))
            doc = ground_loaded(v.segments, Path(v.doc["features"]), v.units, v.features, task, texts[v.task],
                                encoder.id, order, known_graphs.get(v.task))
            write_steps(path, doc)
        result[v.stem] = doc
    return result


def draw_timelines(videos: list[Video], grounding: dict, steps_dir: Path, progress: bool = True) -> None:
    """`<stem>.timeline.png` next to each segments file: detections, grounded steps, ground truth."""
    from tqdm import tqdm

    from procvid.report.timeline import draw_timeline
    from procvid.segment.base import Segment
    from procvid.segment.run import TIMELINE_SUFFIX

    for v in tqdm(videos, desc="timelines", unit="video", disable=not progress or not videos, dynamic_ncols=True):
        png = v.segments.with_name(v.stem + TIMELINE_SUFFIX)
        doc = grounding.get(v.stem)
        if _newer(png, v.segments, steps_dir / f"{v.stem}{STEPS_SUFFIX}"):
            continue
        records = v.doc["segments"]
        segments = [Segment.from_dict(r) for r in records]
        X, t, _ = v.features
        thumbs = [v.segments.parent / r["thumbnail"] for r in records] if all("thumbnail" in r for r in records) \
            else None
        grounded = [(s["start"], s["end"], s["step"]) for s in doc["steps"]] if doc else None
        draw_timeline(png, X, t, segments, gt=v.truth, thumbnails=thumbs, grounded=grounded,
                      title=f"{v.stem}: {v.doc['method']}, {len(segments)} segments"
                            + (f"; task {v.task}" if v.task else ""))


def build_task_graphs(tasks: dict, videos: list[Video], grounding: dict, dataset, out_dir: Path,
                      config: RunConfig) -> dict[str, dict]:
    """One graph script per task of the run's videos: from their annotated step orders when a dataset
    gives them, else from their grounded step paths. Scored against the task's true graph where one
    is known."""
    from procvid.graph import induce_graph
    from procvid.graph.export import write_all
    from procvid.metrics.graph import graph_scores

    options = {"tolerance": config.graph_tolerance} if config.graph_method == "precedence" else {}
    annotated = {v.video_id: v.path for v in dataset.videos} if dataset is not None else {}
    source = "annotated step orders" if dataset is not None else "grounded step paths"
    result = {}
    for task_id in sorted({v.task for v in videos if v.task in tasks}):
        task = tasks[task_id]
        mine = [v.stem for v in videos if v.task == task_id]
        paths = [annotated.get(s) for s in mine] if dataset is not None else \
            [grounding[s]["path"] for s in mine if s in grounding]
        sequences = [p for p in paths if p]
        if not sequences:
            continue
        texts = task.texts()
        graph = induce_graph(sequences, texts, config.graph_method, **options)
        files = write_all(graph, out_dir, task_id, title=task.name)
        truth = dataset.graphs.get(task_id) if dataset is not None else None
        result[task_id] = {"name": task.name, "graph": graph, "videos": len(sequences), "source": source,
                           "steps": texts, "sequences": sequences,
                           "png": next(f for f in files if f.suffix == ".png"),
                           "scores": graph_scores(graph, truth) if truth is not None else None}
    return result


def generation_examples(videos: list[Video], graphs: dict, out_dir: Path, config: RunConfig,
                        progress: bool = True) -> dict[str, dict]:
    """Per task with a graph script: a plan decoded from that graph script (procvid.generate.planner)
    and one generated image per key step from the first frame of the task's first video."""
    from tqdm import tqdm

    from procvid.generate.chain import generate_key_steps
    from procvid.generate.kig import KeyStepGenerator
    from procvid.generate.planner import Plan, plan_skill, skill_from_orders
    from procvid.segment.run import frames_at

    result, kig = {}, None
    settings = {"kig": config.kig or "shipped procvid-kig", "max_steps": config.generate_steps}
    firsts = {}
    for v in videos:
        firsts.setdefault(v.task, v)
    todo = [t for t in graphs if t in firsts]
    for task_id in tqdm(todo, desc="generate", unit="task", disable=not progress or not todo, dynamic_ncols=True):
        info, video = graphs[task_id], firsts[task_id]
        folder = out_dir / task_id
        record = _read_json(folder / "plan.json")
        wanted = {**settings, "video": video.stem}
        if record and all(record.get("settings", {}).get(k) == v for k, v in {**wanted, "seed": config.seed}.items()):
            result[task_id] = _generated(info["name"], folder, record)
            continue
        source = video.doc.get("video")
        if not source or not Path(source).exists():
            log.warning("%s: no key-step example (video %s not found)", task_id, source)
            continue
        if kig is None:
            kig = _load_kig(config)
        start = frames_at(source, [0.0], short_side=max(kig.image_size, 128))[0]
        skill = skill_from_orders(task_id, info["name"], info["steps"], info["sequences"], info["graph"])
        plan = Plan(task_id, info["name"], plan_skill(skill, config.generate_steps))
        if not plan.steps:
            continue
        with _torch_threads(1 if isinstance(kig, KeyStepGenerator) else None):
            generate_key_steps(kig, plan, start, folder, seed=config.seed, settings=wanted)
        result[task_id] = _generated(info["name"], folder, _read_json(folder / "plan.json"))
    return result


@contextmanager
def _torch_threads(n: int | None):
    """Run with n torch CPU threads: the small shipped KIG is fastest on one, and more threads stall
    badly when other processes share the cores (see `procvid generate --threads`)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _load_kig(config: RunConfig):
    from procvid.encoders.base import resolve_device
    from procvid.generate.kig import load_generator
    from procvid.paths import CHECKPOINTS_DIR

    device = config.device if config.device != "auto" else str(resolve_device("auto"))
    return load_generator(config.kig or CHECKPOINTS_DIR / "procvid-kig", device=device)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _generated(name: str, folder: Path, record: dict) -> dict:
    return {"name": name, "contact_sheet": folder / "contact_sheet.png", "html": folder / "index.html",
            "steps": [s["text"] for s in record.get("steps", [])], "kig": record.get("settings", {}).get("kig")}
