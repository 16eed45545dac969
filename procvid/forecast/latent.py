"""The latent forecaster (VEDIT-style): from the frozen clip-level features of a video up to a time
`until`, the embedding of the next step, read out as the nearest step.

Context. The observed frames (timestamp < until) are averaged per WINDOW seconds into at most
MAX_TOKENS tokens (the latest ones), each with a sinusoidal embedding of its time; a CLS token (task
recognition) and a NOW token (the embedding of `until`) come first, so an empty context still predicts
the first step. A pre-norm transformer encoder reads them. For observation times inside a step
(architecture `recent`: the latest seconds of frames as single-frame tokens, so a step begun just
before `until` is not averaged into the previous one's window; `current_head`: a training-only
classifier of the step under way): together they helped at random times on the tuning world (model card).

Prediction. The target is the next step's embedding: the mean of its frames' features, L2-normalised,
then standardised per dimension with the training set's mean and std. A transformer decoder reads the
context and gives the prediction x1_hat; training adds to its squared error a contrastive term
(procvid.train.forecast: the prediction nearest its own step's prototype among the task's steps).
head="regression" (the shipped default): one learned query regresses x1 directly: one point.
head="flow": flow matching on the straight path x_s = (1 - s) x0 + s x1 (x0 ~ N(0, I)) in the
x1-prediction form: the decoder's query is x_s plus an embedding of the flow time s, and sampling
integrates the velocity (x1_hat - x_s) / (1 - s) with `flow_steps` Euler steps from several noises,
so the forecast can be multi-modal (two valid next steps); the readout's `noise` (< 1) starts them
nearer the modes. On the tuning world (seed 3) the regression head forecast the next step better
(top-1 at step ends 71.6 against 58.0 for flow at its best noise, 0; tools/bench_forecast.py
--tune), so it is the shipped one; flow stays as the iterative-denoising alternative.

Readout. Each sample is compared (cosine) with the candidate steps of the task: the prototypes (the
mean training target of each step; "prototype") or the step texts in the encoder's joint text space
("text"); the probability of a step is the mean over samples of softmax(cosine / temperature).
The task is the given one, else the task head's argmax.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from procvid.errors import ProcvidError

KIND = "latent-forecaster"
WINDOW = 2.0  # seconds of frames averaged into one context token
MAX_TOKENS = 64  # latest context tokens kept (128 s at WINDOW 2 s)
HEADS = ("regression", "flow")
READOUTS = ("prototype", "text")


def context_tokens(X: np.ndarray, t: np.ndarray, until: float, window: float = WINDOW,
                   max_tokens: int = MAX_TOKENS, recent: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [L, D], their mean times [L]) of the frames observed before `until` (module doc); the
    frames of the last `recent` seconds are tokens of their own, so that a step begun just before
    `until` is not averaged away into a window of the previous one."""
    X, t = np.asarray(X, dtype=np.float32), np.asarray(t, dtype=np.float64)
    keep = t < until
    if not keep.any():
        return np.zeros((0, X.shape[1]), np.float32), np.zeros(0, np.float32)
    X, t = X[keep], t[keep]
    bins = np.floor(t / window).astype(np.int64)
    fine = t >= until - recent
    if fine.any():  # ids after every window's: one token per recent frame
        bins = np.where(fine, bins.max() + 1 + np.cumsum(fine), bins)
    _, inverse = np.unique(bins, return_inverse=True)
    counts = np.bincount(inverse).astype(np.float64)
    sums = np.zeros((len(counts), X.shape[1]))
    np.add.at(sums, inverse, X)
    times = np.bincount(inverse, weights=t) / counts
    return (sums / counts[:, None]).astype(np.float32)[-max_tokens:], times.astype(np.float32)[-max_tokens:]


def step_embedding(X: np.ndarray, t: np.ndarray, start: float, end: float) -> np.ndarray | None:
    """The L2-normalised mean feature of the frames in [start, end) (the nearest frame if none), or None
    when the video has no frame."""
    X, t = np.asarray(X, dtype=np.float32), np.asarray(t)
    if not len(t):
        return None
    inside = (t >= start) & (t < end)
    v = X[inside].mean(0) if inside.any() else X[int(np.argmin(np.abs(t - start)))]
    return v / max(float(np.linalg.norm(v)), 1e-8)


def next_segment(segments: Sequence, until: float):
    """The first annotated segment (objects with .start) starting at or after `until`, or None."""
    return next((s for s in segments if s.start >= until), None)


