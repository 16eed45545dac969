"""Task-graph maximum likelihood by direct optimisation ("DO" of Seminara et al., NeurIPS 2024).

A score matrix W over [beta, START, steps..., END, gamma] gives, by a masked row softmax, A[i, j]: the
weight of j among i's preconditions. For every position of a training sequence, with J the steps done
so far and c the step performed, the TGML loss is
    -log sum_{j in J} A[c, j]  +  beta * log sum_{k not in J} sum_{j in J} A[k, j]
(the performed step should depend on done steps; steps still to do should not). beta/gamma are the
paper's extra boundary tokens that let START and END take part. Training uses Adam (lr 0.1); each epoch
the graph A >= 1 / (K + 2) is checked and training stops once it has explained every training sequence
(the paper's "sequence accuracy" = 1) for `patience` epochs. Identical sequences count once, as there.
"""

from __future__ import annotations

import numpy as np

from procvid.errors import ProcvidError
from procvid.graph.script import END, START
from procvid.registry import GRAPH_METHODS


@GRAPH_METHODS.register("tgml", "task-graph maximum likelihood by gradient descent (DTGL's \"DO\")")
def tgml_scores(sequences: list[list], nodes: list, epochs: int = 1000, lr: float = 0.1, beta: float = 0.005,
                patience: int = 25, seed: int = 42) -> dict:
    """Edge (a, b) -> learned weight A[b, a] for every edge over the threshold at the last epoch."""
    from procvid.threads import torch_threads

    if epochs < 1:
        raise ProcvidError(f"tgml needs at least one epoch, not {epochs}")
    with torch_threads(1):  # the matrices are tiny: threading only adds overhead (and run-to-run noise)
        return _fit(sequences, nodes, epochs, lr, beta, patience, seed)


def _fit(sequences, nodes, epochs, lr, beta, patience, seed) -> dict:
    import torch

    sequences = [list(s) for s in dict.fromkeys(tuple(s) for s in sequences)]
    k = len(nodes)
    size = k + 4  # beta, START, K steps, END, gamma
    index = {node: i + 2 for i, node in enumerate(nodes)}
    prefix, current, owner = [], [], []
    for n, seq in enumerate(sequences):
        full = [0, 1, *(index[s] for s in seq), k + 2, k + 3]
        done = np.zeros(size, bool)
        for i in range(1, len(full) - 1):
            done[full[i - 1]] = True
            prefix.append(done.copy())
            current.append(full[i])
            owner.append(n)
    prefix = np.array(prefix)
    current = np.array(current)
    owner = np.array(owner)
    lengths = np.bincount(owner)

    allowed = _allowed(size)
    mask = torch.tensor(allowed)
    done_t = torch.tensor(prefix, dtype=torch.float64)
    todo_t = 1 - done_t  # steps not yet done, beta and gamma aside
    todo_t[:, [0, -1]] = 0
    rows = torch.arange(len(current))
    cur_t = torch.tensor(current)
    weights = torch.rand(size, size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    weights.requires_grad_(True)
    optimizer = torch.optim.Adam([weights], lr=lr)

    def adjacency():
        return torch.softmax(weights.masked_fill(~mask, -1e9), dim=1) * mask

    threshold = 1.0 / (k + 2)
    best, calm = -np.inf, 0
    for _ in range(epochs):
        optimizer.zero_grad()
        mass = done_t @ (adjacency() + 1e-6).T  # mass[p, i]: weight row i puts on done steps
        loss = (beta * torch.log((todo_t * mass).sum(1)) - torch.log(mass[rows, cur_t])).sum()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            learned = adjacency().numpy()
        pre = learned[1:-1, 1:-1] >= threshold
        if not _is_dag(pre):
            continue
        accuracy = _sequence_accuracy(_complete(pre), prefix[:, 1:-1], current - 1, owner, lengths)
        if accuracy > 0.95:  # the paper's stopping rule, step by step
            if accuracy == 1 and accuracy == best:
                calm += 1
            elif accuracy >= best:
                best, calm = accuracy, 0
            else:
                calm += 1
        if calm == patience:
            break

    names = [START, *nodes, END]
    return {(names[j], names[i]): float(learned[i + 1, j + 1]) for i, j in zip(*np.nonzero(pre))}


def _allowed(size: int) -> np.ndarray:
    """Which (step, precondition) entries exist: START depends only on beta, END only feeds gamma."""
    allowed = np.ones((size, size), bool)
    allowed[0, :] = False  # beta is never performed after anything
    allowed[1, :] = False
    allowed[1, 0] = True  # START's only precondition is beta
    allowed[:, -2:] = False  # nothing depends on END or gamma ...
    allowed[-1, :] = False
    allowed[-1, -2] = True  # ... except gamma on END
    np.fill_diagonal(allowed, False)
    return allowed


def _is_dag(pre: np.ndarray) -> bool:
    """Kahn's algorithm on 'row depends on column'."""
    pending = pre.copy()
    alive = np.ones(len(pre), bool)
    while alive.any():
        free = alive & ~pending.any(axis=1)
        if not free.any():
            return False
        alive &= ~free
        pending[:, free] = False
    return True


def _complete(pre: np.ndarray) -> np.ndarray:
    """Steps with no precondition depend on START; END depends on steps nothing depends on."""
    pre = pre.copy()
    steps = np.arange(1, len(pre) - 1)
    pre[steps[~pre[steps].any(axis=1)], 0] = True
    pre[-1, steps[~pre[:, steps].any(axis=0)]] = True
    return pre


def _sequence_accuracy(pre, done, current, owner, lengths) -> float:
    """Mean over sequences of the per-position share of the step's preconditions already done."""
    preds = pre[current]
    count = preds.sum(1)
    hit = (preds & done).sum(1)
    first = ~done.any(1)
    score = np.where(first, count == 0, np.where(count > 0, hit / np.maximum(count, 1), 0.0))
    return float(np.mean(np.bincount(owner, weights=score) / lengths))
