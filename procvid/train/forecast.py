"""Training of the latent forecaster (procvid.forecast.latent): the next step's embedding from the
frozen features of a video up to a time, on a synthetic world's annotated videos."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from procvid.forecast.latent import (MAX_TOKENS, WINDOW, build_network, collate_contexts, context_tokens,
                                     next_segment, save_forecaster, step_embedding)
from procvid.registry import MODELS
from procvid.train.schedule import first_setup, warmup_cosine
from procvid.train.world import validation_mask


@dataclass
class ForecastVideo:
    X: np.ndarray  # frames x D features
    t: np.ndarray  # timestamps (s)
    segments: list  # annotated StepSegments, in time order
    task: int  # task index in the vocabulary
    rows: list  # prototype row of each segment's step
    targets: np.ndarray  # segments x D: each segment's L2-normalised mean feature


def load_videos(dataset, features: Path, vocab) -> list[ForecastVideo]:
    """The dataset's annotated videos with their features (<features>/<video id>.json); videos without
    features are an error, so a half-embedded world is not trained on silently."""
    from procvid.errors import ProcvidError
    from procvid.features import find_entry, load_features

    tasks = list(vocab.tasks)
    row = {(t, s): i for i, (t, s) in enumerate((t, s) for t in tasks for s in vocab.tasks[t])}
    out = []
    for v in dataset.videos:
        if not v.segments:
            continue
        path = find_entry(features, v.video_id)
        if path is None:
            raise ProcvidError(f"{features}: no features for video {v.video_id} (embed the world first)")
        X, t, _ = load_features(path)
        segs = sorted(v.segments, key=lambda s: s.start)
        targets = np.stack([step_embedding(X, t, s.start, s.end) for s in segs])
        out.append(ForecastVideo(np.asarray(X, np.float32), np.asarray(t), segs, tasks.index(v.task_id),
                                 [row[(v.task_id, s.step_id)] for s in segs], targets))
    return out


def sample_until(video: ForecastVideo, rng: np.random.Generator, step_end_share: float) -> float:
    """An observation time with a next step: the end of a step (not the last) or a uniform time."""
    segs = video.segments
    if len(segs) > 1 and rng.random() < step_end_share:
        return float(segs[rng.integers(len(segs) - 1)].end)
    return float(rng.uniform(0.0, segs[-1].start))


def example(video: ForecastVideo, until: float, window: float = WINDOW, max_tokens: int = MAX_TOKENS,
            recent: float = 0.0):
    """(tokens, times, until, next step's target, task, next step's row, row of the step begun last before
    `until`, -100 when none: the current-step head's label)."""
    seg = next_segment(video.segments, until)
    k = video.segments.index(seg)
    tokens, times = context_tokens(video.X, video.t, until, window, max_tokens, recent)
    return tokens, times, until, video.targets[k], video.task, video.rows[k], video.rows[k - 1] if k else -100


class _RandomExamples(Dataset):
    """samples_per_video random observation times per video and epoch (numpy's global generator, which
    seed_everything seeds)."""

    def __init__(self, videos, samples_per_video: int, step_end_share: float, recent: float = 0.0):
        self.videos, self.n, self.share, self.recent = videos, samples_per_video, step_end_share, recent

    def __len__(self):
        return len(self.videos) * self.n

    def __getitem__(self, i):
        video = self.videos[i % len(self.videos)]
        rng = np.random.default_rng(np.random.randint(2 ** 31))
        return example(video, sample_until(video, rng, self.share), recent=self.recent)


def collate(items):
    tokens, times, pad, until = collate_contexts([(a, b) for a, b, *_ in items], [u for _, _, u, *_ in items])
    return (tokens, times, pad, until, torch.from_numpy(np.stack([x[3] for x in items])).float(),
            torch.tensor([x[4] for x in items]), torch.tensor([x[5] for x in items]),
            torch.tensor([x[6] for x in items]))


class ForecastDataModule(L.LightningDataModule):
    """Observation times and next steps from a synthetic world's annotated videos and their features.

    world: the world folder (generated with num_videos / world_seed if missing); features: its feature
    cache (default <world>_features_<encoder>, embedded at `fps` if missing). val_fraction of the
    videos (seed) are held out for validation: their step ends plus two random times each, fixed.
    Training draws samples_per_video observation times per video and epoch: a step end with
    probability step_end_share, else a uniform time before the last step starts. recent: seconds of
    latest frames given as single-frame tokens (procvid.forecast.latent.context_tokens); part of the
    model's architecture.
    """

    def __init__(self, world: str = "datasets/synth/forecast_train_seed11", features: str | None = None,
                 num_videos: int = 240, world_seed: int = 11, encoder: str = "video", fps: float = 2.0,
                 val_fraction: float = 0.1, samples_per_video: int = 8, step_end_share: float = 0.5,
                 batch_size: int = 64, num_workers: int = 0, seed: int = 0, recent: float = 0.0):
        super().__init__()
        self.save_hyperparameters()

    @property
    def features_dir(self) -> Path:
        hp = self.hparams
        return Path(hp.features or f"{hp.world}_features_{hp.encoder}")

    def prepare_data(self):
        from procvid.data.synthetic import ensure_world
        from procvid.embedding import embed_videos
        from procvid.encoders import load_encoder
        from procvid.features import entry_key, find_entry
        from procvid.video import Sampling, find_videos

        hp = self.hparams
        ensure_world(hp.world, hp.num_videos, hp.world_seed, progress=False)
        videos = find_videos([Path(hp.world) / "videos"])
        # only when some are missing: embedding takes the folder's lock, which readers need not wait for
        if any(find_entry(self.features_dir, entry_key(rel)) is None for _, rel in videos):
            embed_videos(videos, self.features_dir, load_encoder(hp.encoder), Sampling(fps=hp.fps), progress=False)

    def setup(self, stage=None):
        from procvid.data import load_dataset
        from procvid.features import find_entry, read_sidecar
        from procvid.graph.script_model import ScriptVocab

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        dataset = load_dataset(hp.world)
        self.vocab = ScriptVocab.from_dataset(dataset)
        videos = load_videos(dataset, self.features_dir, self.vocab)
        first = dataset.videos[0].video_id
        entry = find_entry(self.features_dir, first)
        self.encoder_id = ((read_sidecar(entry) if entry is not None else None) or {}).get("encoder")
        is_val = validation_mask(len(videos), hp.val_fraction, hp.seed)
        train = [v for v, val in zip(videos, is_val) if not val]
        val = [v for v, val in zip(videos, is_val) if val] or train
        self.dim_in = videos[0].X.shape[1]
        self.num_steps = sum(map(len, self.vocab.tasks.values()))
        # prototypes: mean training target per step; standardisation of the targets
        targets = np.concatenate([v.targets for v in train])
        rows = np.concatenate([v.rows for v in train])
        protos = np.zeros((self.num_steps, self.dim_in), np.float32)
        for r in np.unique(rows):
            m = targets[rows == r].mean(0)
            protos[r] = m / max(float(np.linalg.norm(m)), 1e-8)
        self.prototypes, self.mean, self.std = protos, targets.mean(0), targets.std(0) + 1e-3
        self.train_set = _RandomExamples(train, hp.samples_per_video, hp.step_end_share, hp.recent)
        rng = np.random.default_rng(hp.seed)
        self.val_set = [example(v, u, recent=hp.recent) for v in val
                        for u in [float(s.end) for s in v.segments[:-1]] + [sample_until(v, rng, 0.0) for _ in range(2)]]
        self.num_train_videos = len(train)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=True,
                          collate_fn=collate, num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256, collate_fn=collate, num_workers=self.hparams.num_workers)


