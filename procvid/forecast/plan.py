"""Procedure planning (the PDPP / SCHEMA task): from a start observation and a goal observation, the T
steps that lead from one to the other.

Observations. The start observation of a window of steps is the mean embedding of the frames in the
OBS_SECONDS after its first step starts, the goal observation that of the frames in the OBS_SECONDS
before its last step ends (feature rows of a clip-level encoder, or frames embedded on the fly:
`observation`, `embed_observation`). Windows are taken from step paths with consecutive repeats merged.

Two planners read one model folder (kind "procedure-planner", written by `procvid train planner`):

* graph: recognise the start and goal states (cosine similarity to per-step prototypes of the
  training windows' start / goal observations, a softmax over every (task, step) with temperature
  `temperature`), then the most probable *valid* path of length T in the task's graph script: score =
  log P(first step | start) + log P(last step | goal) + sum of log P(b | a) over its transitions
  (bigram counts of the training paths, add-`alpha` smoothed). The task is the best path's.
* learned: a transformer over [start, goal, T position queries] (PlannerNet) gives T step
  distributions and a task distribution; decoded per position (`decode="free"`) or as the valid path
  of the predicted task with the highest summed log-probability (`decode="graph"`). With a state head
  (below) and `set_weight` > 0, each valid path's score also gets `set_weight` times its set evidence
  and `transition_weight` times its transitions' log-probabilities.

State recognition (why: the order inside a window is not observable, but the synthetic world's scene keeps
every done step's effect on screen, so the start and goal observations tell which steps are done by then,
hence which steps the window holds). PlannerNet's state head gives, from one observation alone, P(step done)
for every (task, step): done = ended before the observation window begins (`done_steps`), so the step in
progress is not done. The clip-level encoder the planner reads names the action in progress and keeps the
scene only weakly, so the state head can also read a second, per-frame encoder's observation of the same
frames (`state_dim` > 0; the model folder names that encoder: `state_encoder`): its input is then the two
observations concatenated (`state_input`). Without that second observation (a feature file of the first
encoder only) the learned planner decodes without the set evidence. A path w_1..w_T of the task is then
scored by its set evidence (`set_evidence`): for w_1..w_{T-1} log[(1 - d_s) d_g] (not done at the start,
done at the goal), for w_T log[(1 - d_s)(1 - d_g)] (in progress at the goal), for every other step of the
task log[d_s d_g + (1 - d_s)(1 - d_g)] (done before the window, or not yet done at its end), with d_s, d_g
the step's done probabilities at the start and the goal (steps taken as independent).

A window (w_1..w_T, distinct steps) is valid in a graph script when its order keeps the graph's
partial order (no w_j is an ancestor of an earlier w_i) and no required step (one not marked optional)
lies between two of its steps in that order (it would have to be done inside the window).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError
from procvid.graph.script import END, START

KIND = "procedure-planner"
OBS_SECONDS = 1.0  # observation window (2 feature rows at 2 fps), as the 1-s clips of the published protocol
CONTEXT_SECONDS = 2.0  # frames embedded around an observation window: the clip-level encoder sees +-2 s
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
FEATURE_SUFFIXES = {".safetensors", ".json"}
METHODS = ("learned", "graph")
DECODES = ("graph", "free")
DONE_EPS = 1e-4  # done probabilities clipped to [eps, 1 - eps]: one overconfident step cannot veto a path


# ---------------------------------------------------------------------------- windows and observations


def merged_steps(video) -> list[tuple]:
    """(step, start, end) of a VideoAnnotation's segments with consecutive repeats merged into one span."""
    out: list[list] = []
    for s in video.segments:
        if out and out[-1][0] == s.step_id:
            out[-1][2] = max(out[-1][2], s.end) if s.end is not None else out[-1][2]
        else:
            out.append([s.step_id, s.start, s.end])
    return [tuple(x) for x in out]


def step_windows(video, horizon: int) -> list[tuple[tuple, float | None, float | None]]:
    """Every window of `horizon` consecutive steps: (steps, start time of its first, end time of its last)."""
    steps = merged_steps(video)
    return [(tuple(s for s, _, _ in steps[i : i + horizon]), steps[i][1], steps[i + horizon - 1][2])
            for i in range(len(steps) - horizon + 1)]


