"""Encoding and the world on disk: mp4 encoding and generate_world (layout in the package
docstring), with a process pool for the videos."""

from __future__ import annotations

import json
import logging
import os
from fractions import Fraction
from pathlib import Path
from typing import Iterator

import numpy as np

from procvid.errors import ProcvidError
from procvid.outputs import atomic_write

from .plan import MISTAKE_TAGS, VideoPlan, min_video_duration, plan_video
from .plan_v2 import MAX_DURATION, check_timing, plan_video_v2
from .render import iter_video_frames
from .tasks import TaskSpec, task_graph, task_spec, task_specs

# Named after the package (procvid.data.synthetic), as before the split into modules.
log = logging.getLogger(__package__)

CRF = 20  # x264 quality (without mb-tree): small renders stay crisp


# ----------------------------------------------------------------------------- encoding


def video_codec() -> str:
    """libx264 when the bundled ffmpeg has it, else mpeg4."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def encode_video(frames: Iterator[np.ndarray], path: Path, fps: float, size: int) -> None:
    """Write RGB frames to an mp4 atomically (temp file + os.replace), deterministically."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    codec = video_codec()
    options = {}
    if codec == "libx264":
        # x264's mb-tree rate control makes the first encode in a process differ from later ones, so
        # it is off (crf 20 without it ~ crf 18 with it in quality and size).
        options = {"crf": str(CRF), "preset": "veryfast", "x264-params": "no-mbtree=1"}
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=rate, options=options)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1  # threaded x264 is not deterministic; the pool is
        if codec != "libx264":
            stream.bit_rate = 40 * size * size  # ~ 4 bits per pixel-frame: crisp at small sizes
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- world on disk


def _check_args(num_videos, seed, difficulty, size, fps, min_duration, max_duration, workers,
                version=1, timing=None, mistakes=0.0):
    if version not in (1, 2):
        raise ProcvidError(f"world version must be 1 or 2, got {version}")
    if not 0.0 <= mistakes <= 1.0:
        raise ProcvidError(f"mistake probability must be in [0, 1], got {mistakes}")
    if mistakes and version != 1:
        # v2 repeats steps as real datasets do, so a repeated step would be no mistake there
        raise ProcvidError("mistakes need world version 1")
    if version == 1 and timing is not None:
        raise ProcvidError("a timing (crosstask, coin, captaincook4d) needs world version 2")
    if version == 2:
        check_timing(timing)
    if num_videos < 1:
        raise ProcvidError(f"number of videos must be at least 1, got {num_videos}")
    if seed < 0:
        raise ProcvidError(f"seed must be >= 0, got {seed}")
    if not 0.0 <= difficulty <= 1.0:
        raise ProcvidError(f"difficulty must be in [0, 1], got {difficulty}")
    if not 32 <= size <= 512 or size % 2:
        raise ProcvidError(f"size must be an even number of pixels in [32, 512], got {size}")
    if not 1.0 <= fps <= 100.0:
        raise ProcvidError(f"fps must be in [1, 100], got {fps}")
    shortest = min_video_duration(fps)  # also rejects fps without a 0.01 s frame grid
    if version == 2:  # durations are optional bounds on the timing's own lengths
        shortest = 0.0
        min_duration = 0.0 if min_duration is None else min_duration
        max_duration = MAX_DURATION if max_duration is None else max_duration
    if min_duration < shortest:
        raise ProcvidError(f"min duration must be at least {shortest:.1f} s at {fps:g} fps, "
                           f"got {min_duration}")
    if min_duration > max_duration:
        raise ProcvidError(f"min duration ({min_duration}) is larger than max duration "
                           f"({max_duration})")
    if max_duration > 3600:
        raise ProcvidError(f"max duration must be at most 3600 s, got {max_duration}")
    if workers < 1:
        raise ProcvidError(f"workers must be at least 1, got {workers}")


