"""Planner: skill description (+ initial image) -> ordered key steps, by retrieving a graph script.

A skill library holds, per skill (task): its name, step texts, graph script (procvid.graph.script),
how often each step occurs and how often one step directly follows another in the videos, and CLIP
embeddings of key frames (initial scene and step ends, procvid.generate.keyframes).

Retrieval scores each skill with
    text  = mean of cos(query, skill name) and max_step cos(query, step text)   (MiniLM or CLIP text tower)
    image = max over the skill's key frames of cos(initial image, key frame)    (default CLIP image tower)
and ranks by p(skill) = softmax(text / T + image / T) over the library (T = TEMPERATURE): a product of
a text and an image expert, so either can decide when the other is flat. Without an image, or for a
library without key frames (a `procvid graph build` folder), the text term alone ranks.

Decoding walks the retrieved graph script: a step may come next once all its (kept) ancestors are done,
and the order maximises the product of transition probabilities P(next | last), estimated from the
transition counts and normalised over the steps allowed at that point. Beam search over (done set,
last step) states, which is exact up to `beam` states per length. Optional steps are kept when they
occur in at least `optional_threshold` of the videos.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError
from procvid.graph.script import END, START
from procvid.outputs import atomic_write

TEMPERATURE = 0.05
LIBRARY_JSON = "library.json"
LIBRARY_ARRAYS = "library.safetensors"


@dataclass
class Skill:
    id: str
    name: str
    steps: dict  # step id -> text, in the task's step order
    graph: object  # nx.DiGraph graph script with START / END
    frequency: dict = field(default_factory=dict)  # step id -> share of videos with it (missing: unknown)
    transitions: dict = field(default_factory=dict)  # (a, b) -> times b directly followed a (a may be START)
    keyframes: np.ndarray | None = None  # [K, D] image embeddings of key frames, or None

    @property
    def optional(self) -> set:
        return set(self.graph.graph.get("optional", []))


@dataclass
class Plan:
    skill_id: str | None
    name: str
    steps: list[tuple]  # (step id or None, text)
    retrieved: list[dict] = field(default_factory=list)  # ranked skills with their scores

    def to_json(self) -> dict:
        return {"skill": {"id": self.skill_id, "name": self.name},
                "steps": [{"index": i, "id": sid, "text": text} for i, (sid, text) in enumerate(self.steps, 1)],
                "retrieved": self.retrieved}


# ----------------------------------------------------------------------------- library


class SkillLibrary:
    def __init__(self, skills: list[Skill], image_encoder: list[str] | None = None, source: str = ""):
        """image_encoder: [load_encoder spec, encoder id] of the key-frame embeddings."""
        if not skills:
            raise ProcvidError("the skill library is empty")
        self.skills, self.image_encoder, self.source = skills, image_encoder, source

    def has_images(self) -> bool:
        return bool(self.image_encoder) and all(s.keyframes is not None for s in self.skills)

    def save(self, folder: str | Path) -> Path:
        """library.json (skills, graph scripts, counts) + library.safetensors (key-frame embeddings)."""
        from safetensors.numpy import save

        from procvid.graph.export import to_node_link

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"version": 1, "source": self.source, "image_encoder": self.image_encoder, "skills": [
            {"id": s.id, "name": s.name, "steps": [{"id": k, "text": v} for k, v in s.steps.items()],
             "frequency": [[k, f] for k, f in s.frequency.items()],
             "transitions": [[a, b, c] for (a, b), c in s.transitions.items()],
             "graph": to_node_link(s.graph)} for s in self.skills]}
        atomic_write(folder / LIBRARY_JSON, json.dumps(meta, indent=1) + "\n")
        arrays = {f"keyframes_{i}": s.keyframes.astype(np.float16) for i, s in enumerate(self.skills)
                  if s.keyframes is not None}
        atomic_write(folder / LIBRARY_ARRAYS, save(arrays))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> "SkillLibrary":
        """A saved library (its folder or library.json), a `procvid graph build` folder of node-link
        JSON graphs, or a synthetic world folder (built on the fly: decodes its videos)."""
        path = Path(path)
        if not path.exists():
            raise ProcvidError(f"skill library {path} not found")
        if path.is_file():
            path = path.parent if path.name == LIBRARY_JSON else path
        if (path / LIBRARY_JSON).exists():
            return cls._load_saved(path)
        if (path / "videos.csv").exists():
            return build_library_from_world(path)
        graphs = sorted(path.glob("*.json"))
        if not graphs:
            raise ProcvidError(f"{path}: not a skill library ({LIBRARY_JSON}), graph folder (*.json) or world")
        return cls([_skill_from_graph(g) for g in graphs], source=str(path))

    @classmethod
    def _load_saved(cls, folder: Path) -> "SkillLibrary":
        import networkx as nx
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            meta = json.loads((folder / LIBRARY_JSON).read_text())
            arrays = load_file(folder / LIBRARY_ARRAYS) if (folder / LIBRARY_ARRAYS).exists() else {}
            skills = [Skill(s["id"], s["name"], {st["id"]: st["text"] for st in s["steps"]},
                            nx.node_link_graph(s["graph"], edges="edges"),
                            {k: f for k, f in s["frequency"]},
                            {(a, b): c for a, b, c in s["transitions"]},
                            np.asarray(arrays[f"keyframes_{i}"], np.float32) if f"keyframes_{i}" in arrays else None)
                      for i, s in enumerate(meta["skills"])]
        except (OSError, ValueError, KeyError, TypeError, SafetensorError) as e:
            raise ProcvidError(f"{folder}: unreadable skill library ({e})") from None
        return cls(skills, meta.get("image_encoder"), meta.get("source", str(folder)))


def _skill_from_graph(path: Path) -> Skill:
    """A graph-script file of `procvid graph build`: counts come from its edges' "transitions"; step
    frequencies are unknown (required steps count as 1, optional ones as unknown)."""
    from procvid.graph.export import read_json

    graph = read_json(path)
    steps = {n: t for n, t in graph.nodes(data="text") if n not in (START, END)}
    optional = set(graph.graph.get("optional", []))
    return Skill(str(graph.graph.get("task_id", path.stem)), str(graph.graph.get("name", path.stem)), steps, graph,
                 frequency={s: 1.0 for s in steps if s not in optional},
                 transitions={(a, b): c for a, b, c in graph.edges(data="transitions") if c})


def build_library(tasks: list[dict], key_frames: list, encoder: str = "default", source: str = "") -> SkillLibrary:
    """Skills of a synthetic world: graph scripts induced from the videos' step orders, step and
    transition counts, and image embeddings of the key frames (`encoder`; None to skip images)."""
    image_encoder = None
    if encoder:
        from procvid.encoders import load_encoder

        image_encoder = load_encoder(encoder)
    skills = []
    for task in tasks:
        videos = [kf for kf in key_frames if kf.task_id == task["id"]]
        if not videos:
            continue
        skill = skill_from_orders(task["id"], task["name"], {s["id"]: s["text"] for s in task["steps"]},
                                  [kf.order for kf in videos])
        if image_encoder is not None:
            skill.keyframes = image_encoder.encode_images(np.concatenate([kf.frames[:, -1] for kf in videos]))
        skills.append(skill)
    return SkillLibrary(skills, [encoder, image_encoder.id] if image_encoder is not None else None, source)


def skill_from_orders(skill_id: str, name: str, steps: dict, orders: list[list], graph=None) -> Skill:
    """A skill from its videos' step orders: step and transition counts, and the graph script
    (induced with the precedence method unless given)."""
    from procvid.graph import induce_graph
    from procvid.graph.script import consecutive_pairs

    if graph is None:
        graph = induce_graph(orders, steps, method="precedence")
    frequency = {s: sum(s in o for o in orders) / len(orders) for s in steps if any(s in o for o in orders)}
    transitions = dict(consecutive_pairs([[START, *o] for o in orders]))
    return Skill(skill_id, name, steps, graph, frequency, transitions)


def build_library_from_world(world: str | Path, encoder: str = "default", progress: bool = False) -> SkillLibrary:
    from procvid.generate.keyframes import load_key_frames, world_videos

    tasks, _ = world_videos(world)
    return build_library(tasks, load_key_frames(world, size=64, progress=progress), encoder, source=str(world))


# ----------------------------------------------------------------------------- retrieval


def text_encoder(name: str = "minilm"):
    """The text encoder retrieval compares skill descriptions with: "minilm" or "clip" (default CLIP)."""
    from procvid.encoders import load_encoder

    if name not in ("minilm", "clip"):
        raise ProcvidError(f"unknown retrieval text encoder {name!r} (minilm or clip)")
    return load_encoder("minilm" if name == "minilm" else "default")


def retrieve(library: SkillLibrary, description: str, image: np.ndarray | None = None, text: str = "minilm",
             top_k: int = 3) -> list[dict]:
    """Skills ranked for a description (and optional uint8 [H, W, 3] initial image), best first."""
    if not description.strip():
        raise ProcvidError("the skill description is empty")
    encoder = text_encoder(text)
    query = encoder.encode_texts([description])[0]
    text_scores = []
    for s in library.skills:
        emb = encoder.encode_texts([s.name, *s.steps.values()])
        text_scores.append(0.5 * float(emb[0] @ query) + 0.5 * float((emb[1:] @ query).max(initial=-1.0)))
    image_scores = [None] * len(library.skills)
    if image is not None and library.has_images():
        from procvid.encoders import load_encoder

        spec, encoder_id = library.image_encoder
        image_encoder = load_encoder(spec)
        if image_encoder.id != encoder_id:
            raise ProcvidError(f"the library's key frames were embedded by {encoder_id}, but {spec!r} "
                               f"now loads {image_encoder.id}; rebuild the library")
        emb = image_encoder.encode_images(np.asarray(image)[None])[0]
        image_scores = [float((s.keyframes @ emb).max()) for s in library.skills]
    logits = np.array([t + (i or 0.0) for t, i in zip(text_scores, image_scores)]) / TEMPERATURE
    prob = np.exp(logits - logits.max())
    prob /= prob.sum()
    ranked = sorted(range(len(library.skills)), key=lambda i: -prob[i])[:top_k]
    return [{"id": library.skills[i].id, "name": library.skills[i].name, "probability": round(float(prob[i]), 4),
             "text_score": round(text_scores[i], 4),
             "image_score": None if image_scores[i] is None else round(image_scores[i], 4)} for i in ranked]


# ----------------------------------------------------------------------------- decoding


def decode_order(skill: Skill, optional_threshold: float = 0.5, beam: int = 256, smoothing: float = 0.5) -> list:
    """The most probable valid order of the skill's kept steps (see the module docstring)."""
    import networkx as nx

    graph = skill.graph
    nodes = [s for s in skill.steps if s in graph]
    kept = [s for s in nodes if s not in skill.optional or skill.frequency.get(s, 0.0) >= optional_threshold]
    rank = {s: i for i, s in enumerate(nodes)}
    needs = {s: frozenset(nx.ancestors(graph, s) & set(kept)) for s in kept}
    # state (done, last) -> (log probability, order); ties go to the order that is earlier in step order
    states = {(frozenset(), START): (0.0, [])}
    for _ in kept:
        grown = {}
        for (done, last), (logp, order) in states.items():
            allowed = [s for s in kept if s not in done and needs[s] <= done]
            counts = [skill.transitions.get((last, s), 0) for s in allowed]
            total = sum(counts) + smoothing * len(allowed)
            for s, c in zip(allowed, counts):
                cand = (logp + math.log((c + smoothing) / total), order + [s])
                key = (done | {s}, s)
                if key not in grown or _better(cand, grown[key], rank):
                    grown[key] = cand
        best = sorted(grown.items(), key=lambda kv: (-kv[1][0], [rank[s] for s in kv[1][1]]))[:beam]
        states = dict(best)
    if not states:
        return []
    return min(states.values(), key=lambda v: (-v[0], [rank[s] for s in v[1]]))[1]