class ForecastModule(L.LightningModule):
    """The latent forecaster: regression (head "regression", the default) or flow matching (head
    "flow") of the standardised next-step embedding, plus cross-entropy of the task head weighted
    by task_weight and, weighted by contrast_weight, cross-entropy of the predicted embedding's cosines
    to the task's step prototypes (over contrast_temperature), so that the prediction lands nearest the
    right prototype and not only near it in squared error. With current_weight > 0 a current-step head
    on the NOW token learns, weighted by it, which of the task's steps was begun last before the time
    (cross-entropy; none before the first step), so that the context says whether a step is under way
    and which. Validation logs the loss, task accuracy and next-step top-1 with the prototype
    readout (val/top1). When fitting ends, `export_dir` receives the model folder (procvid.checkpoint)
    with the vocabulary, the features' encoder id and the readout settings (temperature, samples,
    flow_steps)."""

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4, dropout: float = 0.1, head: str = "regression",
                 task_weight: float = 0.2, contrast_weight: float = 1.0, contrast_temperature: float = 0.1,
                 lr: float = 2e-3, weight_decay: float = 0.01, warmup_steps: int = 50,
                 current_weight: float = 0.0, temperature: float = 0.05, samples: int = 16, flow_steps: int = 10,
                 num_threads: int | None = 1,
                 export_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = None

    def setup(self, stage=None):
        if not first_setup(self):
            return
        dm = self.trainer.datamodule
        hp = self.hparams
        self.architecture = {"dim_in": dm.dim_in, "dim": hp.dim, "layers": hp.layers, "heads": hp.heads,
                             "num_tasks": len(dm.vocab.tasks), "num_steps": dm.num_steps, "head": hp.head,
                             "dropout": hp.dropout, "window": WINDOW, "max_tokens": MAX_TOKENS,
                             "recent": float(dm.hparams.recent), "current_head": bool(hp.current_weight)}
        self.net = build_network(**self.architecture)
        self.net.mean.copy_(torch.from_numpy(dm.mean))
        self.net.std.copy_(torch.from_numpy(dm.std))
        self.net.prototypes.copy_(torch.from_numpy(dm.prototypes))
        rows = [i for t in dm.vocab.tasks for i in [t] * len(dm.vocab.tasks[t])]
        self.register_buffer("row_task", torch.tensor([list(dm.vocab.tasks).index(t) for t in rows]),
                             persistent=False)

    def _loss(self, batch):
        tokens, times, pad, until, target, task, row, current = batch
        hp = self.hparams
        memory, mask, logits = self.net.encode(tokens, times, pad, until)
        x1 = (target - self.net.mean) / self.net.std
        if hp.head == "flow":
            x0 = torch.randn_like(x1)
            s = torch.rand(len(x1), device=x1.device)
            xs = (1 - s[:, None]) * x0 + s[:, None] * x1
            x1_hat = self.net.decode(memory, mask, xs, s)  # x1-prediction (procvid.forecast.latent)
        else:
            x1_hat = self.net.decode(memory, mask)
        pred = F.mse_loss(x1_hat, x1)
        loss = pred + hp.task_weight * F.cross_entropy(logits, task)
        if hp.contrast_weight:  # the predicted embedding nearer its step's prototype than the task's other steps'
            emb = F.normalize(x1_hat * self.net.std + self.net.mean, dim=-1)
            sims = emb @ F.normalize(self.net.prototypes, dim=-1).T / hp.contrast_temperature
            sims = sims.masked_fill(self.row_task[None] != task[:, None], float("-inf"))
            loss = loss + hp.contrast_weight * F.cross_entropy(sims, row)
        if hp.current_weight and (current >= 0).any():  # which step is in progress, read from the NOW token
            cur = self.net.current_head(memory[:, 1]).masked_fill(self.row_task[None] != task[:, None], float("-inf"))
            loss = loss + hp.current_weight * F.cross_entropy(cur[current >= 0], current[current >= 0])
        return loss, pred, (logits.argmax(-1) == task).float().mean(), memory, mask

    def training_step(self, batch, batch_idx):
        loss, pred, _, _, _ = self._loss(batch)
        self.log_dict({"train/loss": loss, "train/pred": pred}, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, pred, task_acc, memory, mask = self._loss(batch)
        _, _, _, _, _, task, row, _ = batch
        samples = self.net.sample(memory, mask, 4, self.hparams.flow_steps)
        samples = F.normalize(samples * self.net.std + self.net.mean, dim=-1)
        sims = (samples @ F.normalize(self.net.prototypes, dim=-1).T / self.hparams.temperature).softmax(-1).mean(1)
        sims = sims.masked_fill(self.row_task[None] != task[:, None], -1.0)  # the true task's steps only
        top1 = (sims.argmax(-1) == row).float().mean()
        self.log_dict({"val/loss": loss, "val/pred": pred, "val/task_acc": task_acc, "val/top1": top1},
                      prog_bar=True, batch_size=len(task))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, self.hparams.warmup_steps)

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            from procvid.checkpoint import data_domain

            dm = self.trainer.datamodule
            hp = self.hparams
            metrics = {k: round(float(v), 4) for k, v in self.trainer.callback_metrics.items() if k.startswith("val/")}
            save_forecaster(hp.export_dir, self.net, dm.vocab, self.architecture, data_domain(dm.hparams.world),
                            encoder=dm.encoder_id, encoder_spec=dm.hparams.encoder, fps=dm.hparams.fps,
                            dataset=str(dm.hparams.world),
                            train_videos=dm.num_train_videos,
                            readout={"temperature": hp.temperature, "samples": hp.samples,
                                     "flow_steps": hp.flow_steps},
                            validation=metrics)


MODELS.register("forecast", "latent forecaster: the next step's embedding from a partial video's features "
                            "(regression or flow matching), and its task", (ForecastModule, ForecastDataModule))
