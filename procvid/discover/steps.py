"""STEPs-style discovery (`steps`): a light temporal network, trained self-supervised across a task's
videos (`procvid train discover`, procvid.train.discover), re-embeds each video's frames; the
order-aware clustering of procvid.discover.cluster then runs on the re-embedded segments.

The network (TemporalEmbedder): a linear projection of the frozen frame features, residual blocks
of dilated temporal convolutions (non-causal: discovery sees whole videos), a linear head, and
L2-normalised outputs. It is trained with a bootstrapped multi-cue contrastive loss (STEPs, Shah et
al. 2023): positives of a frame are its temporal neighbours in its own video and its cycle-consistent
nearest neighbours in the other videos of the batch (same task), found in a mix of the input
features and the current embedding (procvid.train.discover.multi_cue_loss). The clustering sees the
learned embedding next to `input_weight` x the L2-normalised input features (1.0, chosen on the seed-3
tuning world: the learned embedding alone scored lower there; checkpoints/procvid-discover/MODEL_CARD.md).

Prototypes stay in the input feature space (mean input feature of each step's segments), so key
frames and step names work as with the other methods.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from procvid.checkpoint import Pretrained
from procvid.discover.base import Discovery, VideoUnits, prototypes_of, segment_table
from procvid.discover.cluster import OrderKMeans
from procvid.errors import ProcvidError
from procvid.paths import CHECKPOINTS_DIR
from procvid.registry import DISCOVERERS

DEFAULT_MODEL = CHECKPOINTS_DIR / "procvid-discover"
KIND = "discover-temporal"
DESCRIPTION = ("STEPs-style: a temporal network trained self-supervised across videos (procvid train discover) "
               "re-embeds the frames, then order-kmeans")


class Block(nn.Module):
    """A residual dilated temporal convolution (centred), GELU, LayerNorm."""

    def __init__(self, hidden: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(hidden, hidden, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, h, mask):  # h [B, T, H], mask [B, T, 1]: padding is zeroed so it leaks into no frame
        y = self.conv((h * mask).transpose(1, 2)).transpose(1, 2)
        return h + self.drop(F.gelu(self.norm(y)))


class TemporalEmbedder(nn.Module, Pretrained):
    """Frame features [B, T, in_dim] (+ bool mask [B, T]) -> L2-normalised embeddings [B, T, dim]
    (zeros at padding). Receptive field 1 + (kernel - 1) * (2 ** layers - 1) frames."""

    KIND = KIND

    def __init__(self, in_dim: int, dim: int = 32, hidden: int = 128, layers: int = 3, kernel: int = 3,
                 dropout: float = 0.1):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("kernel must be odd (centred convolutions)")
        self.config = {"in_dim": in_dim, "dim": dim, "hidden": hidden, "layers": layers, "kernel": kernel,
                       "dropout": dropout}
        self.inp = nn.Linear(in_dim, hidden)
        self.blocks = nn.ModuleList(Block(hidden, kernel, 2 ** i, dropout) for i in range(layers))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x, mask=None):
        if mask is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        m = mask[..., None].to(x.dtype)
        h = self.inp(x)
        for block in self.blocks:
            h = block(h, m)
        return F.normalize(self.out(h), dim=-1) * m


@lru_cache(maxsize=4)
def load_model(path: str):
    """The TemporalEmbedder of a model folder, in eval mode (cached per path)."""
    return TemporalEmbedder.from_pretrained(path).eval()


def embed(model, X: np.ndarray) -> np.ndarray:
    """One video's frame features T x D -> its learned embeddings T x dim (float64)."""
    if np.shape(X)[1] != model.config["in_dim"]:
        raise ProcvidError(f"the discover model takes {model.config['in_dim']}-d features "
                           f"({model.info.get('encoder', 'unknown encoder')}); these are {np.shape(X)[1]}-d: "
                           "train one on features of this encoder (procvid train discover)")
    with torch.no_grad():
        z = model(torch.as_tensor(np.asarray(X, dtype=np.float32))[None])[0]
    return z.numpy().astype(np.float64)


@DISCOVERERS.register("steps", DESCRIPTION)
@dataclass
class StepsDiscoverer(OrderKMeans):
    """The learned temporal module's embeddings (concatenated with `input_weight` x the input features),
    clustered by order-kmeans with these parameters."""

    model: str = str(DEFAULT_MODEL)
    input_weight: float = 1.0  # these three tuned on the seed-3 world (tools/bench_discover.py --tune)
    position_weight: float = 1.0
    background_runs: float = 1.5

    name = "steps"

    def __post_init__(self):
        from procvid.checkpoint import read_config

        read_config(self.model, KIND)  # a missing or foreign folder: one line before any work

    def discover(self, videos: list[VideoUnits], num_steps: int | None = None) -> Discovery:
        net = load_model(str(self.model))
        learned = []
        for v in videos:
            Z = embed(net, v.X)
            if self.input_weight:
                X = np.asarray(v.X, dtype=np.float64)
                Z = np.hstack([Z, self.input_weight * X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)])
            learned.append(VideoUnits(v.stem, Z, v.units))
        result = super().discover(learned, num_steps)
        emb, _, vid, share = segment_table(videos)  # prototypes in the input feature space (key frames, names)
        labels = np.concatenate(result.labels) if result.labels else np.zeros(0, dtype=np.int64)
        result.prototypes = prototypes_of(emb, labels, result.num_steps, share)
        return result
