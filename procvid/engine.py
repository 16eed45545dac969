"""Engines run a stage's per-item work; they know no stage.

A stage hands an engine plain functions and its items:

- ``engine.map(work, items, setup)``: ``work(state, item) -> value`` for every item, where
  ``state = setup()`` is built once per worker (a detector, an encoder) and reused.
- ``engine.map_batched(produce, consume, finish, items, setup, batch_size)``: a two-step job whose
  second step is worth batching (decode frames, then encode them). ``produce(item)`` yields
  ``(rows, aux)`` chunks (CPU work, no state); ``consume(state, chunks) -> outputs`` turns a
  list of row chunks (possibly of several items) into one output per chunk;
  ``finish(state, item, outputs, auxes)`` gets all of one item's outputs in order and writes its
  results.

Both yield ``(item, value, error)`` per item as items complete; ``error`` is "" on success, else
the reason (the item's exception), so one bad input never stops a batch.

:class:`LocalEngine` works in this process: ``produce`` in ``workers`` threads that run ahead,
``consume`` on batches that mix rows of several items. :class:`RayEngine` runs the same functions
on Ray Data: ``produce`` in CPU tasks, ``consume``/``finish`` in a pool of actors that each hold
one ``setup()`` state (one GPU per actor when the cluster has GPUs); connect to a cluster with
RAY_ADDRESS, otherwise a local Ray instance starts. ``consume`` must not depend on how rows are
grouped into batches (procvid's encoders pad every forward pass to a fixed size for this), so both
engines write identical outputs.
"""

from __future__ import annotations

import os
import queue
import threading
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from procvid.errors import ProcvidError, VideoError

Outcome = tuple[Any, Any, str]  # (item, value, error reason or "")


def error_reason(e: BaseException) -> str:
    """The one-line reason recorded for a failed item."""
    if isinstance(e, VideoError):
        return e.reason
    if isinstance(e, ProcvidError):
        return str(e)
    return f"{type(e).__name__}: {e}"


def _setup_once(setup: Callable | None, items: list) -> tuple[Any, str]:
    """(state, "") from one call of setup, or (None, its error reason): then every item fails with it."""
    if setup is None or not items:
        return None, ""
    try:
        return setup(), ""
    except Exception as e:
        return None, error_reason(e)


class LocalEngine:
    """This process: ``workers`` threads produce ahead of the consuming (main) thread."""

    name = "local"

    def __init__(self, workers: int = 2):
        if workers < 1:
            raise ProcvidError(f"workers must be at least 1, got {workers}")
        self.workers = workers

    def map(self, work: Callable, items: Iterable, setup: Callable | None = None) -> Iterator[Outcome]:
        items = list(items)
        state, failed = _setup_once(setup, items)
        for item in items:
            if failed:
                yield item, None, failed
                continue
            try:
                yield item, work(state, item), ""
            except Exception as e:  # recorded per item; the batch goes on
                yield item, None, error_reason(e)

    def map_batched(self, produce: Callable, consume: Callable, finish: Callable, items: Iterable,
                    setup: Callable, batch_size: int) -> Iterator[Outcome]:
        items = list(items)
        state, failed = _setup_once(setup, items)
        if failed:
            yield from ((item, None, failed) for item in items)
            return
        todo: queue.Queue = queue.Queue()
        for j in range(len(items)):
            todo.put(j)
        ready: queue.Queue = queue.Queue(maxsize=4 * self.workers)
        stop = threading.Event()
        done, failed, exited = object(), object(), object()

        def producer():
            try:
                while not stop.is_set():
                    try:
                        j = todo.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        for rows, aux in produce(items[j]):
                            if stop.is_set():
                                return
                            ready.put((j, rows, aux))
                        ready.put((j, done, None))
                    except Exception as e:  # recorded for this item; the others go on
                        ready.put((j, failed, error_reason(e)))
            finally:
                ready.put((None, exited, None))

        threads = [threading.Thread(target=producer, daemon=True) for _ in range(min(self.workers, len(items)))]
        for t in threads:
            t.start()
        outputs = [[] for _ in items]
        auxes = [[] for _ in items]
        pending = [0] * len(items)  # rows waiting in the buffer
        produced = [False] * len(items)
        dead = [False] * len(items)
        buffer: list[tuple[int, Any]] = []

        def complete(j: int) -> Iterator[Outcome]:
            if dead[j] or not produced[j] or pending[j]:
                return
            dead[j] = True  # reported once
            try:
                value = finish(state, items[j], outputs[j], auxes[j])
                yield items[j], value, ""
            except Exception as e:
                yield items[j], None, error_reason(e)
            outputs[j], auxes[j] = [], []

        def flush() -> Iterator[Outcome]:
            if not buffer:
                return
            result = consume(state, [rows for _, rows in buffer])
            owners = []
            for (j, rows), out in zip(buffer, result):
                outputs[j].append(out)
                pending[j] -= len(rows)
                owners.append(j)
            buffer.clear()
            for j in dict.fromkeys(owners):
                yield from complete(j)

        left = len(threads)
        try:
            while left:
                j, rows, aux = ready.get()
                if rows is exited:
                    left -= 1
                elif rows is failed:
                    if not dead[j]:
                        dead[j] = True
                        yield items[j], None, aux
                elif rows is done:
                    produced[j] = True
                    yield from complete(j)
                elif not dead[j]:
                    buffer.append((j, rows))
                    pending[j] += len(rows)
                    auxes[j].append(aux)
                    if sum(len(r) for _, r in buffer) >= batch_size:
                        yield from flush()
            yield from flush()
        finally:
            stop.set()


