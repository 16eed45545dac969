"""Training of the procedure planner (procvid.forecast.plan): start / goal observations of every window of
consecutive annotated steps -> the window's steps, on a synthetic world's (or any annotated dataset's)
clip-level features."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from procvid.errors import ProcvidError
from procvid.forecast.plan import (OBS_SECONDS, build_network, done_steps, merged_steps, observation, save_planner,
                                   step_windows)
from procvid.registry import MODELS
from procvid.train.sbd import EmbeddingChunksDataModule
from procvid.train.schedule import first_setup, warmup_cosine
from procvid.train.world import validation_mask

log = logging.getLogger(__name__)


class _Windows(Dataset):
    """Rows (start obs [J, D], goal obs [J, D], step indices, task index, done at start [J, V], done at goal
    [J, V], start and goal obs of the state encoder [J, D2] each, D2 = 0 without one) -> (start, goal, horizon,
    steps padded to max_horizon, task, done at start, done at goal, state start, state goal); one of the J
    jittered observations (with its done labels) is drawn per item when `jitter`, else the first."""

    def __init__(self, rows: list, max_horizon: int, jitter: bool, seed: int = 0):
        self.rows, self.max_horizon, self.jitter = rows, max_horizon, jitter
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        starts, goals, steps, task, done_start, done_goal, state_starts, state_goals = self.rows[i]
        a = int(self.rng.integers(len(starts))) if self.jitter else 0
        b = int(self.rng.integers(len(goals))) if self.jitter else 0
        target = np.full(self.max_horizon, -100, dtype=np.int64)  # cross_entropy's ignore_index
        target[: len(steps)] = steps
        return (torch.from_numpy(starts[a]), torch.from_numpy(goals[b]), torch.tensor(len(steps)),
                torch.from_numpy(target), torch.tensor(task), torch.from_numpy(done_start[a]),
                torch.from_numpy(done_goal[b]), torch.from_numpy(state_starts[a]), torch.from_numpy(state_goals[b]))


class PlannerDataModule(EmbeddingChunksDataModule):
    """Windows of `horizons` consecutive steps of a dataset's videos with their observations.

    annotations: the dataset (default: `world`; load_dataset reads it); features: one feature file per
    video, named by its video id (`procvid embed` output; made from `world` with `encoder` at `fps` when
    missing, as for the SBD predictor; `encoder` is recorded as the spec that embeds images and videos
    for `procvid plan`, so give it also when `world` is null). Videos are cut into train / val
    (`val_fraction`); training observations are also taken `jitter` seconds early and late
    (augmentation). Each observation carries the (task, step) pairs done by then (done_steps: the state
    head's targets). state_encoder (a spec, e.g. `default`, or null): a second encoder whose features
    (`state_features`, one file per video, made from `world` at `fps` when missing) the state head reads too
    (procvid.forecast.plan). The step prototypes of the graph planner, its graph scripts
    (procvid.graph.induce_graph) and transition counts come from the training videos only.
    """

    def __init__(self, features: str = "datasets/synth/forecast_train_seed11_features_video",
                 world: str | None = "datasets/synth/forecast_train_seed11", annotations: str | None = None,
                 num_videos: int = 240, world_seed: int = 11, encoder: str = "video", fps: float = 2.0,
                 horizons: tuple[int, ...] = (2, 3, 4, 5, 6), max_horizon: int = 8, jitter: float = 0.5,
                 val_fraction: float = 0.1, batch_size: int = 64, num_workers: int = 0, seed: int = 0,
                 state_encoder: str | None = None, state_features: str | None = None):
        L.LightningDataModule.__init__(self)
        self.save_hyperparameters()
        if state_encoder and not state_features:
            raise ProcvidError("give data.state_features (a features folder) with data.state_encoder")

    DROP_LAST = False

    def prepare_data(self):
        super().prepare_data()
        hp = self.hparams
        if hp.world is not None and hp.state_encoder:
            from procvid.embedding import embed_videos
            from procvid.encoders import load_encoder
            from procvid.video import Sampling, find_videos

            summary = embed_videos(find_videos([Path(hp.world) / "videos"]), hp.state_features,
                                   load_encoder(hp.state_encoder), Sampling(fps=hp.fps), progress=False)
            log.info("state features for training: %s", summary.line())

    def setup(self, stage=None):
        from procvid.data import load_dataset
        from procvid.features import find_entry, load_features
        from procvid.graph import induce_graph
        from procvid.graph.script import consecutive_pairs
        from procvid.graph.script_model import ScriptVocab

        if hasattr(self, "train_set"):
            return
        hp = self.hparams
        if max(hp.horizons) > hp.max_horizon or min(hp.horizons) < 1:
            raise ProcvidError(f"data.horizons must lie in 1..{hp.max_horizon} (data.max_horizon)")
        source = hp.annotations or hp.world
        if source is None:
            raise ProcvidError("give data.annotations (a dataset) when data.world is null")
        dataset = load_dataset(source)
        features = Path(hp.features)
        videos, loaded, metas, state_loaded, state_metas = [], [], [], [], []
        for v in dataset.videos:
            sidecar = find_entry(features, v.video_id)
            if v.segments and sidecar is not None and all(s.start is not None for s in v.segments):
                emb, times, meta = load_features(sidecar)
                videos.append(v)
                loaded.append((emb, times))
                metas.append(meta)
                if hp.state_encoder:
                    state_sidecar = find_entry(Path(hp.state_features), v.video_id)
                    if state_sidecar is None:
                        raise ProcvidError(f"{hp.state_features}: no feature file of video {v.video_id} "
                                           f"(data.state_encoder {hp.state_encoder})")
                    emb, times, meta = load_features(state_sidecar)
                    state_loaded.append((emb, times))
                    state_metas.append(meta)
        if not videos:
            raise ProcvidError(f"{features}: no feature file of an annotated video of {source} "
                               f"(<video id>.json from procvid embed)")
        for folder, group in ((features, metas), (hp.state_features, state_metas)):
            if len({m.get("encoder") for m in group}) > 1:
                raise ProcvidError(f"{folder}: features of several encoders "
                                   f"({', '.join(map(str, {m.get('encoder') for m in group}))})")
        self.encoder = metas[0].get("encoder")
        self.state_encoder = state_metas[0].get("encoder") if state_metas else None
        self.state_dim = state_loaded[0][0].shape[1] if state_loaded else 0
        # what rebuilds the encoder at planning time (procvid plan checks it still gives these features' id)
        self.encoder_spec = hp.encoder
        self.sampling, self.dim = metas[0].get("sampling"), loaded[0][0].shape[1]
        self.vocab = ScriptVocab.from_dataset(dataset)
        pairs = sorted(self.vocab.step_token, key=self.vocab.step_token.get)
        index = {p: i for i, p in enumerate(pairs)}
        tasks = list(self.vocab.tasks)

        is_val = validation_mask(len(videos), hp.val_fraction, hp.seed)
        offsets = [0.0] + ([-hp.jitter, hp.jitter] if hp.jitter else [])
        rows = {False: [], True: []}
        start_sum, goal_sum = np.zeros((len(pairs), self.dim)), np.zeros((len(pairs), self.dim))
        paths = defaultdict(list)
        for i, (v, (emb, times), val) in enumerate(zip(videos, loaded, is_val)):
            steps = merged_steps(v)
            if not val:
                paths[v.task_id].append([s for s, _, _ in steps])
                for s, a, b in steps:  # prototypes: every performed step's start and end observation
                    start_sum[index[(v.task_id, s)]] += observation(emb, times, a, "start")
                    goal_sum[index[(v.task_id, s)]] += observation(emb, times, b, "goal")

            def done(t, side, steps=steps, task=v.task_id):
                y = np.zeros(len(pairs), dtype=np.float32)
                y[[index[(task, s)] for s in done_steps(steps, t, side)]] = 1.0
                return y

            def observe(t, side, i=i, emb=emb, times=times):
                """[this encoder's observation, the state encoder's (0 dims without one)] at t + each offset."""
                own = np.stack([observation(emb, times, t + o, side) for o in offsets]).astype(np.float32)
                if not self.state_dim:
                    return own, np.zeros((len(offsets), 0), dtype=np.float32)
                return own, np.stack([observation(*state_loaded[i], t + o, side) for o in offsets]).astype(np.float32)

            for horizon in hp.horizons:
                for window, a, b in step_windows(v, horizon):
                    (starts, state_starts), (goals, state_goals) = observe(a, "start"), observe(b, "goal")
                    rows[bool(val)].append((starts, goals, np.array([index[(v.task_id, s)] for s in window]),
                                            tasks.index(v.task_id), np.stack([done(a + o, "start") for o in offsets]),
                                            np.stack([done(b + o, "goal") for o in offsets]), state_starts,
                                            state_goals))
        if not rows[False]:
            raise ProcvidError(f"no window of {min(hp.horizons)} steps in the training videos of {source}")
        norm = lambda m: m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-8)  # noqa: E731
        self.start_prototypes, self.goal_prototypes = norm(start_sum), norm(goal_sum)
        self.graphs = {t: induce_graph(seqs, dataset.tasks[t].texts()) for t, seqs in paths.items()}
        self.transitions = {t: consecutive_pairs(seqs) for t, seqs in paths.items()}
        self.source = str(source)
        self.train_set = _Windows(rows[False], hp.max_horizon, jitter=True, seed=hp.seed)
        self.val_set = _Windows(rows[True] or rows[False], hp.max_horizon, jitter=False)
        log.info("planner windows: %d train, %d val", len(rows[False]), len(rows[True]))


class PlannerModule(L.LightningModule):
    """PlannerNet trained with cross-entropy on each position's step (a softmax over every task's steps)
    plus `task_weight` times cross-entropy on the task; `noise`: Gaussian noise added to the (unit-norm)
    observations in training; `state_weight` > 0: the state head too (binary cross-entropy of every
    (task, step) being done at the start and at the goal observation, times `state_weight`), and the learned
    planner's decoding adds `set_weight` times the set evidence and `transition_weight` times the transition
    log-probabilities (procvid.forecast.plan). When fitting ends, `export_dir` receives the model folder
    (procvid.forecast.plan.ProcedurePlanner.from_pretrained and `procvid plan` read it) with the graph
    planner's settings `temperature`, `alpha` and the learned planner's default `decode`, `set_weight` and
    `transition_weight`.
    """

    def __init__(self, dim: int = 128, layers: int = 2, heads: int = 4, dropout: float = 0.1, lr: float = 1e-3,
                 weight_decay: float = 0.01, task_weight: float = 0.5, noise: float = 0.05,
                 temperature: float = 0.05, alpha: float = 0.1, decode: str = "graph",
                 state_weight: float = 0.0, set_weight: float = 0.0, transition_weight: float = 0.0,
                 num_threads: int | None = 1, export_dir: str | None = None):
        super().__init__()
        if set_weight and not state_weight:  # the set evidence comes from the state head, trained only then
            raise ProcvidError("model.set_weight needs model.state_weight > 0 (the state head it scores with)")
        self.save_hyperparameters()
        self.net = None

    def setup(self, stage=None):
        if not first_setup(self):
            return
        dm = self.trainer.datamodule
        hp = self.hparams
        self.config = {"input_dim": dm.dim, "num_steps": len(dm.vocab.step_token), "num_tasks": len(dm.vocab.tasks),
                       "max_horizon": dm.hparams.max_horizon, "dim": hp.dim, "layers": hp.layers, "heads": hp.heads,
                       "dropout": hp.dropout, "state": hp.state_weight > 0,
                       "state_dim": dm.state_dim if hp.state_weight > 0 else 0}
        self.net = build_network(**self.config)
        self.net.start_prototypes.copy_(torch.from_numpy(dm.start_prototypes))
        self.net.goal_prototypes.copy_(torch.from_numpy(dm.goal_prototypes))

    def _loss(self, batch, train: bool):
        start, goal, horizon, target, task, done_start, done_goal, state_start, state_goal = batch
        if train and self.hparams.noise:
            start = F.normalize(start + self.hparams.noise * torch.randn_like(start), dim=-1)
            goal = F.normalize(goal + self.hparams.noise * torch.randn_like(goal), dim=-1)
            if self.net.state_dim:  # drawn only then: runs without a state encoder draw the same numbers as before
                state_start = F.normalize(state_start + self.hparams.noise * torch.randn_like(state_start), dim=-1)
                state_goal = F.normalize(state_goal + self.hparams.noise * torch.randn_like(state_goal), dim=-1)
        logits, valid, task_logits = self.net(start, goal, horizon)
        step_loss = F.cross_entropy(logits.flatten(0, 1), target.flatten())
        task_loss = F.cross_entropy(task_logits, task)
        loss = step_loss + self.hparams.task_weight * task_loss
        if self.net.state is not None:
            done = self.net.done_logits(torch.cat([start, goal]), torch.cat([state_start, state_goal]))
            loss = loss + self.hparams.state_weight * F.binary_cross_entropy_with_logits(
                done, torch.cat([done_start, done_goal]))
        right = (logits.argmax(-1) == target) | ~valid
        return loss, right.all(1).float().mean(), (logits.argmax(-1) == target)[valid].float().mean()

    def training_step(self, batch, batch_idx):
        loss, _, _ = self._loss(batch, True)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss, success, acc = self._loss(batch, False)
        self.log_dict({"val/loss": loss, "val/success": success, "val/acc": acc}, prog_bar=True,
                      batch_size=len(batch[0]))

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        return warmup_cosine(opt, self.trainer.estimated_stepping_batches, 100)

    def on_fit_end(self):
        if self.hparams.export_dir and self.trainer.is_global_zero:
            from procvid.checkpoint import data_domain

            dm = self.trainer.datamodule
            hp = self.hparams
            domain = data_domain(dm.hparams.world or dm.hparams.annotations,
                                 default=f"the footage of the features in {dm.hparams.features}")
            state = {"state_encoder": dm.state_encoder, "state_encoder_spec": dm.hparams.state_encoder} \
                if self.config["state_dim"] else {}
            save_planner(hp.export_dir, self.net, dm.vocab, dm.graphs, dm.transitions, self.config, domain,
                         encoder=dm.encoder, encoder_spec=dm.encoder_spec, sampling=dm.sampling, **state,
                         obs_seconds=OBS_SECONDS, dataset=dm.source,
                         settings={"temperature": hp.temperature, "alpha": hp.alpha, "decode": hp.decode,
                                   "set_weight": hp.set_weight, "transition_weight": hp.transition_weight})


MODELS.register("planner", "procedure planner: the steps from a start to a goal observation (learned + graph script)",
                (PlannerModule, PlannerDataModule))
