"""Self-supervised training of the STEPs-style temporal module of `procvid discover --method steps`
(procvid.discover.steps.TemporalEmbedder) on unlabeled videos grouped by task."""

from __future__ import annotations

import math
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from procvid.discover.steps import TemporalEmbedder
from procvid.errors import ProcvidError
from procvid.registry import MODELS
from procvid.train.sbd import EmbeddingChunksDataModule
from procvid.train.schedule import first_setup, warmup_cosine
from procvid.train.world import validation_mask


def pad(videos: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Frame features of several videos -> ([B, T_max, D] zero-padded, bool mask [B, T_max])."""
    T = max(len(v) for v in videos)
    x = torch.zeros(len(videos), T, videos[0].shape[1])
    mask = torch.zeros(len(videos), T, dtype=torch.bool)
    for i, v in enumerate(videos):
        x[i, : len(v)] = torch.from_numpy(np.asarray(v, dtype=np.float32))
        mask[i, : len(v)] = True
    return x, mask


class TaskBatches(Dataset):
    """Each item is one batch: up to `per_batch` videos of one task drawn at random (tasks drawn in
    proportion to their videos), as (features [B, T, D], mask [B, T]). `length` items per epoch."""

    def __init__(self, groups: dict[str, list[np.ndarray]], per_batch: int, length: int, seed: int):
        self.groups = [g for g in groups.values() if len(g) >= 2]  # cross-video cues need two videos
        if not self.groups:
            raise ProcvidError("no task has two or more videos: the discover module learns across a task's videos")
        self.per_batch, self.length = per_batch, length
        self.weights = np.array([len(g) for g in self.groups], dtype=float) / sum(map(len, self.groups))
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        group = self.groups[self.rng.choice(len(self.groups), p=self.weights)]
        pick = self.rng.choice(len(group), min(self.per_batch, len(group)), replace=False)
        return pad([group[j] for j in pick])


class TaskVideosDataModule(EmbeddingChunksDataModule):
    """Whole videos' frame features from a feature folder (procvid embed's output), grouped by task
    (the `<task>_` prefix of each file name, as `procvid discover` groups them), split into train / val
    by video. No step labels are read. A `world` is generated and embedded first when given, as for
    the sbd data module. Validation: one fixed batch of up to `per_batch` held-out videos per task."""

    def __init__(self, features: str = "datasets/synth/forecast_train_seed11_features_video",
                 world: str | None = None, num_videos: int = 240, world_seed: int = 11, encoder: str = "video",
                 fps: float = 2.0, per_batch: int = 8, batches_per_epoch: int = 100, val_fraction: float = 0.1,
                 num_workers: int = 0, seed: int = 0):
        L.LightningDataModule.__init__(self)
        self.save_hyperparameters()

    def setup(self, stage=None):
        from procvid.discover.stage import task_from_name

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        sidecars, videos = self._load_videos()  # load_features gives float32 already
        tasks = [task_from_name(p.stem) for p in sidecars]
        is_val = validation_mask(len(videos), hp.val_fraction, hp.seed)
        train, val = {}, {}
        for v, t, held in zip(videos, tasks, is_val):
            (val if held else train).setdefault(t, []).append(v)
        self.train_set = TaskBatches(train, hp.per_batch, hp.batches_per_epoch, hp.seed)
        self.val_set = [pad(g[: hp.per_batch]) for g in (val or train).values() if len(g) >= 2] or \
            [pad(g[: hp.per_batch]) for g in train.values() if len(g) >= 2]
        self.num_videos = len(videos)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=None, shuffle=False, num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=None)


def positives(z: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, window: int = 3, cycle: int = 2,
              bootstrap: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """The positives of every frame of a batch of one task's videos, as a bool matrix [B*T, B*T]
    (frames flattened video by video), and [B*T, B]: which other videos gave a cross-video positive.

    z: embeddings [B, T, E] (L2-normalised), x: input features [B, T, D], mask [B, T].
    Cues: (1) temporal proximity: the frames of the same video within `window` frames; (2) cross-video
    alignment: in every other video, the nearest frame under the affinity (1 - bootstrap) * cos(input
    features) + bootstrap * cos(current embedding), kept only when cycle-consistent (its nearest frame
    back in the anchor's video lies within `cycle` frames of the anchor), with its frames within `window`."""
    B, T, _ = z.shape
    valid = mask.reshape(-1)
    zf = F.normalize(z.detach().reshape(B * T, -1), dim=-1)
    xn = F.normalize(x.reshape(B * T, -1), dim=-1)
    vid = torch.arange(B, device=z.device).repeat_interleave(T)
    t = torch.arange(T, device=z.device).repeat(B)
    A = (1 - bootstrap) * (xn @ xn.T) + bootstrap * (zf @ zf.T)
    A = A.masked_fill(~valid[None, :], -math.inf)
    nearest = A.view(B * T, B, T).argmax(-1)  # [N, B]: the nearest frame of each video
    j = nearest + torch.arange(B, device=z.device)[None, :] * T  # its flat index
    back = nearest[j, vid[:, None]]  # from there, the nearest frame in the anchor's own video
    keep = ((back - t[:, None]).abs() <= cycle) & (torch.arange(B, device=z.device)[None, :] != vid[:, None])
    keep &= valid[:, None]
    pos = torch.zeros(B * T, B * T, dtype=torch.bool, device=z.device)
    near = (vid[:, None] == vid[None, :]) & ((t[:, None] - t[None, :]).abs() <= window)
    # a kept partner brings its own temporal neighbours: a step spans many frames in every video, and
    # leaving them as negatives would push apart the frames of one step across videos
    rows = torch.arange(B * T, device=z.device)[:, None].expand(-1, B)
    pos[rows[keep], j[keep]] = True
    spread = F.max_pool1d(pos.view(B * T, B, T).float(), 2 * window + 1, stride=1, padding=window)
    pos = spread.view(B * T, B * T) > 0
    pos |= near
    pos.fill_diagonal_(False)
    pos &= valid[:, None] & valid[None, :]
    return pos, keep


def multi_cue_loss(z: torch.Tensor, x: torch.Tensor, mask: torch.Tensor, tau: float = 0.1, window: int = 3,
                   cycle: int = 2, bootstrap: float = 0.5) -> tuple[torch.Tensor, dict]:
    """Bootstrapped multi-cue contrastive loss (SupCon form; STEPs) over every frame of a batch of one
    task's videos: each frame is pulled towards its positives (see `positives`) and pushed from every
    other frame of the batch. Returns (loss, {"cross_pos": share of other videos giving a positive})."""
    B, T, _ = z.shape
    valid = mask.reshape(-1)
    with torch.no_grad():
        pos, keep = positives(z, x, mask, window, cycle, bootstrap)
        has = pos.any(1)
    zf = z.reshape(B * T, -1)
    logits = (zf @ zf.T) / tau
    logits = logits.masked_fill(~valid[None, :], -math.inf).masked_fill(
        torch.eye(B * T, dtype=torch.bool, device=z.device), -math.inf)
    logp = logits.log_softmax(1)
    loss = (-(logp.masked_fill(~pos, 0).sum(1)) / pos.sum(1).clamp(min=1))[has].mean()
    return loss, {"cross_pos": keep.sum(1).float()[valid].mean() / max(B - 1, 1)}


class DiscoverModule(L.LightningModule):
    """Trains the TemporalEmbedder with multi_cue_loss. `bootstrap` (the weight of the current embedding in
    the affinity that finds cross-video positives) rises from 0 to its value over `warmup_steps`: at first
    the input features alone choose them. When fitting ends, `export_dir` receives the model folder
    (procvid.checkpoint), which `procvid discover --method steps --model DIR` reads."""

    def __init__(self, dim: int = 32, hidden: int = 128, layers: int = 3, kernel: int = 3, dropout: float = 0.1,
                 tau: float = 0.1, window: int = 3, cycle: int = 2, bootstrap: float = 0.5, lr: float = 1e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 100, num_threads: int | None = 1,
                 export_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = None

    def setup(self, stage=None):
        if not first_setup(self):
            return
        hp = self.hparams
        self.net = TemporalEmbedder(self.trainer.datamodule.dim, hp.dim, hp.hidden, hp.layers, hp.kernel, hp.dropout)

    def _beta(self) -> float:
        warm = max(1, self.hparams.warmup_steps)
        return self.hparams.bootstrap * min(1.0, self.global_step / warm)

    def _loss(self, batch, beta):
        x, mask = batch
        hp = self.hparams
        return multi_cue_loss(self.net(x, mask), x, mask, hp.tau, hp.window, hp.cycle, beta)

    def training_step(self, batch, batch_idx):
        loss, stats = self._loss(batch, self._beta())
        self.log_dict({"train/loss": loss, "train/cross_pos": stats["cross_pos"]}, prog_bar=True, batch_size=1)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, stats = self._loss(batch, self.hparams.bootstrap)
        self.log_dict({"val/loss": loss, "val/cross_pos": stats["cross_pos"]}, prog_bar=True, batch_size=1)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches)

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            from procvid.checkpoint import data_domain

            dm = self.trainer.datamodule
            source = dm.hparams.world or str(Path(dm.hparams.features)).removesuffix(f"_features_{dm.hparams.encoder}")
            self.net.eval()
            self.net.save_pretrained(self.hparams.export_dir, data_domain(source), encoder=dm.encoder,
                                     sampling=dm.sampling, features=str(dm.hparams.features), videos=dm.num_videos,
                                     loss={k: self.hparams[k] for k in ("tau", "window", "cycle", "bootstrap")})


MODELS.register("discover", "STEPs-style temporal module for step discovery: multi-cue contrastive, no labels",
                (DiscoverModule, TaskVideosDataModule))
