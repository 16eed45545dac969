"""CaptainCook4D (Peddi et al., NeurIPS 2024 D&B): 384 cooking recordings of 24 recipes, 24 recipe task graphs.

annotation_json/complete_step_annotations.json  {recording: {activity_id, activity_name, person_id, environment,
    steps: [{step_id, start_time, end_time, description, has_errors}]}}; start = end = -1: step not performed
annotation_json/error_annotations.json          [{recording_id, is_error, step_annotations: [{step_id, ...,
    errors: [{tag, description}]}]}]: the same steps in the same order, with error tags ("Order Error",
    "Missing Step", "Technique Error", ...); normal recordings have none
data_splits/recordings_data_split_combined.json {train|val|test: [recording ids]}
task_graphs/<recipe>.json                        {steps: {node: text}, edges: [[a, b], ...]}; a -> b, node 0 is
    START and the last node END; node ids are the graph's own, steps are matched to recordings by text
dtgl/task_graph_generation_annotations.json      {annotations: {...}, taxonomy: {recipe: {step: {name}}}}: the 194
    error-free recordings that Differentiable Task Graph Learning (Seminara et al., NeurIPS 2024) learns from
"""

from __future__ import annotations

from dataclasses import dataclass

from procvid.data.files import dataset_root, read_json, require
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.registry import DATASETS


def recipe_slug(activity_name: str) -> str:
    """'Herb Omelet with Fried Tomatoes' -> 'herbomeletwithfriedtomatoes' (the task-graph file stem)."""
    return activity_name.lower().replace(" ", "")


@DATASETS.register("captaincook4d", "CaptainCook4D (Peddi et al.): cooking recordings, step segments, recipe graphs")
def load_captaincook4d(root=None) -> ProcedureDataset:
    """All recordings; tasks are recipes keyed by slug. A performed step's error tags are its
    StepSegment.errors; steps with start -1 (not performed) go to meta["missing_steps"] and their tags
    (mostly "Missing Step") to meta["missing_errors"] {step id: [tags]}."""
    root = dataset_root(root, "captaincook4d")
    recordings = read_json(root / "annotation_json" / "complete_step_annotations.json")
    error_file = root / "annotation_json" / "error_annotations.json"
    error_records = {r["recording_id"]: r for r in read_json(error_file)}
    errors = {rid: r["is_error"] for rid, r in error_records.items()}
    split_file = root / "data_splits" / "recordings_data_split_combined.json"
    splits = read_json(split_file) if split_file.exists() else {}
    split_of = {rid: split for split, ids in splits.items() for rid in ids}

    tasks: dict[str, Task] = {}
    videos = []
    for rid, rec in recordings.items():
        task_id = recipe_slug(rec["activity_name"])
        if task_id not in tasks:
            tasks[task_id] = Task(task_id, rec["activity_name"], {}, meta={"activity_id": rec["activity_id"]})
        task = tasks[task_id]
        segments, missing, missing_errors = [], [], {}
        tags = _step_tags(error_records.get(rid), rec["steps"], error_file)
        for s, step_tags in zip(rec["steps"], tags):
            task.steps.setdefault(s["step_id"], Step(s["step_id"], s["description"]))
            if s["start_time"] < 0:
                missing.append(s["step_id"])
                if step_tags:
                    missing_errors[s["step_id"]] = list(step_tags)
            else:
                segments.append(StepSegment(s["step_id"], float(s["start_time"]), float(s["end_time"]), step_tags))
        meta = {
            "person_id": rec["person_id"],
            "environment": rec["environment"],
            "is_error": errors.get(rid),
            "step_errors": [s["step_id"] for s in rec["steps"] if s["has_errors"]],
            "missing_steps": missing,
            "missing_errors": missing_errors,
        }
        videos.append(VideoAnnotation(rid, task_id, segments, split_of.get(rid), meta))
    for task in tasks.values():
        task.steps = dict(sorted(task.steps.items()))
    return ProcedureDataset("captaincook4d", dict(sorted(tasks.items())), videos, root)


