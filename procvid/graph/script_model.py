"""Next-step models of step sequences: a small task-conditioned transformer and the baselines it is
compared with, behind one interface, with greedy / beam completion and graph scripts from beams.

Interface. A next-step model has `predict(task_id, prefixes) -> [ {step or END: probability} ]`: for
each prefix (step ids performed so far, possibly empty) a distribution over the task's steps and END.

* ScriptModel: a causal transformer over [task token, steps...] predicting the next step or END; the
  softmax runs over the task's own steps and END only.
* MarkovBaseline: P(next | last step) counted per task (START before the first step), add-alpha smoothed.
* GraphWalk: a walk on a graph script (procvid.graph.induce_graph): the next step is the most frequent
  successor of the last step among the *valid* ones (see GraphWalk); invalid steps keep a tiny share.
* LinearScript: the task's canonical order; the next step is the first step not yet done after the
  last one in that order. It ranks, it does not estimate: its "probabilities" halve with each rank.

Sequences are modelled with consecutive repeats merged (a step annotated as two adjacent segments
is one step; see collapse_repeats); other repeats are kept.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Hashable, Protocol, Sequence

import numpy as np

from procvid.errors import ProcvidError
from procvid.graph.script import END, START, consecutive_pairs

KIND = "script-model"  # procvid.checkpoint model folder
EPSILON = 1e-6  # share of an invalid step in GraphWalk: ranked last, never impossible


def collapse_repeats(sequence: Sequence) -> list:
    """The sequence with consecutive repeats merged: [1, 1, 2, 1] -> [1, 2, 1]."""
    return [s for i, s in enumerate(sequence) if i == 0 or sequence[i - 1] != s]


def split_sequences(dataset, split: str | None = None) -> dict[str, list[list]]:
    """Task id -> collapsed step sequences of the videos of `split` (all videos if None)."""
    if split is not None:
        dataset = dataset.split(split)
    out: dict[str, list[list]] = defaultdict(list)
    for video in dataset.videos:
        if video.segments:
            out[video.task_id].append(collapse_repeats(video.path))
    return dict(out)


class NextStepModel(Protocol):
    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]: ...


def ranked(probs: dict, steps: Sequence | None = None) -> list[tuple[Hashable, float]]:
    """(step, probability) best first; END left out when `steps` (the candidates, in tie order) is given."""
    keys = list(steps) if steps is not None else list(probs)
    order = sorted(range(len(keys)), key=lambda i: -probs.get(keys[i], 0.0))  # stable: ties keep `keys` order
    return [(keys[i], probs.get(keys[i], 0.0)) for i in order]


def beam_search(model: NextStepModel, task_id: str, prefix: list, width: int = 5,
                max_steps: int = 20) -> list[tuple[list, float]]:
    """Continuations of `prefix` that reach END (END left out) with their log-probabilities, best first;
    if none reaches END within max_steps, the open beams. width=1 is greedy decoding."""
    beams = [([], 0.0)]
    finished: list[tuple[list, float]] = []
    for _ in range(max_steps):
        if not beams:
            break
        dists = model.predict(task_id, [list(prefix) + seq for seq, _ in beams])
        options = []
        for (seq, logp), dist in zip(beams, dists):
            for step, p in dist.items():
                if p > 0:
                    options.append((seq if step == END else [*seq, step], logp + math.log(p), step == END))
        options.sort(key=lambda o: -o[1])
        beams = []
        for seq, logp, done in options[:width]:
            (finished if done else beams).append((seq, logp))
        if finished and (not beams or max(lp for _, lp in finished) >= beams[0][1]):
            break  # log-probabilities only fall: no open beam can overtake the best finished one
    return sorted(finished, key=lambda b: -b[1]) or beams


def complete(model: NextStepModel, task_id: str, prefix: list, width: int = 1, max_steps: int = 20) -> list:
    """The most likely continuation of `prefix` up to END (greedy for width 1)."""
    return beam_search(model, task_id, prefix, width, max_steps)[0][0]


def beams_graph(model: NextStepModel, task_id: str, steps: dict, width: int = 16, tolerance: float = 0.2,
                max_steps: int = 20, resolution: int = 100):
    """A graph script (procvid.graph.script format) from the model's `width` best complete sequences,
    weighted by their probability: a -> b is kept when a comes before b in at least 1 - tolerance of
    the probability mass of the beams holding both (precedence induction over the beams, each beam
    counted round(resolution * its share of the mass) times, so beams under 1/(2 resolution) drop out)."""
    from procvid.graph import induce_graph

    beams = [(seq, lp) for seq, lp in beam_search(model, task_id, [], width, max_steps) if seq]
    if beams:
        mass = np.exp(np.array([lp for _, lp in beams]) - beams[0][1])
        repeats = np.round(resolution * mass / mass.sum()).astype(int)
        beams = [seq for (seq, _), n in zip(beams, repeats) for _ in range(n)]
    if not beams:
        raise ProcvidError(f"the model predicts no step for task {task_id}")
    graph = induce_graph(beams, steps, method="precedence", tolerance=tolerance)
    graph.graph.update(method="script-model beams", task_id=task_id)
    return graph


# ---------------------------------------------------------------------------- baselines


class LinearScript:
    """The canonical order of each task: orders = {task: [step ids in order]}."""

    def __init__(self, orders: dict[str, list]):
        self.orders = orders

    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]:
        return [self._one(self.orders[task_id], prefix) for prefix in prefixes]

    @staticmethod
    def _one(order: list, prefix: list) -> dict:
        done = set(prefix)
        pos = order.index(prefix[-1]) + 1 if prefix and prefix[-1] in order else 0
        after = [s for s in order[pos:] if s not in done]
        before = [s for s in order[:pos] if s not in done]
        ranking = [*after, END, *before, *(s for s in order if s in done)]
        weights = 0.5 ** np.arange(len(ranking))
        return dict(zip(ranking, weights / weights.sum()))


class MarkovBaseline:
    """Bigram model per task: P(next | last step or START) from counts, add-alpha smoothed over the
    task's steps and END."""

    def __init__(self, sequences: dict[str, list[list]], steps: dict[str, list], alpha: float = 0.1):
        self.steps = steps
        self.alpha = alpha
        self.counts = {task: consecutive_pairs([[START, *s, END] for s in seqs]) for task, seqs in sequences.items()}

    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]:
        counts = self.counts.get(task_id, Counter())
        options = [*self.steps[task_id], END]
        out = []
        for prefix in prefixes:
            last = prefix[-1] if prefix else START
            weights = np.array([counts.get((last, s), 0) + self.alpha for s in options], dtype=float)
            out.append(dict(zip(options, weights / weights.sum())))
        return out


