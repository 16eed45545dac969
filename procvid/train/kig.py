"""Training of the Key-step Image Generator (procvid.generate.kig) on synthetic-world key-step pairs.

A pair is (key frame k-1, text of step k) -> key frame k of one video (key frames: procvid.generate.keyframes;
key frame 0 is the initial scene). Each key frame comes with the few frames before it, and a training pair
draws its start and target from those windows: the same states with the hand elsewhere (augmentation).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from procvid.registry import MODELS
from procvid.train.schedule import warmup_cosine
from procvid.train.world import SyntheticWorldDataModule, validation_mask


class _Pairs(Dataset):
    """(start uint8 [3,H,W], target uint8 [3,H,W], text index); random window frames unless `fixed`."""

    def __init__(self, windows: list[np.ndarray], pairs: np.ndarray, fixed: bool):
        self.windows, self.pairs, self.fixed = windows, pairs, fixed

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, i):
        video, k, text = self.pairs[i]
        frames = self.windows[video]  # [S+1, window, H, W, 3]
        w = frames.shape[1]
        a, b = (w - 1, w - 1) if self.fixed else torch.randint(0, w, (2,)).tolist()
        start, target = (torch.from_numpy(frames[j, f]).permute(2, 0, 1) for j, f in ((k - 1, a), (k, b)))
        return start, target, int(text)


class KeyStepPairsDataModule(SyntheticWorldDataModule):
    """Key-step pairs of a synthetic world, split into train / val by video.

    If `world` does not exist it is generated first (`num_videos` videos from `world_seed`).
    """

    VAL_BATCH_SIZE = 256

    def __init__(self, world: str = "datasets/synth/train", num_videos: int = 120, world_seed: int = 0,
                 image_size: int = 32, window: int = 4, val_fraction: float = 0.1, batch_size: int = 32,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage=None):
        from procvid.generate.keyframes import load_key_frames, world_videos
        from procvid.train.frames import step_text_table

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        self.tasks, _ = world_videos(hp.world)
        self.key_frames = load_key_frames(hp.world, size=hp.image_size, window=hp.window, progress=False)
        self.texts, offsets = step_text_table(self.tasks)
        offset = {t["id"]: o - 1 for t, o in zip(self.tasks, offsets)}  # step ids are 1-based
        pairs = np.array([(v, k, offset[kf.task_id] + step) for v, kf in enumerate(self.key_frames)
                          for k, step in enumerate(kf.order, start=1)], dtype=np.int64)
        is_val = validation_mask(len(self.key_frames), hp.val_fraction, hp.seed)[pairs[:, 0]]
        windows = [kf.frames for kf in self.key_frames]
        self.train_set, self.val_set = _Pairs(windows, pairs[~is_val], False), _Pairs(windows, pairs[is_val], True)



class KIGModule(L.LightningModule):
    """Diffusion training of the KIG UNet (the text tower stays frozen; its token states are cached).

    Loss: MSE on the scheduler's prediction target (x0 by default, parametrised as a change of the
    previous image: procvid.generate.kig.denoise) with a clamped-SNR weighting (see _loss). Conditions
    are dropped as in InstructPix2Pix (text only, image only, both; `drop` each) for classifier-free
    guidance, and the previous image is noised at random (`cond_noise`), as against drift in
    autoregressive generation. An EMA copy of the UNet is what gets exported to `export_path` at fit
    end, with the planner's skill library of the same world.
    """

    def __init__(self, image_size: int = 32, fold: int = 2, block_out_channels: list[int] = (64, 96, 128),
                 layers_per_block: int = 1, attention_levels: int = 1, prediction_type: str = "sample",
                 lr: float = 1e-3, weight_decay: float = 0.01, warmup_steps: int = 100, drop: float = 0.05,
                 snr_gamma: float = 5.0, cond_noise: float = 0.2, ema_decay: float = 0.999,
                 export_path: str | None = None, export_fp16: bool = True, threads: int | None = None):
        super().__init__()
        self.save_hyperparameters()
        from procvid.generate.kig import KeyStepGenerator, training_scheduler

        if threads:  # on shared CPUs one busy-waiting thread per free core is faster than more
            torch.set_num_threads(threads)
        kig = KeyStepGenerator.create(image_size, fold, prediction_type=prediction_type,
                                      block_out_channels=tuple(block_out_channels),
                                      layers_per_block=layers_per_block, attention_levels=attention_levels)
        self.sampler = kig.scheduler  # exported with the model
        self.unet = kig.unet.train().requires_grad_(True)
        self.ema_unet = build_ema(self.unet)
        self.text_encoder = kig.text_encoder  # frozen: only encodes the step texts once, in setup()
        self.noise = training_scheduler(kig.scheduler)
        self.register_buffer("alphas_cumprod", self.noise.alphas_cumprod.clone(), persistent=False)

    def setup(self, stage=None):
        texts = self.trainer.datamodule.texts
        with torch.no_grad():
            states = self.text_encoder.encode(list(texts) + [""])
        self.register_buffer("text_states", states, persistent=False)  # [T + 1, L, D]; last: null text

    def _loss(self, unet, batch, generator=None):
        from procvid.generate.kig import denoise, fold_pixels

        start, target, text = batch
        x0, cond = fold_pixels(target, self.hparams.fold), fold_pixels(start, self.hparams.fold)
        n = len(x0)
        noise = torch.randn(x0.shape, generator=generator, device=self.device)
        t = torch.randint(0, self.noise.config.num_train_timesteps, (n,), generator=generator, device=self.device)
        noisy = self.noise.add_noise(x0, noise, t)
        kind = self.hparams.prediction_type
        goal = x0 if kind == "sample" else noise if kind == "epsilon" else self.noise.get_velocity(x0, noise, t)
        states = self.text_states[text]
        if self.training:  # InstructPix2Pix condition dropping: text only, image only, both
            u = torch.rand(n, device=self.device)
            p = self.hparams.drop
            drop_text = (u < p) | (u >= 2 * p) & (u < 3 * p)
            drop_image = (u >= p) & (u < 3 * p)
            states = torch.where(drop_text[:, None, None], self.text_states[-1:], states)
            # rollouts condition on generated images: noise on half the previous images (std up to
            # cond_noise) teaches the model to clean them up instead of passing artifacts on
            sigma = self.hparams.cond_noise * torch.rand(n, 1, 1, 1, device=self.device) * (torch.rand(
                n, 1, 1, 1, device=self.device) < 0.5)
            cond = (cond + sigma * torch.randn_like(cond)) * (~drop_image)[:, None, None, None]
        pred = denoise(unet, noisy, t, cond, states, residual=kind == "sample")
        # x0-error weight clamp(SNR, 1, gamma), converted to the target's scale: min-SNR-gamma caps the
        # easy low-noise steps; the floor of 1 keeps the high-noise steps, where the edit is decided
        snr = self.alphas_cumprod[t] / (1 - self.alphas_cumprod[t])
        weight = snr.clamp(1.0, self.hparams.snr_gamma) / {"sample": 1.0, "epsilon": snr, "v_prediction": snr + 1}[kind]
        return (weight * F.mse_loss(pred, goal, reduction="none").mean((1, 2, 3))).mean()

    def training_step(self, batch, batch_idx):
        loss = self._loss(self.unet, batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs, batch, batch_idx):
        step = self.global_step
        decay = min(self.hparams.ema_decay, (1 + step) / (10 + step))  # warm-up: early EMA follows closely
        update_ema(self.ema_unet, self.unet, decay)

    def validation_step(self, batch, batch_idx):
        # fixed noise and timesteps, so val/loss is comparable across the run
        generator = torch.Generator(device=self.device).manual_seed(batch_idx)
        self.log("val/loss", self._loss(self.ema_unet, batch, generator), prog_bar=True, batch_size=len(batch[0]))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.unet.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, self.hparams.warmup_steps, floor=0.1)

    def export(self, path: str | Path) -> Path:
        """The EMA UNet as a KIG folder (procvid.generate.kig.load_generator opens it)."""
        from procvid.generate.kig import KeyStepGenerator

        from procvid.checkpoint import data_domain

        kig = KeyStepGenerator(build_ema(self.ema_unet).cpu(), self.sampler, self.text_encoder.cpu(),
                               self.hparams.image_size, self.hparams.fold)
        kig.domain = data_domain(self.trainer.datamodule.hparams.world) if self.trainer else None
        return kig.save_pretrained(path, fp16=self.hparams.export_fp16)

    def on_fit_end(self):
        if not (self.hparams.export_path and self.trainer.is_global_zero):
            return
        from procvid.generate.planner import build_library

        path = self.export(self.hparams.export_path)
        dm = self.trainer.datamodule
        build_library(dm.tasks, dm.key_frames, source=str(dm.hparams.world)).save(path)


MODELS.register("kig", "key-step image generator (diffusers UNet) on synthetic-world key-step pairs",
                (KIGModule, KeyStepPairsDataModule))


def build_ema(unet):
    """A frozen copy of the UNet (same config and weights)."""
    import copy

    return copy.deepcopy(unet).requires_grad_(False).eval()


@torch.no_grad()
def update_ema(ema, model, decay: float) -> None:
    ema_params, params = list(ema.parameters()), list(model.parameters())
    torch._foreach_lerp_(ema_params, params, 1 - decay)
