"""`procvid run`: videos -> features -> segments -> graph scripts -> HTML report.

Every stage writes files that the next reads, and each stage skips work whose outputs are
already there, so a rerun after an interruption continues where it stopped.
Layout of OUT: features/, segments/ (JSON, CSV, key frames, timelines), graphs/, report/index.html.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from procvid.errors import ProcvidError

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Pipeline settings; a YAML preset (configs/run/*.yaml) sets any of these fields."""

    encoder: str = "default"
    fps: float = 2.0
    method: str = "sbd"
    method_params: dict = field(default_factory=dict)
    graph_method: str = "precedence"
    graph_tolerance: float = 0.0
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
    graphs: dict  # task id -> {"name", "graph", "videos", "png", "scores"}


def run_pipeline(inputs: list, out: str | Path, config: RunConfig, annotations: str | None = None,
                 progress: bool = True) -> RunResult:
    """Run every stage and write OUT/report/index.html. `annotations`: a dataset (name or folder)
    giving each video's task and true steps (ground truth in timelines, graph scripts per task)."""
    from procvid.data import load_dataset
    from procvid.segment import get_detector
    from procvid.segment.run import segment_batch
    from procvid.video import Sampling

    out = Path(out)
    dataset = load_dataset(annotations) if annotations else None
    gt_dir = _ground_truth_dir(dataset)
    detector = get_detector(config.method, **config.method_params)
    summary = segment_batch(inputs, out / "segments", detector, features_dir=out / "features",
                            encoder=config.encoder, sampling=Sampling(fps=config.fps), timeline=True, gt=gt_dir,
                            device=config.device, workers=config.workers, progress=progress)
    log.info("segments: %s", summary.line())
    graphs = build_task_graphs(dataset, out / "graphs", config) if dataset else {}
    segmentation = score_segments(out / "segments", gt_dir) if gt_dir else {}
    from procvid.report.html import write_report

    return RunResult(write_report(out, dataset, graphs, segmentation), segmentation, graphs)


def score_segments(segments_dir: Path, gt_dir: Path) -> dict[str, dict]:
    from procvid.metrics.segmentation import summarize
    from procvid.segment.run import evaluate_predictions, read_ground_truth

    scores, _, _ = evaluate_predictions(segments_dir, read_ground_truth(gt_dir))
    return {label: summarize(videos) for label, videos in scores.items()}


def _ground_truth_dir(dataset) -> Path | None:
    """Folder of CrossTask-format annotation CSVs for the timelines, if the dataset has one."""
    if dataset is None or dataset.root is None:
        return None
    folder = Path(dataset.root) / "annotations"
    return folder if folder.is_dir() else None


def build_task_graphs(dataset, out_dir: Path, config: RunConfig) -> dict[str, dict]:
    """One graph script per task from its videos' step orders; scored when a true graph exists."""
    from procvid.graph import induce_graph
    from procvid.graph.export import write_all
    from procvid.metrics.graph import graph_scores

    options = {"tolerance": config.graph_tolerance} if config.graph_method == "precedence" else {}
    result = {}
    for task_id, task in dataset.tasks.items():
        sequences = [p for p in dataset.sequences(task_id) if p]
        if not sequences:
            continue
        graph = induce_graph(sequences, {i: s.text for i, s in task.steps.items()}, config.graph_method, **options)
        files = write_all(graph, out_dir, task_id, title=task.name)
        truth = dataset.graphs.get(task_id)
        result[task_id] = {
            "name": task.name,
            "graph": graph,
            "videos": len(sequences),
            "png": next(f for f in files if f.suffix == ".png"),
            "scores": graph_scores(graph, truth) if truth is not None else None,
        }
    return result