def _npy_bytes(array: np.ndarray) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _claim_dir(out: Path, world: dict) -> None:
    """Refuse to write into a directory holding anything but this very world (resume is fine)."""
    meta = out / "world.json"
    if meta.exists():
        if json.loads(meta.read_text()) != world:
            raise ProcvidError(f"{out} holds a different synthetic world (world.json differs); "
                               "use another --out or delete it")
        log.info("resuming the synthetic world in %s", out)
        return
    if out.exists() and not out.is_dir():
        raise ProcvidError(f"{out} is a file, not a directory")
    if out.exists() and any(out.iterdir()):
        raise ProcvidError(f"{out} is not empty and holds no synthetic world; use another --out")
    atomic_write(meta, json.dumps(world, indent=2) + "\n")


def _write_tasks(out: Path, specs: list[TaskSpec]) -> None:
    import networkx as nx

    tasks = [{"id": t.id, "name": t.name, "steps": [{"id": i, "text": s} for i, s in t.steps]}
             for t in specs]
    atomic_write(out / "tasks.json", json.dumps(tasks, indent=2) + "\n")
    # CrossTask blocks: id, name, url, number of steps, comma-separated steps, blank line.
    primary = "".join(f"{t.id}\n{t.name}\nsynthetic\n{len(t.steps)}\n"
                      f"{','.join(text for _, text in t.steps)}\n\n" for t in specs)
    atomic_write(out / "tasks_primary.txt", primary)
    for spec in specs:
        data = nx.node_link_data(task_graph(spec), edges="edges")
        atomic_write(out / "graphs" / f"{spec.id}.json", json.dumps(data, indent=1) + "\n")


def _write_truth(out: Path, plan: VideoPlan) -> None:
    """Annotation and per-frame labels of a video (kept when already there)."""
    annotation = out / "annotations" / f"{plan.task_id}_{plan.video_id}.csv"
    if not annotation.exists():
        atomic_write(annotation, plan.annotation_csv())
    labels = out / "labels" / f"{plan.video_id}.npy"
    if not labels.exists():
        atomic_write(labels, _npy_bytes(plan.labels()))


def _write_mistakes(out: Path, plans: list[VideoPlan], probability: float) -> None:
    """OUT/mistakes.json: the probability and, per video with a mistake, its kind, the step that shows
    it, that step's place in the video (0-based, temporal order), the skipped step and the error tag."""
    videos = {p.video_id: p.mistake.to_dict() for p in plans if p.mistake is not None}
    doc = {"probability": probability, "kinds": list(MISTAKE_TAGS), "videos": videos}
    atomic_write(out / "mistakes.json", json.dumps(doc, indent=1) + "\n")


def _write_index(out: Path, plans: list[VideoPlan]) -> None:
    rows = ["video_id,task_id,path,num_frames,fps,duration,order"]
    rows += [f"{p.video_id},{p.task_id},{p.path},{p.num_frames},{p.fps!r},{p.duration:.2f},"
             f"{'-'.join(map(str, p.order))}" for p in plans]
    atomic_write(out / "videos.csv", "\n".join(rows) + "\n")


def _render_job(job: tuple) -> str:
    """Worker: render and encode one video (module-level so the process pool can pickle it)."""
    out, plan, seed, size, difficulty, version = job
    if version == 2:
        from .render_v2 import video_renderer_v2

        renderer = video_renderer_v2(task_spec(plan.task_id), plan, seed, size, difficulty)
        events = {"fps": plan.fps, **{k: [list(e) for e in v] for k, v in renderer.events.items()}}
        atomic_write(Path(out) / "nuisances" / f"{plan.video_id}.json", json.dumps(events) + "\n")
        frames = renderer.frames()
    else:
        rng = np.random.default_rng([seed, plan.index, 1])
        frames = iter_video_frames(task_spec(plan.task_id), plan, rng, size, difficulty)
    encode_video(frames, Path(out) / plan.path, plan.fps, size)
    return plan.video_id


