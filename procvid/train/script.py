"""Training of the script model (procvid.graph.script_model): next-step prediction on annotated step orders."""

from __future__ import annotations


import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from procvid.graph.script_model import (ScriptVocab, build_network, masked_logits, save_script_model,
                                        split_sequences)
from procvid.registry import MODELS
from procvid.train.schedule import first_setup, warmup_cosine
from procvid.train.world import validation_mask

# dataset name -> (training split, test split); the test split is never read in training
SPLITS = {"crosstask": ("train", "val"), "coin": ("train", "test")}


class StepSequencesDataModule(L.LightningDataModule):
    """Step sequences of one dataset's training split, cut into train / val by video.

    dataset: crosstask, coin, or any name or folder load_dataset reads (a synthetic world, ...).
    train_split: default "train" for crosstask and coin (CrossTask's videos_val.csv and COIN's test
    subset are the test sets of tools/bench_script.py); datasets without splits train on every video.
    Each sequence becomes tokens [task, s1, ..., sn] with targets [s1, ..., sn, END] (consecutive
    repeats merged; sequences longer than max_len - 1 steps keep their first steps).
    """

    def __init__(self, dataset: str = "crosstask", train_split: str | None = None, val_fraction: float = 0.1,
                 max_len: int = 32, batch_size: int = 64, num_workers: int = 0, seed: int = 0):
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage=None):
        from procvid.data import load_dataset

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        dataset = load_dataset(hp.dataset)
        split = hp.train_split or (SPLITS[hp.dataset][0] if hp.dataset in SPLITS else None)
        self.vocab = ScriptVocab.from_dataset(dataset)
        rows = [self.vocab.encode(task, seq[: hp.max_len - 1]) + [ScriptVocab.END_ID]
                for task, seqs in split_sequences(dataset, split).items() for seq in seqs]
        is_val = validation_mask(len(rows), hp.val_fraction, hp.seed, at_least_one=False)
        self.train_set = [r for r, v in zip(rows, is_val) if not v]
        self.val_set = [r for r, v in zip(rows, is_val) if v] or self.train_set

    @staticmethod
    def collate(rows: list[list[int]]) -> torch.Tensor:
        """Rows padded to [B, L + 1]: inputs are [:, :-1], targets [:, 1:]."""
        out = torch.full((len(rows), max(map(len, rows))), ScriptVocab.PAD_ID, dtype=torch.long)
        for i, r in enumerate(rows):
            out[i, : len(r)] = torch.tensor(r)
        return out

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, collate_fn=self.collate,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=256, collate_fn=self.collate, num_workers=self.hparams.num_workers)


class ScriptModule(L.LightningModule):
    """The script transformer trained with cross-entropy on the next step (or END) after every prefix.

    The network is built in setup() from the data module's vocabulary. When fitting ends, `export_dir`
    receives the model folder (procvid.checkpoint: weights, a few hundred kB, and config.json with
    the vocabulary; ScriptModel.from_pretrained and `procvid graph predict --model` read it; Lightning's
    .ckpt files are for resuming training only). num_threads sets
    torch's intra-op threads (None: leave as is): batches this small run fastest on one thread.
    """

    def __init__(self, dim: int = 64, layers: int = 2, heads: int = 4, dropout: float = 0.1, lr: float = 3e-3,
                 weight_decay: float = 0.01, warmup_steps: int = 100, num_threads: int | None = 1,
                 export_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = None

    def setup(self, stage=None):
        if not first_setup(self):
            return
        dm = self.trainer.datamodule
        hp = self.hparams
        self.vocab = dm.vocab
        self.config = {"dim": hp.dim, "layers": hp.layers, "heads": hp.heads, "max_len": dm.hparams.max_len,
                       "dropout": hp.dropout}
        self.net = build_network(self.vocab.size, **self.config)
        self.register_buffer("allowed", self.vocab.allowed(), persistent=False)

    def _loss(self, batch):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = masked_logits(self.net(inputs), inputs, self.allowed)
        valid = targets != ScriptVocab.PAD_ID
        loss = F.cross_entropy(logits[valid], targets[valid])
        acc = (logits[valid].argmax(-1) == targets[valid]).float().mean()
        return loss, acc

    def training_step(self, batch, batch_idx):
        loss, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, acc = self._loss(batch)
        self.log_dict({"val/loss": loss, "val/acc": acc}, prog_bar=True, batch_size=len(batch))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, self.hparams.warmup_steps)

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            from procvid.checkpoint import data_domain

            dataset = self.trainer.datamodule.hparams.dataset
            save_script_model(self.hparams.export_dir, self.net, self.vocab, self.config, data_domain(dataset),
                              dataset=str(dataset))


MODELS.register("script", "script model: next-step prediction on annotated step orders",
                (ScriptModule, StepSequencesDataModule))