def sinusoid(x, n: int, max_period: float):
    """[..., n] sin/cos features of x at periods from 1 to max_period (geometric)."""
    import torch

    freqs = torch.exp(-math.log(max_period) * torch.arange(n // 2, device=x.device) / (n // 2)) * 2 * math.pi
    angles = x[..., None].float() * freqs
    return torch.cat([angles.sin(), angles.cos()], -1)


def build_network(dim_in: int = 64, dim: int = 64, layers: int = 2, heads: int = 4, num_tasks: int = 1,
                  num_steps: int = 1, head: str = "regression", dropout: float = 0.1, window: float = WINDOW,
                  max_tokens: int = MAX_TOKENS, recent: float = 0.0, current_head: bool = False):
    """The forecaster network (module doc); buffers: the target standardisation and the step prototypes.
    recent: seconds of latest frames kept as single-frame tokens (context_tokens); current_head: a
    classifier of the step in progress at `until` from the NOW token (a training-only auxiliary task)."""
    import torch
    from torch import nn

    if head not in HEADS:
        raise ProcvidError(f"forecaster head must be one of {', '.join(HEADS)}, not {head!r}")

    class ForecastNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.head, self.window, self.max_tokens, self.recent = head, window, max_tokens, recent
            self.in_proj = nn.Linear(dim_in, dim)
            self.time_proj = nn.Linear(32, dim)
            self.special = nn.Parameter(torch.randn(2, dim) * 0.02)  # CLS, NOW
            layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.task_head = nn.Linear(dim, num_tasks)
            self.current_head = nn.Linear(dim, num_steps) if current_head else None
            self.query = nn.Parameter(torch.randn(1, dim) * 0.02)
            self.x_proj = nn.Linear(dim_in, dim)
            self.s_proj = nn.Linear(32, dim)
            dec = nn.TransformerDecoderLayer(dim, heads, 4 * dim, dropout, batch_first=True, norm_first=True)
            self.decoder = nn.TransformerDecoder(dec, layers)
            self.out = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim_in))
            self.register_buffer("mean", torch.zeros(dim_in))
            self.register_buffer("std", torch.ones(dim_in))
            self.register_buffer("prototypes", torch.zeros(num_steps, dim_in))

        def encode(self, tokens, times, pad, until):
            """tokens [B, L, D], times [B, L], pad [B, L] (True = padding), until [B] ->
            (memory [B, L + 2, dim], its padding mask, task logits [B, num_tasks])."""
            B = tokens.shape[0]
            x = self.in_proj(tokens) + self.time_proj(sinusoid(times, 32, 1000.0))
            now = self.special[1] + self.time_proj(sinusoid(until, 32, 1000.0))
            x = torch.cat([self.special[0].expand(B, 1, -1), now[:, None], x], 1)
            mask = torch.cat([torch.zeros(B, 2, dtype=torch.bool, device=pad.device), pad], 1)
            memory = self.norm(self.encoder(x, src_key_padding_mask=mask))
            return memory, mask, self.task_head(memory[:, 0])

        def decode(self, memory, mask, x=None, s=None):
            """The target x1 predicted from (x [B, D], s [B]) (flow) or from the context alone (regression)."""
            if self.head == "flow":
                q = self.x_proj(x) + self.s_proj(sinusoid(s * 1000.0, 32, 10000.0))
            else:
                q = self.query.expand(memory.shape[0], -1)
            return self.out(self.decoder(q[:, None], memory, memory_key_padding_mask=mask)[:, 0])

        def sample(self, memory, mask, n: int, steps: int, generator=None, noise: float = 1.0):
            """[B, n, D] standardised samples of the target (n copies of the regression output); noise
            scales the starting noise (1: the trained distribution, < 1: samples nearer its modes)."""
            B, D = memory.shape[0], self.mean.shape[0]
            if self.head == "regression":
                return self.decode(memory, mask)[:, None].expand(B, n, D)
            memory, mask = memory.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)
            x = torch.randn(B * n, D, generator=generator, device=memory.device) * noise
            for i in range(steps):  # Euler steps along the straight path; the last one lands on x1_hat
                s = torch.full((B * n,), i / steps, device=memory.device)
                x = x + (self.decode(memory, mask, x, s) - x) / (steps - i)
            return x.view(B, n, D)

    return ForecastNet()


def collate_contexts(contexts: list[tuple[np.ndarray, np.ndarray]], untils: Sequence[float]):
    """(tokens [B, L, D], times [B, L], pad [B, L], until [B]) tensors of context_tokens outputs."""
    import torch

    B, L = len(contexts), max([len(c[0]) for c in contexts] + [1])
    D = next((c[0].shape[1] for c in contexts), 1)
    tokens, times = torch.zeros(B, L, D), torch.zeros(B, L)
    pad = torch.ones(B, L, dtype=torch.bool)
    for i, (tok, tim) in enumerate(contexts):
        tokens[i, : len(tok)] = torch.from_numpy(np.asarray(tok))
        times[i, : len(tim)] = torch.from_numpy(np.asarray(tim))
        pad[i, : len(tok)] = False
    return tokens, times, pad, torch.tensor(np.asarray(untils, dtype=np.float32))