def _better(a, b, rank) -> bool:
    if not math.isclose(a[0], b[0], abs_tol=1e-12):
        return a[0] > b[0]
    return [rank[s] for s in a[1]] < [rank[s] for s in b[1]]


def plan_skill(skill: Skill, max_steps: int | None = None, optional_threshold: float = 0.5) -> list[tuple]:
    """(step id, text) of the decoded order, cut to the first `max_steps`."""
    order = decode_order(skill, optional_threshold)
    return [(s, skill.steps[s]) for s in order][:max_steps]


def make_plan(library: SkillLibrary, description: str, image: np.ndarray | None = None, max_steps: int | None = None,
              text: str = "minilm", optional_threshold: float = 0.5) -> Plan:
    ranked = retrieve(library, description, image, text)
    skill = next(s for s in library.skills if s.id == ranked[0]["id"])
    return Plan(skill.id, skill.name, plan_skill(skill, max_steps, optional_threshold), ranked)


def read_plan_file(path: str | Path) -> list[str]:
    """Step texts from a JSON list of strings, a plan.json ({"steps": [{"text"}...]}) or a list of {"text"}."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ProcvidError(f"cannot read plan file {path}: {e.strerror or e}") from None
    except ValueError as e:
        raise ProcvidError(f"plan file {path} is not valid JSON ({e})") from None
    items = data.get("steps") if isinstance(data, dict) else data
    if not isinstance(items, list) or not items:
        raise ProcvidError(f"plan file {path}: expected a non-empty JSON list of step texts or a plan.json")
    texts = [item.get("text") if isinstance(item, dict) else item for item in items]
    if not all(isinstance(t, str) and t.strip() for t in texts):
        raise ProcvidError(f"plan file {path}: every step needs a non-empty text")
    return [t.strip() for t in texts]
