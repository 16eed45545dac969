"""Base for data modules that read a synthetic world and create it when it is missing."""

from pathlib import Path

import lightning as L


class SyntheticWorldDataModule(L.LightningDataModule):
    """Subclasses take `world`, `num_videos` and `world_seed` hyperparameters; a missing world is
    generated from them, so a training run is reproducible from its config alone."""

    def prepare_data(self):
        from procvid.data.synthetic import generate_world

        hp = self.hparams
        if not (Path(hp.world) / "videos.csv").exists():
            generate_world(hp.world, num_videos=hp.num_videos, seed=hp.world_seed)
