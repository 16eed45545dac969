"""Contrastive training of a small open_clip model on synthetic-world frames and step texts."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from procvid.metrics.retrieval import text_to_frame_recall, zero_shot_step_accuracy
from procvid.registry import MODELS
from procvid.train.schedule import warmup_cosine
from procvid.train.world import SyntheticWorldDataModule, validation_mask


class SyntheticFramesDataModule(SyntheticWorldDataModule):
    """(frame, step-text index) pairs from a synthetic world, split into train / val by video.

    If `world` does not exist it is generated first (`num_videos` videos from `world_seed`), so a
    training run is reproducible from its config alone.
    """

    def __init__(self, world: str = "datasets/synth/train", num_videos: int = 120, world_seed: int = 0,
                 fps: float = 2.0, image_size: int = 64, val_fraction: float = 0.1, batch_size: int = 256,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage=None):
        from procvid.train.frames import load_world_frames

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        data = load_world_frames(hp.world, fps=hp.fps, size=hp.image_size, progress=False)
        self.texts, text_idx = data.text_index()
        self.task_ranges = data.task_text_ranges()
        is_val = validation_mask(len(data.videos), hp.val_fraction, hp.seed)[data.video]
        frames = torch.from_numpy(data.frames).permute(0, 3, 1, 2).contiguous()  # uint8, normalised per batch

        def subset(mask):
            return TensorDataset(frames[mask], torch.from_numpy(text_idx[mask]), torch.from_numpy(data.task[mask]))

        self.train_set, self.val_set = subset(~is_val), subset(is_val)


def multi_positive_clip_loss(img: torch.Tensor, txt: torch.Tensor, text_idx: torch.Tensor,
                             logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP loss over the batch's distinct texts: many frames share one step text, so every frame
    of a text is a positive for it (the plain CLIP loss would push them apart as negatives)."""
    uniq, target = torch.unique(text_idx, return_inverse=True)
    logits = logit_scale * img @ txt[uniq].T  # [B, U]
    loss_i2t = F.cross_entropy(logits, target)
    positives = target[None, :] == torch.arange(len(uniq), device=img.device)[:, None]  # [U, B]
    log_p = logits.T.log_softmax(dim=1)
    loss_t2i = -(log_p * positives).sum(1).div(positives.sum(1)).mean()
    return (loss_i2t + loss_t2i) / 2


class ClipModule(L.LightningModule):
    """An open_clip architecture (by registered name) trained contrastively on frames and step texts.

    After fitting, `export` writes the bare open_clip weights (safetensors, fp16), which the encoder
    interface loads like any open_clip checkpoint: `procvid-clip-tiny:/path/open_clip_model.safetensors`.
    """

    def __init__(self, model_name: str = "procvid-clip-tiny", lr: float = 2e-3, weight_decay: float = 0.05,
                 warmup_steps: int = 50, export_path: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        import open_clip

        from procvid.encoders.open_clip_encoder import register_model_configs

        register_model_configs()
        self.model = open_clip.create_model(model_name)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        pp = self.model.visual.preprocess_cfg
        self.register_buffer("mean", torch.tensor(pp["mean"]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(pp["std"]).view(1, 3, 1, 1), persistent=False)
        self._val = []

    def _images(self, frames_uint8: torch.Tensor) -> torch.Tensor:
        size = self.model.visual.image_size
        size = size[0] if isinstance(size, (tuple, list)) else size
        x = frames_uint8.float() / 255.0
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True)
        return (x - self.mean) / self.std

    def _text_features(self) -> torch.Tensor:
        tokens = self.tokenizer(self.trainer.datamodule.texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens), dim=-1)

    def training_step(self, batch, batch_idx):
        frames, text_idx, _ = batch
        img = F.normalize(self.model.encode_image(self._images(frames)), dim=-1)
        loss = multi_positive_clip_loss(img, self._text_features(), text_idx, self.model.logit_scale.exp())
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        frames, text_idx, task = batch
        img = F.normalize(self.model.encode_image(self._images(frames)), dim=-1)
        self._val.append((img.float().cpu(), text_idx.cpu(), task.cpu()))

    def on_validation_epoch_end(self):
        if not self._val:
            return
        img, text_idx, task = (torch.cat(x).numpy() for x in zip(*self._val))
        self._val.clear()
        with torch.no_grad():
            txt = self._text_features().float().cpu().numpy()
        dm = self.trainer.datamodule
        acc = zero_shot_step_accuracy(img, txt, text_idx, dm.task_ranges, task)
        recall = text_to_frame_recall(img, txt, text_idx)
        self.log_dict({"val/step_acc": acc, "val/r@1": recall[1], "val/r@5": recall[5]}, prog_bar=True)

    def configure_optimizers(self):
        decay = [p for n, p in self.model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
        no_decay = [p for n, p in self.model.named_parameters() if p.ndim < 2 or "embedding" in n]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": self.hparams.weight_decay},
                                 {"params": no_decay, "weight_decay": 0.0}], lr=self.hparams.lr)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, self.hparams.warmup_steps)

    def export(self, path: str | Path) -> Path:
        from safetensors.torch import save

        from procvid.outputs import atomic_write

        state = {k: v.detach().to(torch.float16).contiguous().cpu() for k, v in self.model.state_dict().items()}
        return atomic_write(path, save(state))  # never a half-written checkpoint

    def on_fit_end(self):
        if self.hparams.export_path and self.trainer.is_global_zero:
            self.export(self.hparams.export_path)


MODELS.register("clip", "small open_clip image/text model, contrastive on synthetic-world frames and step texts",
                (ClipModule, SyntheticFramesDataModule))
