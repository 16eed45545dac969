"""What procvid's data modules share: a validation split and, for those that read a synthetic world,
creating the world when it is missing and the data loaders."""

import lightning as L
import numpy as np
from torch.utils.data import DataLoader


def validation_mask(n: int, fraction: float, seed: int, at_least_one: bool = True) -> np.ndarray:
    """Which of n items (videos, sequences) are held out: round(fraction * n) of them drawn with
    `seed`, at least one when `at_least_one` and there are two or more."""
    count = int(round(fraction * n))
    if at_least_one and n > 1:
        count = max(1, count)
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[:count]] = True
    return mask


class SyntheticWorldDataModule(L.LightningDataModule):
    """Subclasses take `world`, `num_videos` and `world_seed` hyperparameters; a missing world is
    generated from them (none when `world` is None), so a training run is reproducible from its config
    alone. They also take `batch_size` and `num_workers` and set `train_set` / `val_set` in setup."""

    DROP_LAST = True  # of the last, smaller training batch
    VAL_BATCH_SIZE = 512

    def prepare_data(self):
        from procvid.data.synthetic import ensure_world

        hp = self.hparams
        if hp.world is not None:
            ensure_world(hp.world, hp.num_videos, hp.world_seed)

    def train_dataloader(self):
        return DataLoader(self.train_set, batch_size=self.hparams.batch_size, shuffle=True, drop_last=self.DROP_LAST,
                          num_workers=self.hparams.num_workers)

    def val_dataloader(self):
        return DataLoader(self.val_set, batch_size=self.VAL_BATCH_SIZE, num_workers=self.hparams.num_workers)
