"""torch's CPU threads: one policy for every stage.

Small models (the SBD predictor, the forecaster, TGML's matrices, the shipped generator) run a forward
pass per video on tiny tensors: starting threads costs more than it saves, and far more when the cores
are busy with other work (the forecaster: 2.8 ms per video on one thread, 37 ms on two on the shared
2-core machine). Encoding while decoding threads run ahead uses the cores the decoders leave.
"""

from __future__ import annotations

import os
from contextlib import contextmanager


@contextmanager
def torch_threads(n: int | None):
    """Run with `n` torch CPU threads (None: leave torch's setting), restored afterwards."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def machine_cores() -> int:
    """The cores this process may run on (its affinity, which containers and taskset narrow)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def encode_threads(workers: int, cpus: int | None = None) -> int:
    """torch's CPU threads while `workers` threads decode ahead: the cores they leave (at least one).
    On 2 cores a second torch thread only fights the decoders: every encoder measured ran as fast or
    faster with one (the same vectors either way: fixed-size passes)."""
    return max(1, (cpus or machine_cores()) - workers)
