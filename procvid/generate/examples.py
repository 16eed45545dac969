"""The generation-example stage of `procvid run`: per task with a graph script, a plan decoded from that
graph script (procvid.generate.planner) and one generated image per key step, from the first frame
of the task's first video, in ``out_dir/<task>/`` (procvid.generate.report). A task whose graph,
video and settings did not change keeps its folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from procvid.graph.build import file_stem
from procvid.outputs import Manifest, digest, prepare_output_dir, stamp

log = logging.getLogger(__name__)


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def generation_examples(tasks: dict, graphs: dict, sequences: dict, first_videos: dict, out_dir: str | Path,
                        kig: str | None = None, max_steps: int = 5, seed: int = 0, device: str = "auto",
                        progress: bool = True) -> dict[str, dict]:
    """tasks: id -> Task; graphs: id -> graph script; sequences: id -> the step sequences it was
    built from; first_videos: id -> (stem, video path). Returns id -> {"name", "contact_sheet",
    "html", "steps", "kig"}."""
    from tqdm import tqdm

    from procvid.generate.chain import generate_key_steps
    from procvid.generate.planner import Plan, plan_skill, skill_from_orders
    from procvid.video import frames_at

    out_dir = prepare_output_dir(out_dir)
    manifest = Manifest(out_dir)
    settings = {"kig": kig or "shipped procvid-kig", "max_steps": max_steps}
    result, generator = {}, None
    todo = [t for t in graphs if t in first_videos]
    for task_id in tqdm(todo, desc="generate", unit="task", disable=not progress or not todo, dynamic_ncols=True):
        task, graph = tasks[task_id], graphs[task_id]
        stem, source = first_videos[task_id]
        folder = out_dir / file_stem(task_id)
        wanted = {**settings, "video": stem}
        key = stamp("generate", [task_id, task.name, digest(sorted(map(str, graph.edges))), sequences[task_id]],
                    {**wanted, "seed": seed})
        record = _read_json(folder / "plan.json") if manifest.is_current(folder / "plan.json", key,
                                                                          folder / "contact_sheet.png") else None
        if record is None:
            if not source or not Path(source).exists():
                log.warning("%s: no key-step example (video %s not found)", task_id, source)
                continue
            skill = skill_from_orders(task_id, task.name, task.texts(), sequences[task_id], graph)
            plan = Plan(task_id, task.name, plan_skill(skill, max_steps))
            if not plan.steps:
                continue
            if generator is None:
                generator = _load_kig(kig, device)
            start = frames_at(source, [0.0], short_side=max(generator.image_size, 128))[0]
            generate_key_steps(generator, plan, start, folder, seed=seed,
                               settings={**wanted, "domain": getattr(generator, "domain", None)})
            manifest.record(folder / "plan.json", key)
            record = _read_json(folder / "plan.json")
        result[task_id] = {"name": task.name, "contact_sheet": folder / "contact_sheet.png",
                           "html": folder / "index.html", "steps": [s["text"] for s in record.get("steps", [])],
                           "kig": record.get("settings", {}).get("kig"),
                           "domain": record.get("settings", {}).get("domain")}
    return result


def _load_kig(kig: str | None, device: str):
    from procvid.encoders.base import resolve_device
    from procvid.generate.kig import load_generator
    from procvid.paths import CHECKPOINTS_DIR

    device = device if device != "auto" else str(resolve_device("auto"))
    return load_generator(kig or CHECKPOINTS_DIR / "procvid-kig", device=device)