def done_steps(steps, t: float, side: str, seconds: float = OBS_SECONDS) -> set:
    """The steps of `steps` ((step, start, end) as merged_steps gives) done at the observation at `t`: ended
    before its window begins (t for "start", t - seconds for "goal"), so the step in progress is not done."""
    limit = t if side == "start" else t - seconds
    return {s for s, _, end in steps if end is not None and end <= limit + 1e-6}


def observation(embeddings: np.ndarray, times: np.ndarray, t: float, side: str,
                seconds: float = OBS_SECONDS) -> np.ndarray:
    """The L2-normalised mean of the rows in [t, t + seconds) (side "start") or (t - seconds, t] ("goal");
    the row nearest t when none falls inside."""
    if side not in ("start", "goal"):
        raise ValueError(f"side must be start or goal, not {side!r}")
    eps = 1e-6
    rows = (times >= t - eps) & (times < t + seconds - eps) if side == "start" else \
        (times > t - seconds + eps) & (times <= t + eps)
    if not rows.any():
        rows = np.zeros(len(times), dtype=bool)
        rows[int(np.argmin(np.abs(times - t)))] = True
    v = embeddings[rows].astype(np.float32).mean(0)
    return v / max(float(np.linalg.norm(v)), 1e-8)


def parse_source(text: str) -> tuple[Path, float | None, str]:
    """"IMG", "VIDEO@t" or "FEATURES@t" -> (path, t, kind) with kind image / video / features."""
    path, at, t = text.rpartition("@") if "@" in text else (text, "", "")
    path = Path(path)
    if not path.exists():
        raise ProcvidError(f"{path}: no such file")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        if at:
            raise ProcvidError(f"{text}: an image takes no @time")
        return path, None, "image"
    if not at:
        raise ProcvidError(f"{text}: give the time in seconds as {path}@SECONDS (or an image file)")
    try:
        seconds = float(t)
    except ValueError:
        raise ProcvidError(f"{text}: {t!r} is not a time in seconds") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise ProcvidError(f"{text}: the time must be a number of seconds >= 0")
    return path, seconds, "features" if path.suffix.lower() in FEATURE_SUFFIXES else "video"


def source_frames(source: str, side: str, fps: float = 2.0,
                  seconds: float = OBS_SECONDS) -> tuple[np.ndarray, np.ndarray | None]:
    """The pixels an image or VIDEO@t source shows (see parse_source), decoded once for every encoder that
    embeds them: (frames [N, H, W, 3], their times) for a video, its frames in the observation window and
    CONTEXT_SECONDS around it sampled at `fps` on the grid the feature cache uses (a clip-level encoder needs
    the context); (the image [1, H, W, 3], None) for an image."""
    path, t, kind = parse_source(source)
    if kind == "features":
        raise ValueError("feature files hold no pixels")
    if kind == "image":
        from PIL import Image

        try:
            return np.asarray(Image.open(path).convert("RGB"))[None], None
        except OSError as e:
            raise ProcvidError(f"{path}: cannot read the image ({e})") from None
    from procvid.video import frames_at, probe

    duration = probe(path).duration
    if t > duration + 1e-6:
        raise ProcvidError(f"{source}: the video is {duration:.2f} s long")
    lo, hi = (t, t + seconds) if side == "start" else (t - seconds, t)
    grid = np.arange(math.floor(max(0.0, lo - CONTEXT_SECONDS) * fps),
                     math.ceil(min(duration, hi + CONTEXT_SECONDS) * fps) + 1) / fps
    grid = grid[grid < duration] if (grid < duration).any() else grid[:1]
    return np.stack(frames_at(path, grid)), grid