class GraphWalk:
    """A walk on graph scripts: graphs = {task: nx.DiGraph in the procvid.graph.script format}.

    Valid next steps: not done yet, every ancestor that is not optional (graph attribute "optional")
    done, no descendant done (doing the step now keeps the partial order). END is valid once every
    required step is done. Valid candidates share the probability in proportion to
    count(last, candidate) + alpha * share(candidate): count is how often the candidate directly
    followed the last step (START for an empty prefix) in training, share the candidate's add-one
    smoothed share of all counted transitions into steps (END: the mean step's), so that without
    counts from the last step the common steps come first. Counts come from `transitions`
    ({task: Counter of (a, b)}) if given, else from the graph's edge attribute "transitions" (graph
    edges only). Invalid candidates get EPSILON times their weight: they rank after every valid one.
    """

    def __init__(self, graphs: dict, transitions: dict[str, Counter] | None = None, alpha: float = 0.1):
        import networkx as nx

        self.graphs = graphs
        self.alpha = alpha
        self.counts = transitions or {
            task: Counter({(a, b): n for a, b, n in g.edges(data="transitions", default=0)})
            for task, g in graphs.items()}
        self.ancestors, self.descendants, self.share = {}, {}, {}
        for task, g in graphs.items():
            steps = [n for n in g.nodes if n not in (START, END)]
            self.ancestors[task] = {n: nx.ancestors(g, n) - {START} for n in steps}
            self.descendants[task] = {n: nx.descendants(g, n) - {END} for n in steps}
            into = Counter()
            for (_, b), n in self.counts.get(task, Counter()).items():
                into[b] += n
            share = np.array([into[s] + 1.0 for s in steps])
            self.share[task] = np.append(share, share.mean()) / (share.sum() + share.mean())

    def valid(self, task_id: str, prefix: list) -> list:
        """The valid next steps (END last) after `prefix`."""
        optional = set(self.graphs[task_id].graph.get("optional", []))
        done = set(prefix)
        steps = [s for s, anc in self.ancestors[task_id].items()
                 if s not in done and (anc - optional) <= done and not (self.descendants[task_id][s] & done)]
        required = set(self.ancestors[task_id]) - optional
        return steps + ([END] if required <= done else [])

    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]:
        if task_id not in self.graphs:
            raise ProcvidError(f"no graph for task {task_id!r}")
        counts = self.counts.get(task_id, Counter())
        options = [*self.ancestors[task_id], END]
        out = []
        for prefix in prefixes:
            last = prefix[-1] if prefix else START
            valid = set(self.valid(task_id, prefix))
            weights = np.array([counts.get((last, s), 0) for s in options]) + self.alpha * self.share[task_id]
            weights *= [1.0 if s in valid else EPSILON for s in options]
            out.append(dict(zip(options, weights / weights.sum())))
        return out


