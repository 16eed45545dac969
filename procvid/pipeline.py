"""`procvid run`: the stages in order — embed and segment (procvid.segment.batch), ground
(procvid.ground_files) or, without step texts, discover (procvid.discover.stage), timelines
(procvid.report.timeline), graph scripts (procvid.graph.build), mistakes (procvid.mistakes.batch),
what comes next in each video (procvid.forecast.stage, forecast/<stem>.forecast.json),
generation examples (procvid.generate.examples) and the report (procvid.report.html).

Each stage writes files that the next reads and skips outputs that are current, so a rerun after an
interruption continues where it stopped and a rerun of a finished run rewrites nothing.
Layout of OUT: features/, segments/ (JSON, CSV, key frames, timelines), steps/ (grounded step paths),
discover/ (steps shared by a task's unlabeled videos, their key frames and graph scripts), graphs/, mistakes/ (each grounded path checked against its task's graph script, procvid.mistakes.batch),
generate/<task>/ (plan, key-step images, contact sheet), report/index.html.
With the shard layout (`layout: shards`, or auto above 1000 videos; procvid.shards) features, segments,
steps, mistakes and forecasts are rows of Parquet shards in those folders instead of files per video,
key frames are made only on request and the report summarises the run.
"""

from __future__ import annotations

import logging
from dataclasses import MISSING, dataclass, field
from pathlib import Path

import yaml

from procvid import defaults
from procvid.errors import ProcvidError

log = logging.getLogger(__name__)
STAGE_DIRS = ("features", "segments", "steps", "discover", "graphs", "mistakes", "forecast", "generate", "report")


