"""Reader of a synthetic world folder (written by procvid.data.synthetic.generate_world).

root/tasks.json        [{"id", "name", "steps": [{"id": int, "text"}]}]
root/videos.csv        header video_id,task_id,path,num_frames,fps,duration,order (order: step ids joined by "-")
root/annotations/<task>_<video>.csv   CrossTask rows "step,start,end"
root/graphs/<task>.json  true task graph, networkx node-link data with edges="edges" (nodes: step ids, START, END)
root/mistakes.json     worlds made with mistakes: {"videos": {video: {kind, step, index, skipped, tag}}}; the
                       step at `index` gets errors (tag,), meta["mistake"] the kind ("none" without one), and
                       a skipped step goes to meta["missing_steps"] / meta["missing_errors"] as CaptainCook4D's
"""

from __future__ import annotations

import re

from procvid.data.crosstask import read_segments
from procvid.data.files import dataset_root, read_csv_dicts, read_json
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.registry import DATASETS


@DATASETS.register("synthetic", "a synthetic world (procvid synth): give its folder, which is detected")
def load_synthetic(root=None) -> ProcedureDataset:
    """Tasks, videos (segments from annotations/, else the `order` column without times) and true graphs."""
    if root is None:
        raise ProcvidError("a synthetic world needs its folder (procvid synth --out DIR writes one)")
    root = dataset_root(root, "")
    tasks = {}
    for t in read_json(root / "tasks.json"):
        steps = {int(s["id"]): Step(int(s["id"]), s["text"]) for s in t["steps"]}
        tasks[str(t["id"])] = Task(str(t["id"]), t["name"], steps)

    mistakes = None
    if (root / "mistakes.json").exists():
        mistakes = read_json(root / "mistakes.json").get("videos", {})
    videos = []
    for row in read_csv_dicts(root / "videos.csv"):
        video_id, task_id = row["video_id"], row["task_id"]
        if task_id not in tasks:
            raise ProcvidError(f"{root / 'videos.csv'}: video {video_id} has unknown task {task_id!r}")
        annotation = root / "annotations" / f"{task_id}_{video_id}.csv"
        order = [int(x) for x in re.findall(r"\d+", row.get("order") or "")]
        if annotation.exists():
            segments = read_segments(annotation, tasks[task_id])
        else:
            segments = [StepSegment(step, None, None) for step in order]
        meta = {"path": str(root / row["path"]), "num_frames": int(row["num_frames"]), "fps": float(row["fps"]),
                "duration": float(row["duration"]), "order": order}
        if mistakes is not None:
            segments = _with_mistake(segments, meta, mistakes.get(video_id), video_id)
        videos.append(VideoAnnotation(video_id, task_id, segments, meta=meta))
    return ProcedureDataset("synthetic", tasks, videos, root, graphs=_read_graphs(root, tasks))


def _with_mistake(segments: list, meta: dict, mistake: dict | None, video_id: str) -> list:
    from dataclasses import replace

    meta["mistake"] = mistake["kind"] if mistake else "none"
    if not mistake:
        return segments
    i = int(mistake["index"])
    if not 0 <= i < len(segments) or segments[i].step_id != mistake["step"]:
        raise ProcvidError(f"mistakes.json: video {video_id} has no step {mistake['step']} at place {i}")
    if mistake.get("skipped") is not None:
        meta["missing_steps"] = [mistake["skipped"]]
        meta["missing_errors"] = {mistake["skipped"]: [mistake["tag"]]}
    return [replace(s, errors=(mistake["tag"],)) if k == i else s for k, s in enumerate(segments)]


def _read_graphs(root, tasks) -> dict:
    import networkx as nx

    graphs = {}
    for task_id in tasks:
        path = root / "graphs" / f"{task_id}.json"
        if path.exists():
            try:
                graphs[task_id] = nx.node_link_graph(read_json(path), edges="edges")
            except (KeyError, TypeError, nx.NetworkXError) as e:
                raise ProcvidError(f"{path}: not a node-link graph ({e})") from None
    return graphs