# ---------------------------------------------------------------------------- transformer


@dataclass
class ScriptVocab:
    """Token ids: 0 padding, 1 END, then one token per task, then one per (task, step).

    tasks: {task id: [step ids, in the task's order]}; texts: {task id: {step id: text}}; names: {task id: name}.
    """

    tasks: dict[str, list]
    texts: dict[str, dict] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    PAD_ID, END_ID = 0, 1  # token ids

    def __post_init__(self):
        self.task_token = {t: 2 + i for i, t in enumerate(self.tasks)}
        self.step_token = {}
        for t, steps in self.tasks.items():
            for s in steps:
                self.step_token[(t, s)] = 2 + len(self.tasks) + len(self.step_token)
        self.size = 2 + len(self.tasks) + len(self.step_token)

    @classmethod
    def from_dataset(cls, dataset) -> ScriptVocab:
        return cls({t: list(task.steps) for t, task in dataset.tasks.items()},
                   {t: task.texts() for t, task in dataset.tasks.items()},
                   {t: task.name for t, task in dataset.tasks.items()})

    def to_dict(self) -> dict:  # JSON-like: step ids keep their type inside lists
        return {"tasks": [[t, self.names.get(t, t), [[s, self.texts.get(t, {}).get(s, str(s))] for s in steps]]
                          for t, steps in self.tasks.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> ScriptVocab:
        tasks = {t: [s for s, _ in steps] for t, _, steps in d["tasks"]}
        texts = {t: dict((s, text) for s, text in steps) for t, _, steps in d["tasks"]}
        return cls(tasks, texts, {t: name for t, name, _ in d["tasks"]})

    def encode(self, task_id: str, steps: Sequence) -> list[int]:
        if task_id not in self.task_token:
            raise ProcvidError(f"the script model does not know task {task_id!r}")
        try:
            return [self.task_token[task_id], *(self.step_token[(task_id, s)] for s in steps)]
        except KeyError as e:
            raise ProcvidError(f"task {task_id} has no step {e.args[0][1]!r}") from None

    def allowed(self):
        """Bool tensor [vocab, vocab]: row = task token, True for that task's step tokens and END."""
        import torch

        mask = torch.zeros(self.size, self.size, dtype=torch.bool)
        for t, token in self.task_token.items():
            mask[token, [self.step_token[(t, s)] for s in self.tasks[t]] + [self.END_ID]] = True
        return mask


def build_network(vocab_size: int, dim: int = 64, layers: int = 2, heads: int = 4, max_len: int = 32,
                  dropout: float = 0.1):
    """The causal transformer: token + position embeddings, pre-norm encoder layers, tied output."""
    import torch
    from torch import nn

    class ScriptTransformer(nn.Module):
        def __init__(self):
            super().__init__()
            self.max_len = max_len
            self.embed = nn.Embedding(vocab_size, dim, padding_idx=ScriptVocab.PAD_ID)
            self.position = nn.Embedding(max_len, dim)
            layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)

        def forward(self, tokens: torch.Tensor) -> torch.Tensor:
            """tokens [B, L] (padding after the sequence) -> logits [B, L, vocab] for the next token."""
            length = tokens.shape[1]
            x = self.embed(tokens) + self.position(torch.arange(length, device=tokens.device))
            causal = nn.Transformer.generate_square_subsequent_mask(length, device=tokens.device)
            h = self.norm(self.encoder(x, mask=causal, is_causal=True))
            return h @ self.embed.weight.T

    return ScriptTransformer()


def masked_logits(logits, tokens, allowed):
    """Logits restricted to the task's steps and END (the task token is tokens[:, 0]), less the step
    just done: sequences have their consecutive repeats merged."""
    from torch.nn.functional import one_hot

    banned = ~allowed[tokens[:, 0]][:, None, :] | one_hot(tokens, logits.shape[-1]).bool()
    return logits.masked_fill(banned, float("-inf"))


class ScriptModel:
    """The trained transformer as a next-step model (see the module docstring)."""

    def __init__(self, net, vocab: ScriptVocab, config: dict, info: dict | None = None):
        import torch

        self.net = net.eval()
        self.vocab = vocab
        self.config = config  # build_network's options
        self.info = info or {}  # a loaded model's config.json (domain, training data, ...)
        self.allowed = vocab.allowed()
        self.torch = torch

    def predict(self, task_id: str, prefixes: list[list]) -> list[dict]:
        torch = self.torch
        keep = self.net.max_len - 1  # the task token takes one position; long prefixes keep their latest steps
        rows = [self.vocab.encode(task_id, p[max(0, len(p) - keep):]) for p in prefixes]
        tokens = torch.zeros(len(rows), max(map(len, rows)), dtype=torch.long)
        for i, r in enumerate(rows):
            tokens[i, : len(r)] = torch.tensor(r)
        with torch.no_grad():
            logits = masked_logits(self.net(tokens), tokens, self.allowed)
            last = logits[torch.arange(len(rows)), torch.tensor([len(r) - 1 for r in rows])]
            probs = last.softmax(-1).numpy()
        options = [*self.vocab.tasks[task_id], END]
        ids = [self.vocab.step_token[(task_id, s)] for s in self.vocab.tasks[task_id]] + [ScriptVocab.END_ID]
        return [dict(zip(options, p[ids].astype(float))) for p in probs]

    def model_graph(self, task_id: str, width: int = 16, tolerance: float = 0.2):
        """The graph script of a task from the model's beams (see beams_graph)."""
        return beams_graph(self, task_id, self.vocab.texts[task_id], width, tolerance)

    def save_pretrained(self, folder, domain: str, **info) -> Path:
        """A procvid model folder (procvid.checkpoint); the vocabulary goes into config.json."""
        return save_script_model(folder, self.net, self.vocab, self.config, domain, **info)

    @classmethod
    def from_pretrained(cls, folder) -> ScriptModel:
        """The model of a folder written by save_pretrained or `procvid train script`; only JSON and
        safetensors are read. Its whole config.json is `info`."""
        from procvid.checkpoint import load_module

        net = load_module(folder, KIND, lambda c: build_network(ScriptVocab.from_dict(c["vocab"]).size,
                                                                **c["architecture"]))
        return cls(net, ScriptVocab.from_dict(net.info["vocab"]), net.info["architecture"], net.info)


def save_script_model(folder, net, vocab: ScriptVocab, config: dict, domain: str, **info) -> Path:
    """The network (`config`: build_network's options) and vocabulary as a procvid model folder."""
    from procvid.checkpoint import save_pretrained

    return save_pretrained(folder, net.state_dict(), {"kind": KIND, "domain": domain, "architecture": config,
                                                      "vocab": vocab.to_dict(), **info})