def generate_world(
    out_dir: str | os.PathLike,
    num_videos: int = 100,
    seed: int = 0,
    difficulty: float = 0.5,
    size: int = 96,
    fps: float = 10.0,
    min_duration: float | None = None,
    max_duration: float | None = None,
    workers: int = 2,
    progress: bool = True,
    version: int = 1,
    timing: str | None = None,
    mistakes: float = 0.0,
) -> Path:
    """Write a synthetic world (layout in the package docstring); resumes an interrupted run.

    version 1 (default): videos of min_duration..max_duration s (default 30..90), as the shipped
    models were trained on. version 2: step durations, gaps and repeats drawn from `timing`'s
    annotation statistics (crosstask by default; plan_v2.plan_video_v2) and nuisances on screen
    (render_v2); min/max duration are then optional bounds on the length the timing gives.
    mistakes (v1): probability per video of one deviation from the task's graph (plan.with_mistake),
    listed in OUT/mistakes.json; 0 (default) writes exactly the world without the option.
    """
    from tqdm import tqdm

    if version == 2 and timing is None:
        timing = "crosstask"
    if version == 1:
        min_duration = 30.0 if min_duration is None else min_duration
        max_duration = 90.0 if max_duration is None else max_duration
    _check_args(num_videos, seed, difficulty, size, fps, min_duration, max_duration, workers,
                version, timing, mistakes)
    out = Path(out_dir)
    # Durations are recorded too: resuming with other durations would mix two different worlds.
    bound = lambda v: None if v is None else float(v)  # noqa: E731
    world = {"version": 1, "seed": seed, "difficulty": float(difficulty), "size": size,
             "fps": float(fps), "num_videos": num_videos, "min_duration": bound(min_duration),
             "max_duration": bound(max_duration)}
    if version == 2:
        world = {**world, "version": 2, "timing": timing}
    if mistakes:
        world["mistakes"] = float(mistakes)
    _claim_dir(out, world)
    specs = task_specs()
    _write_tasks(out, specs)
    if version == 2:
        plans = [plan_video_v2(specs[i % len(specs)], i, seed, fps, timing, min_duration,
                               max_duration) for i in range(num_videos)]
    else:
        plans = [plan_video(specs[i % len(specs)], i, seed, fps, min_duration, max_duration, mistakes)
                 for i in range(num_videos)]
    for plan in plans:
        _write_truth(out, plan)
    if mistakes:
        _write_mistakes(out, plans, float(mistakes))
    (out / "videos").mkdir(exist_ok=True)
    # Longest first so the pool's last jobs are short ones.
    todo = sorted((p for p in plans if not (out / p.path).exists()), key=lambda p: -p.num_frames)
    if len(todo) < len(plans):
        log.info("keeping %d existing videos", len(plans) - len(todo))
    jobs = [(str(out), plan, seed, size, difficulty, version) for plan in todo]
    with tqdm(total=len(plans), initial=len(plans) - len(todo), unit="video", disable=not progress,
              desc="synth") as bar:
        for _ in _run_jobs(jobs, workers):
            bar.update()
    _write_index(out, plans)
    return out


def ensure_world(out_dir: str | Path, num_videos: int, seed: int, **options) -> Path:
    """The world at `out_dir`, generated first (generate_world with these arguments) when it is
    missing or incomplete: its videos.csv index is written last."""
    out = Path(out_dir)
    if not (out / "videos.csv").exists():
        generate_world(out, num_videos=num_videos, seed=seed, **options)
    return out


def _run_jobs(jobs: list[tuple], workers: int) -> Iterator[str]:
    if workers == 1 or len(jobs) <= 1:
        yield from map(_render_job, jobs)
        return
    import multiprocessing

    # spawn: safe even when the caller has started threads (torch, tqdm monitors).
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        yield from pool.imap_unordered(_render_job, jobs)
