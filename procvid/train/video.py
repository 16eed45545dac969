"""Training of the clip-level video encoder (procvid.encoders.video_tiny) on a synthetic world.

Every frame (idle gaps included) is a sample; its target is the text embedding of its step, or of
an idle text in the gaps, from a frozen text tower (procvid-clip-tiny's), so the video model's
embeddings live in the same space and ground to step texts. Training samples are runs of
consecutive frames of one video, so the temporal convolution sees real neighbours.
"""

from __future__ import annotations

import math

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from procvid.checkpoint import data_domain
from procvid.encoders.video_tiny import VideoTinyNet
from procvid.registry import MODELS
from procvid.train.schedule import warmup_cosine
from procvid.train.world import SyntheticWorldDataModule, validation_mask

IDLE_TEXT = "the hand is idle between steps"


class _Runs(Dataset):
    """Runs of `length` consecutive frames: the run starting at each of `starts`."""

    def __init__(self, frames: torch.Tensor, targets: torch.Tensor, task: torch.Tensor, starts: np.ndarray,
                 length: int):
        self.frames, self.targets, self.task, self.starts, self.length = frames, targets, task, starts, length

    def __len__(self):
        return len(self.starts)

    def __getitem__(self, i):
        a = int(self.starts[i])
        window = slice(a, a + self.length)
        return self.frames[window], self.targets[window], self.task[window]


class VideoFramesDataModule(SyntheticWorldDataModule):
    """All frames of a synthetic world at `fps` with their text targets (step text index, or the
    idle text's), split into train / val by video. Train: runs of `run_length` frames starting at
    every frame; val: whole videos (batch of one), so the temporal window sees what it will at use."""

    def __init__(self, world: str = "datasets/synth/train480", num_videos: int = 480, world_seed: int = 0,
                 fps: float = 2.0, image_size: int = 48, run_length: int = 32, val_fraction: float = 0.1,
                 batch_size: int = 8, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage=None):
        from procvid.train.frames import load_world_frames

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        data = load_world_frames(hp.world, fps=hp.fps, size=hp.image_size, progress=False, keep_idle=True)
        texts, text_idx = data.text_index()
        self.texts = [*texts, IDLE_TEXT]
        self.task_ranges = data.task_text_ranges()
        targets = torch.from_numpy(np.where(data.step > 0, text_idx, len(texts)))
        frames = torch.from_numpy(data.frames).permute(0, 3, 1, 2).contiguous()  # uint8
        task = torch.from_numpy(data.task)
        is_val = validation_mask(len(data.videos), hp.val_fraction, hp.seed)
        bounds = np.r_[0, np.flatnonzero(np.diff(data.video)) + 1, len(data.video)]
        train_starts = [np.arange(a, b - hp.run_length + 1) for (a, b), v in zip(zip(bounds, bounds[1:]), is_val)
                        if not v]
        self.train_set = _Runs(frames, targets, task, np.concatenate(train_starts), hp.run_length)
        self.val_videos = [(a, b) for (a, b), v in zip(zip(bounds, bounds[1:]), is_val) if v]
        self.val_set = [(frames[a:b], targets[a:b], task[a:b]) for a, b in self.val_videos]

    def val_dataloader(self):
        return torch.utils.data.DataLoader(self.val_set, batch_size=None, num_workers=self.hparams.num_workers)


def own_task_accuracy(emb: torch.Tensor, text_emb: torch.Tensor, targets: torch.Tensor, task: torch.Tensor,
                      task_ranges: list[range]) -> float:
    """Frames whose nearest text, among their task's steps and the idle text (the last), is theirs."""
    from procvid.metrics.retrieval import zero_shot_step_correct

    correct = zero_shot_step_correct(emb.detach().float().cpu().numpy(), text_emb.float().cpu().numpy(),
                                     targets.cpu().numpy(), task_ranges, task.cpu().numpy(),
                                     shared=(len(text_emb) - 1,))
    return float(correct.mean())


class VideoEncoderModule(L.LightningModule):
    """Trains :class:`VideoTinyNet` against frozen text embeddings: cross-entropy over all texts
    (learned temperature), plus `align` x (1 - cosine to the frame's own text), plus `smooth` x
    (1 - cosine between consecutive frames of the same step or gap). The last two make a step a
    flat stretch of the embedding and a step change a jump, which is what boundary detectors look
    for; cross-entropy alone leaves the embeddings spread within a step, with step changes as small
    as the noise inside one (see the model card).

    After fitting, `export_dir` receives the model folder (procvid.checkpoint; procvid.encoders: `video:DIR`).
    """

    def __init__(self, width: int = 128, dim: int = 64, context: int = 4, channels: tuple[int, ...] = (32, 64, 96),
                 text_encoder: str = "default", align: float = 8.0, smooth: float = 8.0, lr: float = 2e-3, weight_decay: float = 0.01,
                 warmup_steps: int = 150, export_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net: VideoTinyNet | None = None
        self.logit_scale = torch.nn.Parameter(torch.tensor(math.log(20.0)))

    def configure_model(self):
        if self.net is None:
            hp, dm = self.hparams, self.trainer.datamodule
            self.net = VideoTinyNet(dm.hparams.image_size, hp.width, hp.dim, hp.context, tuple(hp.channels))

    def setup(self, stage=None):
        from procvid.encoders import load_encoder

        text_encoder = load_encoder(self.hparams.text_encoder, device="cpu")
        self.text_encoder_id = text_encoder.id  # recorded in the export
        text = text_encoder.encode_texts(self.trainer.datamodule.texts)
        self.register_buffer("text_emb", torch.from_numpy(text), persistent=False)

    def _embed(self, frames_uint8: torch.Tensor) -> torch.Tensor:
        return self.net(frames_uint8.float() / 255.0 - 0.5)

    def training_step(self, batch, batch_idx):
        frames, targets, _ = batch  # [B, L, 3, S, S], [B, L]
        emb = torch.stack([self._embed(run) for run in frames])  # [B, L, dim]
        ce = F.cross_entropy(self.logit_scale.exp() * emb.flatten(0, 1) @ self.text_emb.T, targets.flatten())
        align = (1 - (emb * self.text_emb[targets]).sum(-1)).mean()
        same = (targets[:, 1:] == targets[:, :-1]).float()
        smooth = ((1 - (emb[:, 1:] * emb[:, :-1]).sum(-1)) * same).mean()
        loss = ce + self.hparams.align * align + self.hparams.smooth * smooth
        self.log_dict({"train/loss": loss, "train/ce": ce, "train/align": align, "train/smooth": smooth},
                      prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        frames, targets, task = batch  # one whole video
        emb = self._embed(frames)
        acc = own_task_accuracy(emb, self.text_emb, targets, task, self.trainer.datamodule.task_ranges)
        self.log("val/frame_acc", acc, prog_bar=True, batch_size=len(targets))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, self.hparams.warmup_steps)

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            dm = self.trainer.datamodule
            self.net.save_pretrained(self.hparams.export_dir, data_domain(dm.hparams.world), fps=dm.hparams.fps,
                                     text_encoder=self.hparams.text_encoder, text_encoder_id=self.text_encoder_id,
                                     idle_text=IDLE_TEXT)


MODELS.register("video", "clip-level video encoder (procvid-video-tiny) on synthetic-world frame runs",
                (VideoEncoderModule, VideoFramesDataModule))