class RayEngine:
    """Ray Data: CPU tasks for ``produce``, an actor pool holding ``setup()`` states for the rest."""

    name = "ray"

    def __init__(self, actors: int | None = None, progress: bool = False):
        self.actors = actors
        self.progress = progress

    def _start(self):
        import ray
        import ray.data

        if not ray.is_initialized():
            ray.init(address=os.environ.get("RAY_ADDRESS"), include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        ray.data.DataContext.get_current().enable_progress_bars = self.progress
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        actors = self.actors or (gpus if gpus else max(1, min(2, int(resources.get("CPU", 1)))))
        return ray.data, ray.data.ActorPoolStrategy(size=actors), 1 if gpus else 0

    def map(self, work: Callable, items: Iterable, setup: Callable | None = None) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        data, pool, gpus = self._start()

        class Worker:
            def __init__(self):
                self.state, self.error = None, ""
                try:
                    self.state = setup() if setup is not None else None
                except Exception as e:
                    self.error = error_reason(e)

            def __call__(self, row: dict) -> dict:
                if self.error:
                    return {"i": row["i"], "value": None, "error": self.error}
                try:
                    return {"i": row["i"], "value": work(self.state, items[row["i"]]), "error": ""}
                except Exception as e:
                    return {"i": row["i"], "value": None, "error": error_reason(e)}

        ds = data.from_items([{"i": i} for i in range(len(items))]).map(Worker, compute=pool, num_gpus=gpus)
        for row in ds.iter_rows():
            yield items[row["i"]], row["value"], row["error"]

    def map_batched(self, produce: Callable, consume: Callable, finish: Callable, items: Iterable,
                    setup: Callable, batch_size: int) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        data, pool, gpus = self._start()

        def produce_all(row: dict) -> dict:
            try:
                chunks = list(produce(items[row["i"]]))
                rows = np.concatenate([c[0] for c in chunks]) if chunks else np.zeros((0,), np.uint8)
                return {"i": row["i"], "rows": rows, "sizes": [len(c[0]) for c in chunks],
                        "aux": [c[1] for c in chunks], "error": ""}
            except Exception as e:
                return {"i": row["i"], "rows": np.zeros((0,), np.uint8), "sizes": [], "aux": [],
                        "error": error_reason(e)}

        class Worker:
            def __init__(self):
                self.state, self.error = None, ""
                try:
                    self.state = setup()
                except Exception as e:
                    self.error = error_reason(e)

            def __call__(self, row: dict) -> dict:
                error = row["error"] or self.error
                if error:
                    return {"i": row["i"], "value": None, "error": error}
                try:
                    rows, bounds = row["rows"], np.cumsum([0, *row["sizes"]])
                    outputs = consume(self.state, [rows[a:b] for a, b in zip(bounds[:-1], bounds[1:])])
                    value = finish(self.state, items[row["i"]], outputs, list(row["aux"]))
                    return {"i": row["i"], "value": value, "error": ""}
                except Exception as e:
                    return {"i": row["i"], "value": None, "error": error_reason(e)}

        ds = (data.from_items([{"i": i} for i in range(len(items))])
              .map(produce_all)
              .map(Worker, compute=pool, num_gpus=gpus))
        for row in ds.iter_rows():
            yield items[row["i"]], row["value"], row["error"]


ENGINES = {"local": LocalEngine, "ray": RayEngine}


def make_engine(name: str = "local", workers: int = 2, progress: bool = False):
    """An engine by its CLI name."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(progress=progress)
    raise ProcvidError(f"unknown engine {name!r} (local or ray)")