def _step_tags(record, steps: list, source) -> list[tuple[str, ...]]:
    """Error tags per step of a recording (error_annotations.json lists its steps in the same order)."""
    if record is None:
        return [()] * len(steps)
    annotated = record.get("step_annotations", [])
    if [s.get("step_id") for s in annotated] != [s["step_id"] for s in steps]:
        raise ProcvidError(f"{source}: recording {record.get('recording_id')} lists other steps than "
                           "complete_step_annotations.json")
    return [tuple(dict.fromkeys(e["tag"] for e in s.get("errors") or [])) for s in annotated]


@dataclass
class RecipeGraph:
    """One recipe of the task-graph generation benchmark, in the ground-truth graph's node ids."""

    recipe: str
    steps: dict[int, str]  # graph node id -> step text (START/END excluded)
    graph: object  # nx.DiGraph over "START", step ids, "END"; node attribute "text"
    sequences: list[list[int]]  # key-step orders of the error-free recordings


def read_task_graph(path) -> tuple[dict[int, str], object]:
    """A task_graphs/<recipe>.json file as (steps, DiGraph with START/END nodes)."""
    import networkx as nx

    from procvid.graph.script import END, START

    data = read_json(path)
    texts = {int(k): v for k, v in data["steps"].items()}
    special = {k: v for k, v in texts.items() if v in (START, END)}
    if sorted(special.values()) != [END, START]:
        raise ProcvidError(f"{path}: expected exactly one START and one END step")
    steps = {k: v for k, v in texts.items() if k not in special}
    graph = nx.DiGraph()
    graph.add_node(START, text=START)
    graph.add_nodes_from((k, {"text": v}) for k, v in steps.items())
    graph.add_node(END, text=END)
    graph.add_edges_from((special.get(a, a), special.get(b, b)) for a, b in data["edges"])
    return steps, graph


def load_captaincook4d_task_graphs(root=None, folder: str = "task_graphs") -> dict[str, RecipeGraph]:
    """Per recipe: the human task graph and the training sequences of the DTGL task-graph benchmark.
    folder: where the graphs are read, "task_graphs" (CaptainCook4D's) or "dtgl/ground_truth_task_graphs"
    (the 24 exactly as the published evaluation uses them; 6 differ, see SOURCE.txt).

    Mirrors the DTGL code: a recording's sequence is its segments in annotation-file order with repeated
    steps kept at their first occurrence; steps are matched to graph nodes by exact text, and where several
    nodes share a text the step maps to the last of them (so the others are never observed).
    """
    root = dataset_root(root, "captaincook4d")
    dtgl = read_json(root / "dtgl" / "task_graph_generation_annotations.json")
    recipes = {}
    for recipe, taxonomy in sorted(dtgl["taxonomy"].items()):
        steps, graph = read_task_graph(require(root / folder / f"{recipe}.json"))
        node_of_text = {text: node for node, text in steps.items()}  # later nodes win, as in DTGL
        try:
            node_of_step = {int(k): node_of_text[v["name"]] for k, v in taxonomy.items()}
        except KeyError as e:
            raise ProcvidError(f"recipe {recipe}: step {e.args[0]!r} is not in its task graph") from None
        sequences = []
        for rec in dtgl["annotations"].values():
            if rec["scenario"] == recipe:
                nodes = [node_of_step[s["step_id"]] for s in rec["segments"]]
                sequences.append(list(dict.fromkeys(nodes)))
        recipes[recipe] = RecipeGraph(recipe, steps, graph, sequences)
    return recipes


def human_task_graphs(dataset: ProcedureDataset, folder: str = "dtgl/ground_truth_task_graphs") -> dict:
    """The recipes' human task graphs (by default the 24 the published task-graph evaluation uses) on the
    recordings' step ids, matched by step text: task id -> DiGraph over START, step ids, END."""
    import networkx as nx

    graphs = {}
    for task_id, task in dataset.tasks.items():
        path = require(dataset.root / folder / f"{task_id}.json")
        steps, graph = read_task_graph(path)
        id_of_text = {step.text: sid for sid, step in task.steps.items()}
        unmatched = [text for text in steps.values() if text not in id_of_text]
        if unmatched or len(set(steps.values())) != len(steps):
            raise ProcvidError(f"{path}: its steps do not match the recordings' steps one to one "
                               f"({unmatched[0] if unmatched else 'repeated step text'!r})")
        graphs[task_id] = nx.relabel_nodes(graph, {node: id_of_text[text] for node, text in steps.items()})
        graphs[task_id].graph.update(task_id=task_id, name=task.name, optional=[])
    return graphs