class LatentForecaster:
    """A trained forecaster with its readout (module doc). info: its config.json (vocabulary in the
    procvid.graph.script_model.ScriptVocab format, encoder id, readout settings)."""

    def __init__(self, net, info: dict):
        import torch

        from procvid.graph.script_model import ScriptVocab

        self.net = net.eval()
        self.info = info
        self.vocab = ScriptVocab.from_dict(info["vocab"])
        self.task_ids = list(self.vocab.tasks)
        rows = [(t, s) for t in self.task_ids for s in self.vocab.tasks[t]]
        self.rows = {t: [i for i, (u, _) in enumerate(rows) if u == t] for t in self.task_ids}
        readout = info.get("readout", {})
        self.temperature = float(readout.get("temperature", 0.05))
        self.samples = int(readout.get("samples", 16))
        self.flow_steps = int(readout.get("flow_steps", 10))
        self.noise = float(readout.get("noise", 1.0))
        if info["architecture"].get("head") == "regression":
            self.samples = 1  # one point: more samples would be copies
        self.torch = torch
        self.folder = None  # the model folder it was loaded from

    @property
    def encoder(self) -> str | None:
        """The id of the encoder whose features it was trained on."""
        return self.info.get("encoder")

    @classmethod
    def from_pretrained(cls, folder) -> LatentForecaster:
        from procvid.checkpoint import load_module

        net = load_module(folder, KIND, lambda c: build_network(**c["architecture"]))
        forecaster = cls(net, net.info)
        forecaster.folder = Path(folder)
        return forecaster

    def _encode(self, videos: list[tuple], untils: Sequence[float]):
        arch = self.info["architecture"]
        contexts = [context_tokens(X, t, u, arch.get("window", WINDOW), arch.get("max_tokens", MAX_TOKENS),
                                   arch.get("recent", 0.0))
                    for (X, t), u in zip(videos, untils)]
        return self.net.encode(*collate_contexts(contexts, untils))

    def recognize(self, videos: list[tuple], untils: Sequence[float]) -> list[dict]:
        """{task id: probability} for each (features X, timestamps t) observed before its `until`."""
        with self.torch.no_grad():
            probs = self._encode(videos, untils)[2].softmax(-1).numpy()
        return [dict(zip(self.task_ids, p.astype(float))) for p in probs]

    def predict(self, videos: list[tuple], untils: Sequence[float], tasks: Sequence[str | None] | None = None,
                readout: str = "prototype", texts: dict | None = None, seed: int = 0) -> list[dict]:
        """{step id: probability} over the task's steps for each video observed before its `until`.
        tasks: each video's task (None: recognised); texts: {task id: [K, D] step-text embeddings in
        the vocabulary's step order}, needed for readout "text"."""
        torch = self.torch
        if readout not in READOUTS:
            raise ProcvidError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
        tasks = list(tasks) if tasks is not None else [None] * len(videos)
        for task in tasks:
            if task is not None and task not in self.vocab.tasks:
                raise ProcvidError(f"the forecaster does not know task {task!r} (it knows "
                                   f"{', '.join(self.task_ids)})")
        out = []
        with torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            memory, mask, logits = self._encode(videos, untils)
            samples = self.net.sample(memory, mask, self.samples, self.flow_steps, generator, self.noise)
            samples = torch.nn.functional.normalize(samples * self.net.std + self.net.mean, dim=-1)
            for i, task in enumerate(tasks):
                task = task or self.task_ids[int(logits[i].argmax())]
                if readout == "text":
                    if texts is None or task not in texts:
                        raise ProcvidError(f"readout text needs the step-text embeddings of task {task}")
                    cands = torch.as_tensor(np.asarray(texts[task], dtype=np.float32))
                else:
                    cands = self.net.prototypes[self.rows[task]]
                cands = torch.nn.functional.normalize(cands, dim=-1)
                p = ((samples[i] @ cands.T) / self.temperature).softmax(-1).mean(0).numpy()
                out.append(dict(zip(self.vocab.tasks[task], p.astype(float))))
        return out


def save_forecaster(folder, net, vocab, architecture: dict, domain: str, **info):
    """The network and its vocabulary (ScriptVocab) as a procvid model folder."""
    from procvid.checkpoint import save_pretrained

    return save_pretrained(folder, net.state_dict(), {"kind": KIND, "domain": domain, "architecture": architecture,
                                                      "vocab": vocab.to_dict(), **info})