def embed_observation(source: str, side: str, encoder=None, encoder_id: str | None = None,
                      fps: float = 2.0, seconds: float = OBS_SECONDS, frames: tuple | None = None) -> np.ndarray:
    """The observation of `source` ("IMG", "VIDEO@t" or "FEATURES@t"; see parse_source) as the planner
    sees it: feature rows are read (their encoder must be `encoder_id` when given); a video's frames
    (source_frames, or `frames` when already decoded) are embedded with `encoder`; an image is embedded as a
    still clip (the image repeated over the window and its context)."""
    from procvid.features import load_features

    path, t, kind = parse_source(source)
    if kind == "features":
        emb, times, meta = load_features(path)
        if encoder_id and meta.get("encoder") != encoder_id:
            raise ProcvidError(f"{path}: features of {meta.get('encoder')}, but the planner was trained on "
                               f"features of {encoder_id}")
        return observation(emb, times, t, side, seconds)
    if encoder is None:
        raise ValueError("an encoder is needed to embed images and videos")
    pixels, grid = frames if frames is not None else source_frames(source, side, fps, seconds)
    if grid is None:  # an image
        n = int(round((seconds + 2 * CONTEXT_SECONDS) * fps)) if encoder.fps else 1
        v = encoder.encode_images(np.repeat(pixels, max(n, 1), axis=0)).mean(0)
        return v / max(float(np.linalg.norm(v)), 1e-8)
    return observation(encoder.encode_images(pixels), grid, t, side, seconds)


# ---------------------------------------------------------------------------- graph scripts


class Windows:
    """Valid windows of each task's graph script (module docstring), cached per (task, length)."""

    def __init__(self, graphs: dict):
        import networkx as nx

        self.graphs = graphs
        self.cache: dict[tuple[str, int], np.ndarray] = {}
        self.steps, self.ancestors, self.descendants, self.required = {}, {}, {}, {}
        for task, g in graphs.items():
            steps = [n for n in g.nodes if n not in (START, END)]
            self.steps[task] = steps
            self.ancestors[task] = {n: nx.ancestors(g, n) - {START} for n in steps}
            self.descendants[task] = {n: nx.descendants(g, n) - {END} for n in steps}
            self.required[task] = set(steps) - set(g.graph.get("optional", []))

    def extends(self, task: str, prefix: list, step) -> bool:
        """Whether prefix + [step] is a valid window (prefix valid)."""
        if step in prefix or self.descendants[task][step] & set(prefix):
            return False
        before = self.ancestors[task][step]
        taken = set(prefix) | {step}
        return not any((self.descendants[task][p] & before & self.required[task]) - taken for p in prefix)

    def valid(self, task: str, length: int) -> np.ndarray:
        """Valid windows of `length` steps as an index array [N, length] into self.steps[task]."""
        key = (task, length)
        if key not in self.cache:
            steps = self.steps[task]
            index = {s: i for i, s in enumerate(steps)}
            out: list[list] = []

            def grow(prefix):
                if len(prefix) == length:
                    out.append([index[s] for s in prefix])
                    return
                for s in steps:
                    if self.extends(task, prefix, s):
                        grow([*prefix, s])

            grow([])
            self.cache[key] = np.array(out, dtype=np.int64).reshape(-1, length)
        return self.cache[key]

    def is_valid(self, task: str, window) -> bool:
        window = list(window)
        if task not in self.graphs or any(s not in self.ancestors[task] for s in window):
            return False
        return all(self.extends(task, window[:i], s) for i, s in enumerate(window))


def transition_logprobs(steps: list, counts: Counter, alpha: float) -> np.ndarray:
    """log P(b | a) [K, K] over `steps` from transition counts, add-alpha smoothed (a -> a excluded:
    paths have their consecutive repeats merged)."""
    k = len(steps)
    m = np.array([[counts.get((a, b), 0) + alpha for b in steps] for a in steps], dtype=np.float64)
    m[np.arange(k), np.arange(k)] = 0.0
    m /= np.maximum(m.sum(1, keepdims=True), 1e-12)
    with np.errstate(divide="ignore"):
        return np.log(m)


def set_evidence(windows: np.ndarray, done_start: np.ndarray, done_goal: np.ndarray) -> np.ndarray:
    """Set evidence (module docstring) [N] of windows [N, T] (indices into the task's K steps) from the
    done probabilities [K] of the task's steps at the start and at the goal observation."""
    if not len(windows):
        return np.zeros(0)
    ds, dg = (np.clip(np.asarray(d, dtype=np.float64), DONE_EPS, 1 - DONE_EPS) for d in (done_start, done_goal))
    inside = np.log((1 - ds) * dg)
    last = np.log((1 - ds) * (1 - dg))
    outside = np.log(ds * dg + (1 - ds) * (1 - dg))
    member = np.zeros((len(windows), len(ds)), dtype=bool)
    member[np.arange(len(windows))[:, None], windows[:, :-1]] = True
    final = windows[:, -1]
    score = np.where(member, inside, outside).sum(1)
    return score - outside[final] + last[final]


