"""What every procvid training run shares: the learning-rate schedule (linear warm-up, then cosine decay)
and the guard of a LightningModule's first setup."""

from __future__ import annotations

import math

import torch


def warmup_cosine(opt: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 0, floor: float = 0.0) -> dict:
    """Lightning's optimizer config for `opt`: the factor rises linearly over `warmup_steps` (at most half
    the run), then falls along a cosine from 1 to `floor` at `total_steps`, stepped every batch."""
    total = max(1, total_steps)
    warm = min(warmup_steps, total // 2)

    def schedule(step):  # plain floats: numpy scalars in the scheduler state break weights-only loading
        if step < warm:
            return (step + 1) / max(1, warm)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

    return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, schedule),
                                               "interval": "step"}}


def first_setup(module) -> bool:
    """Whether a LightningModule's setup() still has its network (`module.net`) to build: Lightning calls
    setup once per stage. The first time, torch gets the run's CPU threads (`hparams.num_threads`)."""
    if module.net is not None:
        return False
    if module.hparams.num_threads:
        torch.set_num_threads(module.hparams.num_threads)
    return True