@dataclass
class RunConfig:
    """Pipeline settings; a YAML preset (configs/run/*.yaml) sets any of these fields."""

    encoder: str = defaults.ENCODER  # segments, and grounding when it has a text tower
    fps: float = defaults.FPS
    method: str = defaults.METHOD
    method_params: dict = field(default_factory=dict)
    ground_order: str = "auto"  # linear, graph, any; auto: graph where the task's graph is known
    graph_method: str = "precedence"
    graph_tolerance: float = 0.0
    generate: bool = True  # one key-step generation example per task, when a generator is given
    generate_steps: int = 5
    kig: str | None = None  # key-step image generator folder, or "shipped" (procvid-kig); None: none
    seed: int = 0
    device: str = defaults.DEVICE
    workers: int = defaults.WORKERS
    engine: str = defaults.ENGINE  # local or ray
    forecaster: str = "shipped"  # next-step forecaster folder, shipped (checkpoints/procvid-forecast) or none
    timelines: str = "auto"  # all, sample, none; auto: all up to TIMELINE_SAMPLE videos, else a sample
    layout: str = "auto"  # files (per video), shards (Parquet, procvid.shards); auto: shards above 1000 videos
    keyframes: str = "auto"  # key-frame thumbnails: all, none; auto: with the per-video layout only

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides) -> RunConfig:
        """Settings from a preset (a YAML file, or a name in configs/run/: default, synthetic), then
        `overrides` that are not None."""
        values = {}
        if path and not Path(path).suffix and not Path(path).exists():
            from procvid.paths import REPO_ROOT

            path = REPO_ROOT / "configs" / "run" / f"{path}.yaml"
        if path:
            try:
                values = yaml.safe_load(Path(path).read_text()) or {}
            except OSError as e:
                raise ProcvidError(f"{path}: cannot read config ({e.strerror or e})") from None
            except yaml.YAMLError as e:  # its message spans lines (context, caret): one line of it
                raise ProcvidError(f"{path}: not valid YAML ({' '.join(str(e).split())[:200]})") from None
            if not isinstance(values, dict):
                raise ProcvidError(f"{path}: expected a mapping of settings (name: value), "
                                   f"got a {type(values).__name__}")
            unknown = set(values) - set(cls.__dataclass_fields__)
            if unknown:
                raise ProcvidError(f"{path}: unknown settings {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        config = cls(**values)
        config.check(path)
        return config

    def check(self, source=None) -> None:
        """One line for a setting of the wrong type or out of range (from a preset or the command line)."""
        where = f"{source}: " if source else ""
        for name, f in self.__dataclass_fields__.items():
            value, default = getattr(self, name), f.default if f.default is not MISSING else f.default_factory()
            wanted = (int, float) if isinstance(default, float) else type(default)
            if default is None:
                wanted = (str, type(None))
            if not isinstance(value, wanted) or (isinstance(value, bool) and not isinstance(default, bool)):
                raise ProcvidError(f"{where}setting {name}: {value!r} is not a {type(default).__name__}")
        for name in ("fps", "workers", "generate_steps"):
            if getattr(self, name) <= 0:
                raise ProcvidError(f"{where}setting {name}: must be positive, got {getattr(self, name)}")
        from procvid.report.timeline import TIMELINE_CHOICES

        if self.timelines not in TIMELINE_CHOICES:
            raise ProcvidError(f"{where}setting timelines: {self.timelines!r} is not one of "
                               f"{', '.join(TIMELINE_CHOICES)}")
        from procvid.shards import LAYOUTS

        for name, choices in (("layout", LAYOUTS), ("keyframes", ("auto", "all", "none"))):
            if getattr(self, name) not in choices:
                raise ProcvidError(f"{where}setting {name}: {getattr(self, name)!r} is not one of {', '.join(choices)}")
        if self.engine not in ("local", "ray"):
            raise ProcvidError(f"{where}setting engine: {self.engine!r} is not local or ray")


@dataclass
class RunResult:
    report: Path
    segmentation: dict  # method label -> pooled scores (procvid.metrics.segmentation.summarize), if GT
    grounding: dict  # stem -> steps.json document, for videos of a known task
    grounding_scores: dict  # procvid.metrics.grounding.score_grounding over the annotated videos
    graphs: dict  # task id -> {"name", "graph", "videos", "source", "png", "scores"}
    generation: dict  # task id -> {"name", "contact_sheet", "html", "steps", "kig"}
    failed: int = 0  # inputs that failed in some stage (listed in the stages' failures.jsonl)
    skipped: list = field(default_factory=list)  # (what was not done, why, the flag that does it)
    warnings: list = field(default_factory=list)  # models used on footage they are not for
    mistakes: dict = field(default_factory=dict)  # stem -> mistakes/<stem>.mistakes.json (procvid.mistakes.batch)
    forecasts: dict = field(default_factory=dict)  # stem -> forecast/<stem>.forecast.json (procvid.forecast.stage)


def run_pipeline(inputs: list, out: str | Path, config: RunConfig, annotations: str | None = None,
                 steps: str | None = None, task: str | None = None, progress: bool = True,
                 at: float | None = None) -> RunResult:
    """Run every stage and write OUT/report/index.html.

    annotations: a dataset (name or folder) giving each video's task and true steps (ground truth in
    timelines and scores, graph scripts from the annotated orders). steps: the tasks' steps only (a
    tasks.json, CrossTask tasks file or dataset; each video's task from `task` or its name prefix);
    the graph scripts then come from the grounded step paths."""
    run_key = _run_key(inputs, config, annotations, steps, task, at)  # before the imports: torch takes seconds
    finished = _finished_run(Path(out), run_key)  # a rerun of a finished run: nothing to look at again
    if finished is not None:
        return finished
    from procvid.data import load_dataset
    from procvid.data.crosstask import read_ground_truth
    from procvid.discover.stage import DiscoverInput, discover_batch
    from procvid.domain import mismatch_warnings
    from procvid.encoders import load_encoder
    from procvid.engine import make_engine
    from procvid.forecast.stage import run_stage as forecast_stage
    from procvid.generate.examples import generation_examples
    from procvid.graph.build import build_graphs, method_options
    from procvid.ground_files import GroundInput, ground_batch, load_tasks, task_of
    from procvid.metrics.graph import graph_scores
    from procvid.metrics.grounding import score_grounding
    from procvid.metrics.segment_eval import score_segments
    from procvid.mistakes.batch import check_paths, timeline_marks
    from procvid.outputs import prepare_output_dir, refuse_symlink
    from procvid.report.html import write_report
    from procvid.report.timeline import draw_timelines, pick_timelines
    from procvid.segment import get_detector
    from procvid.segment.batch import collect_inputs, segment_batch
    from procvid.segment.files import load_segmented, name_of, name_prefix
    from procvid.shards import ShardStore, choose_layout
    from procvid.video import Sampling

    out = prepare_output_dir(out)
    for stage in STAGE_DIRS:  # a symlinked stage folder would be written through
        refuse_symlink(out / stage)
    dataset = load_dataset(annotations) if annotations else None
    if dataset is not None:
        tasks, known_graphs = dataset.tasks, dataset.graphs
    else:
        tasks, known_graphs = load_tasks(steps) if steps else ({}, {})
    if task is not None:
        task_of("", task, tasks)  # an unknown --task stops the run before any work
    gt_dir = _ground_truth_dir(dataset)
    truth = read_ground_truth(gt_dir) if gt_dir else {}
    engine = make_engine(config.engine, config.workers, progress)
    encoder = load_encoder(config.encoder, device=config.device)
    # settings chosen for the encoder's features (procvid.defaults.TUNED_PARAMS); method_params override them
    detector = get_detector(config.method, **{**defaults.detector_params(config.method, config.encoder),
                                              **config.method_params})
    layout = choose_layout(config.layout, len(collect_inputs(inputs, out)), out / "features")
    keyframes = config.keyframes == "all" or (config.keyframes == "auto" and layout == "files")
    segmented = segment_batch(inputs, out / "segments", detector, features_dir=out / "features", encoder=encoder,
                              sampling=Sampling(fps=config.fps), keyframes="jpg" if keyframes else None,
                              device=config.device, progress=progress, engine=engine, layout=layout)
    log.info("segments: %s", segmented.line())
    # the later stages' per-video documents: as many shards as the features have, so that going through
    # the videos shard by shard reads each features shard once
    shards = ShardStore(out / "segments", "segments").count if layout == "shards" else None
    skipped = []

    task_by_video = {v.video_id: v.task_id for v in dataset.videos} if dataset else {}
    videos = load_segmented(out / "segments", (lambda stem: task_by_video.get(name_of(stem))) if dataset else
                            (lambda stem: task_of(stem, task, tasks)) if tasks else None, truth,
                            shards=layout == "shards")
    named = [GroundInput(v.stem, v.segments, v.task, v) for v in videos if v.task in tasks]
    discovered, undiscovered = {}, None
    if not tasks:  # no labels: the steps the videos of a task (their <task>_ name prefix) share
        skipped.append(("steps not named (discovered steps and their graph scripts instead)",
                        "no task steps were given", "--steps tasks.json (or --annotations DATASET)"))
        discovered, undiscovered = discover_batch(
            [DiscoverInput(v.stem, v.segments, name_prefix(v.stem, "videos"), v) for v in videos], out / "discover",
            progress=progress)
    elif not encoder.has_text:
        skipped.append(("steps not named", f"{encoder.id} has no text tower",
                        "--encoder ViT-B-32:/path/to/open_clip_pytorch_model.bin (a joint image-text model)"))
        named = []
    grounding, grounded = ground_batch(named, out / "steps", tasks, known_graphs, encoder, config.ground_order,
                                       device=config.device, progress=progress, shards=shards)

    # graph scripts: from the annotated step orders when a dataset gives them, else the grounded paths
    annotated = {v.video_id: v.path for v in dataset.videos} if dataset is not None else {}
    sequences: dict[str, list] = {}
    for v in videos:
        if v.task in tasks:
            path = annotated.get(name_of(v.stem)) if dataset is not None else grounding.get(v.stem, {}).get("path")
            if path:
                sequences.setdefault(v.task, []).append(path)
    built = build_graphs(dict(sorted(sequences.items())), tasks, out / "graphs", config.graph_method,
                         method_options(config.graph_method, config.graph_tolerance))
    source = "annotated step orders" if dataset is not None else "grounded step paths"
    graphs = {task: {"name": f"{task} (discovered steps)", "graph": d.graph, "videos": len(d.doc["videos"]),
                     "source": "discovered step paths", "png": next(f for f in d.files if f.suffix == ".png"),
                     "scores": None} for task, d in discovered.items() if d.graph is not None}
    for task_id, info in built.items():
        true_graph = dataset.graphs.get(task_id) if dataset is not None else None
        graphs[task_id] = {"name": tasks[task_id].name, "graph": info["graph"], "videos": info["videos"],
                           "source": source, "png": next(f for f in info["files"] if f.suffix == ".png"),
                           "scores": graph_scores(info["graph"], true_graph) if true_graph is not None else None}
    # each grounded step path checked online against its task's graph script
    mistakes = check_paths(grounding, {t: g["graph"] for t, g in graphs.items()}, tasks, out / "mistakes",
                           shards=shards)
    # what comes next in each video, at its end or at `at` seconds (procvid.forecast.stage)
    forecasts, forecast_skipped, forecast_failures = forecast_stage(
        videos, grounding, tasks, {t: g["graph"] for t, g in graphs.items() if t in tasks}, out / "forecast",
        config.forecaster, at, progress, shards)
    skipped += forecast_skipped
    draw_timelines(pick_timelines(videos, config.timelines), grounding, progress,  # flagged steps marked
                   marks=timeline_marks(mistakes), workers=config.workers)

    generation = {}
    if config.generate and graphs and not config.kig:
        skipped.append(("no key-step images", "no key-step image generator was given",
                        "--kig /path/to/instruct-pix2pix (or --config configs/run/synthetic.yaml for the shipped toy "
                        "generator)"))
    elif config.generate and graphs:
        firsts = {}
        for v in videos:
            firsts.setdefault(v.task, (v.stem, v.doc.get("video")))
        generation = generation_examples(tasks, {t: g["graph"] for t, g in graphs.items()}, sequences, firsts,
                                         out / "generate", None if config.kig == "shipped" else config.kig,
                                         config.generate_steps, config.seed,
                                         config.device, progress)
    segmentation = score_segments(out / "segments", truth) if gt_dir else {}
    grounding_scores = score_grounding(videos, grounding)
    failures = {**segmented.reasons, **grounded.reasons, **forecast_failures}
    if undiscovered and undiscovered.failed:  # not a bad input: too little to find shared steps in
        skipped.append(("no steps discovered for some tasks", next(iter(undiscovered.reasons.values())),
                        "more videos of each task (or --steps tasks.json)"))
    models = {encoder.id: encoder.domain, f"the {detector.name} detector": getattr(detector, "domain", None),
              **{f"key-step generator {g['kig']}": g.get("domain") for g in generation.values()}}
    warnings = mismatch_warnings(models, [v.doc.get("video") for v in videos])
    for line in warnings:
        log.warning(line)
    report = write_report(out, videos, graphs, segmentation, grounding, generation, grounding_scores, failures,
                          skipped, warnings, mistakes, discovered={task: d.doc for task, d in discovered.items()},
                          forecasts=forecasts)
    result = RunResult(report, segmentation, grounding, grounding_scores, graphs, generation, len(failures), skipped,
                       warnings, mistakes, forecasts)
    _record_run(out, run_key, result)
    return result


def _ground_truth_dir(dataset) -> Path | None:
    """Folder of CrossTask-format annotation CSVs for the timelines, if the dataset has one."""
    if dataset is None or dataset.root is None:
        return None
    folder = Path(dataset.root) / "annotations"
    return folder if folder.is_dir() else None


def _run_key(inputs, config: RunConfig, annotations, steps, task, at=None) -> str | None:
    from dataclasses import asdict

    from procvid.run_record import run_key

    if any(Path(p).suffix == ".txt" for p in inputs):  # a list of videos elsewhere: the stages decide
        return None
    return run_key([*inputs, annotations, steps], asdict(config), task, at)


def _finished_run(out: Path, key: str | None) -> RunResult | None:
    from procvid.run_record import load_finished

    r = load_finished(out, key)
    if r is None:
        return None
    return RunResult(Path(r["report"]), r["segmentation"], {}, r["grounding_scores"], {}, {}, 0,
                     [tuple(x) for x in r["skipped"]], r["warnings"], forecasts=r.get("forecasts", {}))


def _record_run(out: Path, key: str | None, result: RunResult) -> None:
    from procvid.run_record import save

    save(out, key, None if result.failed else {  # failed inputs are tried again by the next run
        "report": str(result.report), "segmentation": result.segmentation,
        "grounding_scores": result.grounding_scores, "skipped": result.skipped, "warnings": result.warnings,
        "forecasts": result.forecasts})  # `procvid run` prints each video's "what comes next" again