def best_paths(windows: np.ndarray, position_scores: np.ndarray, transitions: np.ndarray | None = None,
               top: int = 1, extra: np.ndarray | None = None) -> list[tuple[np.ndarray, float]]:
    """The `top` windows (rows of an index array [N, T]) by summed position scores ([T, K] per-step
    log-probabilities) plus their transitions' log-probabilities ([K, K], optional, already weighted)
    plus `extra` (a score per window [N], optional: e.g. the weighted set evidence)."""
    if not len(windows):
        return []
    t = windows.shape[1]
    score = position_scores[np.arange(t), windows].sum(1)
    if transitions is not None and t > 1:
        score = score + transitions[windows[:, :-1], windows[:, 1:]].sum(1)
    if extra is not None:
        score = score + extra
    order = np.argsort(-score, kind="stable")[:top]
    return [(windows[i], float(score[i])) for i in order]


def viterbi(position_scores: np.ndarray, transitions: np.ndarray) -> tuple[np.ndarray, float]:
    """The best path over K states for T positions: sum of position scores [T, K] + transitions [K, K]
    (no graph constraint: the ablation of the graph planner)."""
    t, k = position_scores.shape
    score = position_scores[0].copy()
    back = np.zeros((t, k), dtype=np.int64)
    for i in range(1, t):
        cand = score[:, None] + transitions
        back[i] = cand.argmax(0)
        score = cand.max(0) + position_scores[i]
    path = [int(score.argmax())]
    for i in range(t - 1, 0, -1):
        path.append(int(back[i, path[-1]]))
    return np.array(path[::-1]), float(score.max())


# ---------------------------------------------------------------------------- the network


def state_input(obs, state_obs):
    """The state head's input from both encoders' observations [..., D], [..., D2] (torch tensors): their
    concatenation scaled to unit norm (each part is unit norm), so neither encoder dominates by its size."""
    import torch

    return torch.cat([obs, state_obs], -1) / math.sqrt(2.0)


def build_network(input_dim: int, num_steps: int, num_tasks: int, max_horizon: int = 8, dim: int = 128,
                  layers: int = 2, heads: int = 4, dropout: float = 0.1, state: bool = False, state_dim: int = 0):
    """PlannerNet: [start, goal, T queries] -> T step distributions and a task distribution; with `state`,
    also a state head (one observation -> done logits of every (task, step): `done_logits`), which also reads a
    second encoder's observation of `state_dim` dims when > 0 (module docstring). The step and goal prototypes
    of the graph planner travel with it as buffers (one model folder for both planners)."""
    import torch
    from torch import nn

    class PlannerNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.max_horizon = max_horizon
            self.state_dim = state_dim
            self.obs = nn.Sequential(nn.Linear(input_dim, dim), nn.GELU(), nn.Linear(dim, dim))
            self.role = nn.Embedding(2, dim)  # start, goal
            self.horizon = nn.Embedding(max_horizon + 1, dim)
            self.position = nn.Embedding(max_horizon, dim)
            layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.step_head = nn.Linear(dim, num_steps)
            self.task_head = nn.Linear(dim, num_tasks)
            self.state = None
            if state:  # on a forked generator: the rest of a seeded run draws the same numbers with or without it
                with torch.random.fork_rng(devices=[]):
                    self.state = nn.Sequential(nn.Linear(input_dim + state_dim, 2 * dim), nn.GELU(),
                                               nn.Linear(2 * dim, 2 * dim),
                                               nn.GELU(), nn.Linear(2 * dim, num_steps))
            self.register_buffer("start_prototypes", torch.zeros(num_steps, input_dim))
            self.register_buffer("goal_prototypes", torch.zeros(num_steps, input_dim))

        def forward(self, start, goal, horizon):
            """start, goal [B, D]; horizon [B] (long, 1..max_horizon) -> (step logits [B, max_horizon,
            num_steps], valid positions [B, max_horizon], task logits [B, num_tasks])."""
            b = start.shape[0]
            obs = torch.stack([self.obs(start), self.obs(goal)], 1) + self.role.weight
            pos = torch.arange(self.max_horizon, device=start.device)
            queries = self.position(pos)[None].expand(b, -1, -1) + self.horizon(horizon)[:, None]
            valid = pos[None] < horizon[:, None]
            pad = torch.cat([torch.zeros(b, 2, dtype=torch.bool, device=start.device), ~valid], 1)
            h = self.norm(self.encoder(torch.cat([obs, queries], 1), src_key_padding_mask=pad))
            return self.step_head(h[:, 2:]), valid, self.task_head(h[:, :2].mean(1))

        def done_logits(self, obs, state_obs=None):
            """obs [B, D] (and the second encoder's state_obs [B, state_dim] when state_dim > 0) -> logits
            [B, num_steps] of each (task, step) being done (done_steps)."""
            return self.state(obs if not self.state_dim else state_input(obs, state_obs))

    return PlannerNet()


