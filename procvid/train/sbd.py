"""Self-supervised training of the SBD next-embedding predictor on unlabeled frame embeddings."""

from __future__ import annotations

import logging
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch.utils.data import TensorDataset

from procvid.errors import ProcvidError
from procvid.checkpoint import data_domain
from procvid.segment.sbd import NextEmbeddingPredictor
from procvid.registry import MODELS
from procvid.train.world import SyntheticWorldDataModule, validation_mask

log = logging.getLogger(__name__)


class EmbeddingChunksDataModule(SyntheticWorldDataModule):
    """Fixed-length chunks of consecutive embeddings from a folder of feature files (procvid embed's
    output), split into train / val by video. No labels are read.

    If `world` is given, its videos are first embedded into `features` with `encoder` at `fps`
    (resuming: valid entries are kept), and the world itself is generated if missing (`num_videos`
    videos from `world_seed`), so a run is reproducible from its config alone. Training chunks are
    also taken at every `stride`-th frame, so the predictor sees slower sampling rates too.
    """

    def __init__(self, features: str = "datasets/synth/train_features", world: str | None = "datasets/synth/train",
                 num_videos: int = 120, world_seed: int = 0, encoder: str = "default", fps: float = 2.0,
                 chunk: int = 24, strides: tuple[int, ...] = (1, 2), val_fraction: float = 0.1, batch_size: int = 64,
                 num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    DROP_LAST = False

    def prepare_data(self):
        hp = self.hparams
        if hp.world is None:
            return
        from procvid.embedding import embed_videos
        from procvid.encoders import load_encoder
        from procvid.video import Sampling, find_videos

        super().prepare_data()
        summary = embed_videos(find_videos([Path(hp.world) / "videos"]), hp.features, load_encoder(hp.encoder),
                               Sampling(fps=hp.fps), progress=False)
        log.info("features for training: %s", summary.line())

    def _load_videos(self) -> tuple[list[Path], list[np.ndarray]]:
        """Every video's features in the folder (sidecar paths, float32 arrays); sets `encoder`,
        `sampling` and `dim`, recorded in the exported config: a model is only valid for these features."""
        from procvid.features import feature_sidecars, load_features

        sidecars = feature_sidecars(self.hparams.features)
        sequences, metas = [], []
        for p in sidecars:
            emb, _, meta = load_features(p)
            sequences.append(emb)
            metas.append(meta)
        encoders = {m.get("encoder") for m in metas}
        if len(encoders) > 1:
            raise ProcvidError(f"{self.hparams.features}: features of several encoders "
                               f"({', '.join(map(str, encoders))})")
        self.encoder, self.sampling, self.dim = encoders.pop(), metas[0].get("sampling"), sequences[0].shape[1]
        return sidecars, sequences

    def setup(self, stage=None):
        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        _, sequences = self._load_videos()
        is_val = validation_mask(len(sequences), hp.val_fraction, hp.seed)
        train = [s for s, v in zip(sequences, is_val) if not v]
        self.train_set = TensorDataset(self._chunks(train, hp.strides))
        self.val_set = TensorDataset(self._chunks([s for s, v in zip(sequences, is_val) if v] or train, [1]))

    def _chunks(self, sequences, strides) -> torch.Tensor:
        """Chunks of `chunk` frames starting every chunk/2 frames, at each stride: [N, chunk, D]."""
        size = self.hparams.chunk
        out = [seq[o::s][i : i + size] for seq in sequences for s in strides for o in range(s)
               for i in range(0, len(seq[o::s]) - size + 1, max(1, size // 2))]
        if not out:
            raise ProcvidError(f"no video is long enough for chunks of {size} frames; lower data.chunk")
        return torch.from_numpy(np.stack(out))



class SBDModule(L.LightningModule):
    """Trains :class:`NextEmbeddingPredictor` to predict each frame from the frames before it; a
    chunk's first frames have a short past, like a video's start. The input size comes from the data
    (`configure_model`).

    Loss: the mean of the smallest `trim` fraction of the batch's errors 1 - cosine (least trimmed
    squares style). Boundaries are rare and unforeseeable, so they are among the largest errors;
    leaving those out fits the predictor to ordinary motion within a step and keeps it from learning
    how a step change unfolds, which would make the change unsurprising. With clip-level features,
    whose step changes build up over a few frames, the tuning world's boundary F1 was 0.69 with the
    plain mean (`trim` 1) and 0.80 / 0.84 / 0.88 keeping the smallest 90 / 75 / 50 % (model card).

    After fitting, `export_dir` receives the model folder (procvid.checkpoint: model.safetensors +
    config.json with the architecture, the encoder id of the training features and the domain).
    """

    def __init__(self, window: int = 8, width: int = 64, layers: int = 2, heads: int = 4, lr: float = 1e-3,
                 weight_decay: float = 0.01, trim: float = 0.5, export_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net: NextEmbeddingPredictor | None = None

    def configure_model(self):
        if self.net is None:
            hp = self.hparams
            self.net = NextEmbeddingPredictor(self.trainer.datamodule.dim, hp.window, hp.width, hp.layers, hp.heads)

    def on_fit_start(self):
        self._threads = torch.get_num_threads()
        if self.device.type == "cpu":
            # Tiny matrices: one thread is faster than several, and much faster on busy cores.
            torch.set_num_threads(1)

    def teardown(self, stage):
        torch.set_num_threads(getattr(self, "_threads", torch.get_num_threads()))

    def _errors(self, chunks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prediction errors and those of copying the last frame, over frames 1.. of each chunk (flat)."""
        pred, target = self.net(chunks[:, :-1]), chunks[:, 1:]
        return (1 - (pred * target).sum(-1)).flatten(), (1 - (chunks[:, :-1] * target).sum(-1)).flatten()

    def _trimmed(self, errors: torch.Tensor) -> torch.Tensor:
        return errors.sort().values[: max(1, int(self.hparams.trim * len(errors)))].mean()

    def training_step(self, batch, batch_idx):
        errors, _ = self._errors(batch[0])
        loss = self._trimmed(errors)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        errors, copy = self._errors(batch[0])
        # vs_copy below 1: the predictor beats "nothing changes" (on all frames / on the kept ones).
        self.log_dict({"val/loss": self._trimmed(errors), "val/vs_copy": errors.mean() / copy.mean(),
                       "val/trimmed_vs_copy": self._trimmed(errors) / self._trimmed(copy)}, prog_bar=True)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        total = max(1, self.trainer.estimated_stepping_batches)
        return {"optimizer": opt,
                "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(opt, total), "interval": "step"}}

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            dm = self.trainer.datamodule
            domain = data_domain(dm.hparams.world, default=f"the footage of the features in {dm.hparams.features}")
            self.net.save_pretrained(self.hparams.export_dir, domain, encoder=dm.encoder, sampling=dm.sampling)


MODELS.register("sbd", "SBD next-embedding predictor, self-supervised on frame embeddings",
                (SBDModule, EmbeddingChunksDataModule))
