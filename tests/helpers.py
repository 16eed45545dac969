"""Builders and paths shared by several test modules (a plain module, not a test file: test modules
never import each other). Fixtures wrapping these live in conftest.py."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

from procvid.paths import shared_data_dir

TOOLS = Path(__file__).resolve().parent.parent / "tools"
DATA = shared_data_dir()
VIDEOS = DATA / "videos"
CLIPS = sorted(p for p in VIDEOS.glob("*") if p.suffix in (".mp4", ".avi")) if VIDEOS.exists() else []


def load_tool(name: str, deps: tuple[str, ...] = ()):
    """tools/<name>.py as a module, loaded by its file path: tools/ never goes on sys.path.

    A tool that imports sibling tools (`from bench_segment import ...`) names them in `deps`; they
    are loaded the same way and visible under their own names only while `name` executes."""
    saved = {d: sys.modules.get(d) for d in deps}
    try:
        for d in deps:
            sys.modules[d] = load_tool(d)
        module_name = f"_procvid_tool_{name}"
        spec = importlib.util.spec_from_file_location(module_name, TOOLS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while it executes
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
        return module
    finally:
        for d, previous in saved.items():
            if previous is None:
                sys.modules.pop(d, None)
            else:
                sys.modules[d] = previous


TINY_EDGES = [("START", 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, "END")]


def write_world(root: Path, orders=((1, 2, 3, 4), (1, 3, 2, 4), (1, 2, 4))) -> Path:
    """A hand-written world in the generator's layout: one task "tea", step 3 optional, 2/3 interchangeable.

    The last video has no annotation file, so its steps come from the videos.csv order column.
    """
    import networkx as nx

    root.mkdir(parents=True, exist_ok=True)
    texts = {1: "boil water", 2: "add tea", 3: "add sugar", 4: "pour into cup"}
    (root / "tasks.json").write_text(json.dumps([{"id": "tea", "name": "Make tea",
                                                  "steps": [{"id": i, "text": t} for i, t in texts.items()]}]))
    (root / "tasks_primary.txt").write_text(f"tea\nMake tea\nsynthetic\n4\n{','.join(texts.values())}\n\n")
    graph = nx.DiGraph(task_id="tea", optional=[3], interchangeable=[[2, 3]])
    graph.add_node("START")
    graph.add_nodes_from((i, {"text": t}) for i, t in texts.items())
    graph.add_node("END")
    graph.add_edges_from(TINY_EDGES)
    (root / "graphs").mkdir(exist_ok=True)
    (root / "graphs" / "tea.json").write_text(json.dumps(nx.node_link_data(graph, edges="edges")))
    (root / "annotations").mkdir(exist_ok=True)
    rows = ["video_id,task_id,path,num_frames,fps,duration,order"]
    for n, order in enumerate(orders):
        video_id = f"tea_{n:04d}"
        if n < len(orders) - 1:
            lines = [f"{step},{2.0 * k:.2f},{2.0 * k + 1.5:.2f}" for k, step in enumerate(order)]
            (root / "annotations" / f"tea_{video_id}.csv").write_text("\n".join(reversed(lines)) + "\n")
        rows.append(f"{video_id},tea,videos/{video_id}.mp4,{20 * len(order)},10.0,{2.0 * len(order):.2f},"
                    + "-".join(map(str, order)))
    (root / "videos.csv").write_text("\n".join(rows) + "\n")
    return root


def file_stamps(root: Path) -> dict[str, int]:
    """Relative path -> mtime (ns) of every file under `root`."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in sorted(root.rglob("*")) if p.is_file()}


def busy(state, x, seconds: float = 0.02):
    """Engine work that keeps one core busy for `seconds` of CPU time and returns x."""
    import time

    end = time.process_time() + seconds
    while time.process_time() < end:
        pass
    return x