# ---------------------------------------------------------------------------- the planner


@dataclass
class Plan:
    task: str
    steps: list
    texts: list[str]
    score: float  # graph: joint log-probability; learned: summed log-probabilities (+ weighted set evidence)
    step_probs: list[float] = field(default_factory=list)  # learned: each position's probability of its step
    task_prob: float | None = None
    valid: bool = True  # a valid window of the task's graph script

    def to_dict(self) -> dict:
        return {"task": self.task, "steps": self.steps, "texts": self.texts, "score": self.score,
                "step_probs": self.step_probs, "task_prob": self.task_prob, "valid": self.valid}


class ProcedurePlanner:
    """Both planners of one model folder (see the module docstring); `info` is its config.json."""

    def __init__(self, net, info: dict):
        import networkx as nx
        import torch

        from procvid.graph.script_model import ScriptVocab

        self.torch = torch
        self.net = net.eval()
        self.info = info
        self.vocab = ScriptVocab.from_dict(info["vocab"])
        self.pairs = sorted(self.vocab.step_token, key=self.vocab.step_token.get)  # step index -> (task, step)
        self.index = {p: i for i, p in enumerate(self.pairs)}
        self.tasks = list(self.vocab.tasks)
        self.graphs = {t: nx.node_link_graph(g, edges="edges") for t, g in info["graphs"].items()}
        self.windows = Windows(self.graphs)
        counts: dict[str, Counter] = {}
        for task, a, b, n in info["transitions"]:
            counts.setdefault(task, Counter())[(a, b)] = n
        settings = info.get("settings", {})
        self.temperature = float(settings.get("temperature", 0.05))
        self.alpha = float(settings.get("alpha", 0.1))
        self.decode = settings.get("decode", "graph")
        # the set evidence needs the state head; folders without one decode as before
        self.has_state = getattr(net, "state", None) is not None
        self.set_weight = float(settings.get("set_weight", 0.0)) if self.has_state else 0.0
        self.transition_weight = float(settings.get("transition_weight", 0.0))
        self.encoder_spec = info.get("encoder_spec")
        self.encoder_id = info.get("encoder")
        # the state head's second encoder (module docstring); None: it reads the first encoder's observation only
        self.state_dim = int(getattr(net, "state_dim", 0)) if self.has_state else 0
        self.state_encoder_spec = info.get("state_encoder_spec") if self.state_dim else None
        self.state_encoder_id = info.get("state_encoder") if self.state_dim else None
        self.fps = float((info.get("sampling") or {}).get("fps", 2.0))
        # per task: its steps in graph order, their global indices, and log P(b | a)
        self.task_steps = {t: self.windows.steps[t] for t in self.graphs}
        self.task_index = {t: np.array([self.index[(t, s)] for s in steps]) for t, steps in self.task_steps.items()}
        self.log_transitions = {t: transition_logprobs(steps, counts.get(t, Counter()), self.alpha)
                                for t, steps in self.task_steps.items()}
        self.start_prototypes = net.start_prototypes.numpy().astype(np.float64)
        self.goal_prototypes = net.goal_prototypes.numpy().astype(np.float64)

    @classmethod
    def from_pretrained(cls, folder) -> ProcedurePlanner:
        """The planner of a folder written by `procvid train planner`; only JSON and safetensors are read."""
        from procvid.checkpoint import load_module

        net = load_module(folder, KIND, lambda c: build_network(**c["architecture"]))
        return cls(net, net.info)

    # ------------------------------------------------------------------ recognition

    def recognize(self, obs: np.ndarray, side: str) -> np.ndarray:
        """log P((task, step) | observation) [N, V]: softmax of cosine similarity to the side's prototypes."""
        protos = self.start_prototypes if side == "start" else self.goal_prototypes
        logits = np.atleast_2d(obs).astype(np.float64) @ protos.T / self.temperature
        logits -= logits.max(1, keepdims=True)
        return logits - np.log(np.exp(logits).sum(1, keepdims=True))

    def _check(self, horizon: int, task: str | None) -> None:
        if not 1 <= horizon <= self.net.max_horizon:
            raise ProcvidError(f"the planner plans 1 to {self.net.max_horizon} steps, not {horizon}")
        if task is not None and task not in self.graphs:  # no training video: no graph script
            raise ProcvidError(f"the planner does not know task {task!r} (tasks: {', '.join(self.tasks)})")

    def _plan(self, task: str, idx, score: float, probs=(), task_prob=None) -> Plan:
        steps = [self.task_steps[task][i] for i in idx]
        return Plan(task, steps, [self.vocab.texts.get(task, {}).get(s, str(s)) for s in steps], score,
                    [float(p) for p in probs], task_prob, self.windows.is_valid(task, steps))

    # ------------------------------------------------------------------ the two planners

    def plan_graph(self, start: np.ndarray, goal: np.ndarray, horizon: int, task: str | None = None,
                   top: int = 1, constrained: bool = True) -> list[Plan]:
        """The graph-script planner for one query (module docstring); constrained=False: the best path under
        the same scores without the graph's validity (Viterbi, steps may repeat), the ablation."""
        self._check(horizon, task)
        ls, lg = self.recognize(start, "start")[0], self.recognize(goal, "goal")[0]
        found = []
        for t in [task] if task else self.graphs:
            k = len(self.task_steps[t])
            pos = np.zeros((horizon, k))
            pos[0] += ls[self.task_index[t]]
            pos[-1] += lg[self.task_index[t]]
            if constrained:
                found += [(t, idx, s) for idx, s in best_paths(self.windows.valid(t, horizon), pos,
                                                                  self.log_transitions[t], top)]
            else:
                idx, s = viterbi(pos, self.log_transitions[t])
                found.append((t, idx, s))
        found.sort(key=lambda f: -f[2])
        if not found:
            raise ProcvidError(f"no task's graph script has a valid path of {horizon} steps")
        return [self._plan(t, idx, s) for t, idx, s in found[:top]]

    def plan_graph_scores(self, task: str, position_scores: np.ndarray, top: int = 1) -> list[Plan]:
        """The task's best valid paths under position scores [T, task steps] plus transition log-probabilities."""
        found = best_paths(self.windows.valid(task, len(position_scores)), position_scores,
                           self.log_transitions[task], top)
        return [self._plan(task, idx, s) for idx, s in found]

    def predict(self, starts: np.ndarray, goals: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """The network's (log P(step at each position) [N, T, V], log P(task) [N, tasks])."""
        torch = self.torch
        starts, goals = np.atleast_2d(starts), np.atleast_2d(goals)
        with torch.no_grad():
            h = torch.full((len(starts),), horizon, dtype=torch.long)
            steps, _, tasks = self.net(torch.as_tensor(starts, dtype=torch.float32),
                                       torch.as_tensor(goals, dtype=torch.float32), h)
        return steps[:, :horizon].log_softmax(-1).double().numpy(), tasks.log_softmax(-1).double().numpy()

    def predict_done(self, observations: np.ndarray, state_observations: np.ndarray | None = None) -> np.ndarray:
        """P(done) [N, V] of every (task, step) at each observation (the state head; module docstring);
        `state_observations` [N, state_dim]: the same frames' observations by the second encoder, needed when
        the planner has one (state_encoder)."""
        if not self.has_state:
            raise ProcvidError("this planner has no state head (trained before state recognition); "
                               "retrain it with procvid train planner")
        if self.state_dim and state_observations is None:
            raise ProcvidError(f"this planner's state head also reads features of {self.state_encoder_id}: "
                               "give their observations too")
        torch = self.torch
        as_tensor = lambda x: torch.as_tensor(np.atleast_2d(x), dtype=torch.float32)  # noqa: E731
        with torch.no_grad():
            logits = self.net.done_logits(as_tensor(observations),
                                          as_tensor(state_observations) if self.state_dim else None)
        return torch.sigmoid(logits).double().numpy()

    def plan_learned(self, start: np.ndarray, goal: np.ndarray, horizon: int, task: str | None = None,
                     top: int = 1, decode: str | None = None, start_state: np.ndarray | None = None,
                     goal_state: np.ndarray | None = None) -> list[Plan]:
        """The learned planner for one query: the task (given, or the network's), then its steps
        per position (decode "free") or the valid path of highest summed log-probability ("graph"; plus the
        weighted set evidence of the state head's done probabilities and transitions, module docstring).
        start_state, goal_state: the second encoder's observations, when the planner has one (without them it
        decodes without the set evidence)."""
        self._check(horizon, task)
        steps, tasks = self.predict(start, goal, horizon)
        # the set evidence only scores graph decoding: no state head pass for "free"
        graph = (decode or self.decode) == "graph"
        done = None
        if self.set_weight and graph and (not self.state_dim or (start_state is not None and goal_state is not None)):
            done = self.predict_done(np.stack([start, goal]),
                                     np.stack([start_state, goal_state]) if self.state_dim else None)
        return self.decode_learned(steps[0], tasks[0], task, top, decode, done)

    def decode_learned(self, steps: np.ndarray, tasks: np.ndarray, task: str | None = None, top: int = 1,
                       decode: str | None = None, done: np.ndarray | None = None,
                       set_weight: float | None = None, transition_weight: float | None = None) -> list[Plan]:
        """Plans from one row of `predict` (log P(step) [T, V], log P(task) [tasks]); see plan_learned.
        done: P(done) [2, V] at the start and the goal (predict_done), for the set evidence of decode
        "graph"; the weights default to the planner's settings (0: the plain learned planner)."""
        decode = decode or self.decode
        set_weight = self.set_weight if set_weight is None else set_weight
        transition_weight = self.transition_weight if transition_weight is None else transition_weight
        if decode not in DECODES:
            raise ProcvidError(f"unknown decoding {decode!r}; choose from: {', '.join(DECODES)}")
        horizon = len(steps)
        task_prob = None
        if task is None:  # among the tasks with a graph script (training videos)
            best = max((i for i, t in enumerate(self.tasks) if t in self.graphs), key=lambda i: tasks[i])
            task, task_prob = self.tasks[best], float(np.exp(tasks[best]))
        pos = steps[:, self.task_index[task]]
        pos = pos - np.log(np.exp(pos).sum(1, keepdims=True))  # renormalised over the task's steps
        if decode == "free":
            idx = pos.argmax(1)
            paths = [(idx, float(pos.max(1).sum()))]
        else:
            valid = self.windows.valid(task, horizon)
            extra = None
            if set_weight and done is not None:
                extra = set_weight * set_evidence(valid, *np.asarray(done)[:, self.task_index[task]])
            transitions = transition_weight * self.log_transitions[task] if transition_weight else None
            paths = best_paths(valid, pos, transitions, top, extra)
            if not paths:
                raise ProcvidError(f"the graph script of task {task!r} has no valid path of {horizon} steps")
        return [self._plan(task, idx, s, np.exp(pos[np.arange(horizon), idx]), task_prob) for idx, s in paths]

    def plan(self, start: np.ndarray, goal: np.ndarray, horizon: int, task: str | None = None,
             method: str = "learned", top: int = 1, decode: str | None = None, start_state: np.ndarray | None = None,
             goal_state: np.ndarray | None = None) -> list[Plan]:
        if method == "learned":
            return self.plan_learned(start, goal, horizon, task, top, decode, start_state, goal_state)
        if method == "graph":
            return self.plan_graph(start, goal, horizon, task, top)
        raise ProcvidError(f"unknown planner {method!r}; choose from: {', '.join(METHODS)}")

    def load_encoder(self, device: str = "auto", state: bool = False, folder=None):
        """The encoder of the planner's training features (to embed images and videos); `state`: the state
        head's second encoder. It must still make the features the planner was trained on (`folder` names
        the planner in the error)."""
        from procvid.encoders import load_encoder

        spec, trained = (self.state_encoder_spec, self.state_encoder_id) if state else \
            (self.encoder_spec, self.encoder_id)
        if not spec:
            raise ProcvidError("the planner does not name the encoder of its training features; give feature "
                               "files (FEATURES@t) instead of images or videos")
        encoder = load_encoder(spec, device=device)
        if trained and encoder.id != trained:
            what = "its state head was trained" if state else "trained"
            raise ProcvidError(f"{folder or 'the planner'}: {what} on features of {trained}, but its encoder {spec} "
                               f"is now {encoder.id}")
        return encoder


def save_planner(folder, net, vocab, graphs: dict, transitions: dict[str, Counter], config: dict, domain: str,
                 **info) -> Path:
    """A procvid model folder: PlannerNet's weights and prototypes, the vocabulary, graph scripts and
    transition counts in config.json (`config`: build_network's options)."""
    import networkx as nx

    from procvid.checkpoint import save_pretrained

    rows = [[t, a, b, int(n)] for t, c in transitions.items() for (a, b), n in sorted(c.items(), key=str)]
    return save_pretrained(folder, net.state_dict(), {
        "kind": KIND, "domain": domain, "architecture": config, "vocab": vocab.to_dict(),
        "graphs": {t: nx.node_link_data(g, edges="edges") for t, g in graphs.items()},
        "transitions": rows, **info})


DEFAULT_PLANNER = "procvid-planner"  # in checkpoints/


def plan_observations(start: str, goal: str, horizon: int, model=None, task: str | None = None,
                      method: str = "learned", decode: str | None = None, top: int = 1,
                      device: str = "auto", out=None) -> dict:
    """`procvid plan`: embed the start and goal sources (see embed_observation) the way the planner's
    training features were made, and plan. {"plans": [Plan.to_dict()], "warnings": [...], settings}, also
    written to `out` (JSON) when given."""
    from procvid.domain import mismatch_warnings
    from procvid.paths import CHECKPOINTS_DIR

    folder = Path(model) if model else CHECKPOINTS_DIR / DEFAULT_PLANNER
    planner = ProcedurePlanner.from_pretrained(folder)
    sources = [parse_source(start), parse_source(goal)]
    encoder = None
    warnings = []
    sides = ((start, "start"), (goal, "goal"))
    # the pixels of images and videos (by side: one video gives both), decoded once for both encoders
    pixels = {side: source_frames(text, side, planner.fps) for (text, side), (_, _, kind) in zip(sides, sources)
              if kind != "features"}
    if pixels:
        encoder = planner.load_encoder(device, folder=folder)
    obs = [embed_observation(text, side, encoder, planner.encoder_id, planner.fps, frames=pixels.get(side))
           for text, side in sides]
    states = [None, None]
    uses_state = method == "learned" and (decode or planner.decode) == "graph" and planner.set_weight
    if planner.state_dim and uses_state:
        if len(pixels) == len(sides):
            state_encoder = planner.load_encoder(device, state=True, folder=folder)
            states = [embed_observation(text, side, state_encoder, planner.state_encoder_id, planner.fps,
                                        frames=pixels[side]) for text, side in sides]
        else:  # a feature file holds one encoder's rows: the state head lacks its second observation
            warnings.append(f"feature files give no {planner.state_encoder_spec} observation for the planner's state "
                            "head: planned without the set evidence (give images or videos for the full planner)")
    plans = planner.plan(obs[0], obs[1], horizon, task, method, top, decode, *states)
    videos = [str(p) for p, _, kind in sources if kind == "video"]
    result = {"start": start, "goal": goal, "horizon": horizon, "planner": method, "model": str(folder),
              "decode": (decode or planner.decode) if method == "learned" else None,
              "plans": [p.to_dict() for p in plans],
              "warnings": warnings + mismatch_warnings({f"the planner {folder.name}": planner.info.get("domain")},
                                                       videos)}
    if out:
        import json

        from procvid.outputs import atomic_write

        atomic_write(out, json.dumps(result, indent=2) + "\n")
    return result
