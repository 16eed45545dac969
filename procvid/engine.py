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
in a pool of Ray actors (one per CPU of the cluster, or one per GPU when it has GPUs), each holding
one ``setup()`` state and handed groups of items: an actor runs a LocalEngine over its group, so
frames are decoded where they are encoded and never cross Ray's object store (passing decoded
frames between tasks cost more than decoding them). Connect to a cluster with RAY_ADDRESS,
otherwise a local Ray instance starts. ``consume`` must not depend on how rows are
grouped into batches (procvid's encoders pad every forward pass to a fixed size for this), so both
engines write identical outputs.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import Any, Callable, Iterable, Iterator

from procvid.errors import ProcvidError, VideoError

log = logging.getLogger(__name__)

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


def _map_group(state, error: str, work: Callable, items: list) -> list:
    """(value, error) per item of one group, with this process's state."""
    if error:
        return [(None, error)] * len(items)
    return [(value, e) for _, value, e in LocalEngine(1).map(work, items, lambda: state)]


def _map_batched_group(state, error: str, decode_threads: int, produce: Callable, consume: Callable,
                       finish: Callable, items: list, batch_size: int) -> list:
    """(value, error) per item of one group: LocalEngine here, so frames are decoded in the process
    that encodes them."""
    if error:
        return [(None, error)] * len(items)
    results: list = [None] * len(items)  # by index: items need not be hashable
    outcomes = LocalEngine(decode_threads).map_batched(
        lambda j: produce(items[j]), consume, lambda state, j, outputs, auxes: finish(state, items[j], outputs, auxes),
        range(len(items)), lambda: state, batch_size)
    for j, value, e in outcomes:
        results[j] = (value, e)
    return results


class _RayWorker:
    """One Ray actor: one ``setup()`` state, reused for every group of items it is handed (one round
    trip per group, not per item)."""

    def __init__(self, setup: Callable | None, decode_threads: int):
        import ray

        self.node = ray.get_runtime_context().get_node_id()
        self.decode_threads = decode_threads
        self.state, self.error = _setup_once(setup, [None])

    def ready(self) -> bool:
        return True

    def map(self, work: Callable, items: list) -> tuple[str, list]:
        return self.node, _map_group(self.state, self.error, work, items)

    def map_batched(self, produce, consume, finish, items: list, batch_size: int) -> tuple[str, list]:
        return self.node, _map_batched_group(self.state, self.error, self.decode_threads, produce, consume, finish,
                                             items, batch_size)


class RayEngine:
    """Ray core actors, each holding one ``setup()`` state, over groups of items."""

    name = "ray"

    def __init__(self, actors: int | None = None, progress: bool = False, group: int | None = None):
        self.actors = actors
        self.progress = progress  # the stage draws its own bar
        self.group = group
        self.nodes: dict[str, int] = {}  # node id -> items that ran there in the last map

    def _start(self):
        import ray

        if not ray.is_initialized():
            # without RAY_ADDRESS a fresh local instance, never whichever cluster `ray start` left
            # running on this machine (Ray's own default joins it)
            ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        resources = ray.cluster_resources()
        gpus = int(resources.get("GPU", 0))
        # one actor per GPU, else per CPU: each decodes and encodes its own items
        actors = self.actors or (gpus if gpus else max(1, int(resources.get("CPU", 1))))
        return ray, actors, gpus

    def _groups(self, n: int, actors: int) -> list[range]:
        # about 8 groups per actor (the last group to finish idles the others for up to one group's
        # time), at most 16 items each
        size = self.group or max(1, min(16, -(-n // (8 * actors))))
        return [range(a, min(a + size, n)) for a in range(0, n, size)]

    def _run(self, items: list, setup: Callable | None, remote: Callable) -> Iterator[Outcome]:
        """Hand groups of items to a pool of actors, two groups in flight per actor (none waits
        for its next group); yield each group's outcomes as it completes."""
        ray, count, gpus = self._start()
        worker = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(_RayWorker)
        actors = [worker.remote(setup, 2 if gpus else 1) for _ in range(min(count, len(items)))]
        starting = {actor.ready.remote(): actor for actor in actors}
        todo = self._groups(len(items), len(actors))[::-1]
        running: dict = {}  # object ref -> (actor, group)
        lost = ""
        self.nodes = {}

        def submit(actor):
            if todo:
                group = todo.pop()
                running[remote(actor, [items[j] for j in group])] = (actor, group)

        def outcomes(node: str, group: range, results: list) -> Iterator[Outcome]:
            self.nodes[node] = self.nodes.get(node, 0) + len(group)
            for j, (value, error) in zip(group, results):
                log.debug("ray: item %d ran on %s", j, node)
                yield items[j], value, error

        try:
            while todo or running:
                if starting:
                    up, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
                    for ref in up:
                        actor = starting.pop(ref)
                        submit(actor)
                        submit(actor)
                if not running:
                    if not starting:  # every actor died: what is left fails with the last reason
                        while todo:
                            yield from ((items[j], None, lost or "no Ray actor left") for j in todo.pop())
                        break
                    ray.wait(list(starting), num_returns=1)  # nothing to do until an actor is up
                    continue
                [ref], _ = ray.wait(list(running), num_returns=1)
                actor, group = running.pop(ref)
                try:
                    node, results = ray.get(ref)
                except Exception as e:  # the actor died (out of memory, a lost node): its group fails
                    lost = error_reason(e).splitlines()[0]
                    yield from ((items[j], None, lost) for j in group)
                    continue
                yield from outcomes(node, group, results)
                submit(actor)
            if self.nodes:
                log.info("ray: %d items ran on %d node(s): %s", sum(self.nodes.values()), len(self.nodes),
                         ", ".join(f"{n} on {node[:12]}" for node, n in sorted(self.nodes.items())))
        finally:
            for actor in actors:  # its process and encoder go now, not when the driver exits
                ray.kill(actor)

    def map(self, work: Callable, items: Iterable, setup: Callable | None = None) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        ray = self._start()[0]
        fn = ray.put(work)  # shipped once, not with every group
        yield from self._run(items, setup, lambda actor, group: actor.map.remote(fn, group))

    def map_batched(self, produce: Callable, consume: Callable, finish: Callable, items: Iterable,
                    setup: Callable, batch_size: int) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        ray = self._start()[0]
        fns = [ray.put(f) for f in (produce, consume, finish)]  # shipped once, not with every group
        yield from self._run(items, setup, lambda actor, group: actor.map_batched.remote(*fns, group, batch_size))


ENGINES = {"local": LocalEngine, "ray": RayEngine}


def make_engine(name: str = "local", workers: int = 2, progress: bool = False):
    """An engine by its CLI name."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        return RayEngine(progress=progress)
    raise ProcvidError(f"unknown engine {name!r} (local or ray)")
