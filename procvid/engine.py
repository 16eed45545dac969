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
otherwise a local Ray instance starts; either only when actors pay for their start (the driver works
meanwhile, and actors on its own machine get only the cores it leaves idle). ``consume`` must not
depend on how rows are grouped into batches (procvid's encoders pad every forward pass to a fixed size for this), so both
engines write identical outputs.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import os
import queue
import sys
import threading
import time
from collections import defaultdict
from typing import Any, Callable, Iterable, Iterator

from procvid import threads
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
        items = _nonempty(items)  # taken one at a time: `items` may be lazy
        if items is None:
            return
        state, failed = _setup_once(setup, [None])
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
        """`items` may be lazy: a producing thread takes the next one when it is free."""
        source = _nonempty(items)
        if source is None:
            return
        state, failed = _setup_once(setup, [None])
        if failed:
            yield from ((item, None, failed) for item in source)
            return
        lock = threading.Lock()
        items: list = []  # in the order taken; j indexes it

        def take() -> int | None:
            with lock:
                item = next(source, _END)
                if item is _END:
                    return None
                items.append(item)
                return len(items) - 1

        ready: queue.Queue = queue.Queue(maxsize=4 * self.workers)
        stop = threading.Event()
        done, failed, exited = object(), object(), object()

        def producer():
            try:
                while not stop.is_set():
                    j = take()
                    if j is None:
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

        producers = [threading.Thread(target=producer, daemon=True) for _ in range(self.workers)]
        for t in producers:
            t.start()
        outputs: dict[int, list] = defaultdict(list)
        auxes: dict[int, list] = defaultdict(list)
        pending: dict[int, int] = defaultdict(int)  # rows waiting in the buffer
        produced: set[int] = set()
        dead: set[int] = set()
        buffer: list[tuple[int, Any]] = []

        def complete(j: int) -> Iterator[Outcome]:
            if j in dead or j not in produced or pending[j]:
                return
            dead.add(j)  # reported once
            try:
                value = finish(state, items[j], outputs.pop(j, []), auxes.pop(j, []))
                yield items[j], value, ""
            except Exception as e:
                yield items[j], None, error_reason(e)
            pending.pop(j, None)

        def flush() -> Iterator[Outcome]:
            if not buffer:
                return
            result = consume(state, [rows for _, rows in buffer])
            owners = []
            for (j, rows), out in zip(buffer, result):
                if j in dead:  # failed meanwhile: nothing of it is kept
                    continue
                outputs[j].append(out)
                pending[j] -= len(rows)
                owners.append(j)
            buffer.clear()
            for j in dict.fromkeys(owners):
                yield from complete(j)

        left = len(producers)
        try:
            while left:
                j, rows, aux = ready.get()
                if rows is exited:
                    left -= 1
                elif rows is failed:
                    if j not in dead:
                        dead.add(j)
                        outputs.pop(j, None), auxes.pop(j, None)
                        yield items[j], None, aux
                elif rows is done:
                    produced.add(j)
                    yield from complete(j)
                elif j not in dead:
                    buffer.append((j, rows))
                    pending[j] += len(rows)
                    auxes[j].append(aux)
                    if sum(len(r) for _, r in buffer) >= batch_size:
                        yield from flush()
            yield from flush()
        finally:
            stop.set()


_END = object()


def _nonempty(items: Iterable):
    """An iterator over `items` (taken lazily), or None when there is none."""
    source = iter(items)
    first = next(source, _END)
    return None if first is _END else itertools.chain([first], source)


def _local_map(state, error: str, work: Callable, items: list, indices: Iterable[int]) -> Iterator[Outcome]:
    """(index, value, error) per index of `items` (taken lazily), with this process's state."""
    if error:
        yield from ((j, None, error) for j in indices)
        return
    yield from LocalEngine(1).map(lambda state, j: work(state, items[j]), indices, lambda: state)


def _local_map_batched(state, error: str, decode_threads: int, produce: Callable, consume: Callable,
                       finish: Callable, items: list, indices: Iterable[int], batch_size: int) -> Iterator[Outcome]:
    """(index, value, error) per index of `items` (taken lazily): a LocalEngine, so frames are decoded
    in the process that encodes them, and decoding runs ahead across the indices as they come."""
    if error:
        yield from ((j, None, error) for j in indices)
        return
    yield from LocalEngine(decode_threads).map_batched(
        lambda j: produce(items[j]), consume, lambda state, j, outputs, auxes: finish(state, items[j], outputs, auxes),
        indices, lambda: state, batch_size)


def _by_index(outcomes: Iterator[Outcome], n: int) -> list:
    results: list = [None] * n  # by index: items need not be hashable
    for j, value, e in outcomes:
        results[j] = (value, e)
    return results


def _map_group(state, error: str, work: Callable, items: list) -> list:
    """(value, error) per item of one group (an actor's share)."""
    return _by_index(_local_map(state, error, work, items, range(len(items))), len(items))


def _map_batched_group(state, error: str, decode_threads: int, produce: Callable, consume: Callable,
                       finish: Callable, items: list, batch_size: int) -> list:
    """(value, error) per item of one group (an actor's share)."""
    return _by_index(_local_map_batched(state, error, decode_threads, produce, consume, finish, items,
                                        range(len(items)), batch_size), len(items))


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


# Actors start only when the driver alone would need longer than this for the work left: an actor takes
# 6-8 s to start on the 2-core development machine (a process that imports torch and builds the model),
# so for less work they cost more than they bring (80 short videos: 1.48x the local time with actors
# started at once on a running cluster).
ACTORS_AFTER = 10.0
RATE_ITEMS = 5  # the driver's rate is judged after this many of its items
# Without RAY_ADDRESS (or a Ray this process started already) actors also wait for a fresh local instance:
# `ray.init` took 7-13 s on the 2-core machine, its processes competing with the driver meanwhile, so
# Ray is started at all only when the driver alone would need longer than both.
FRESH_RAY_START = 7.0


NO_IDLE_CORES = ("ray: the driver keeps this machine's cores busy and the cluster has no other node: actors "
                 "would only take cores from it, so the driver does the work")


def _idle_cores(cpu_seconds: float, wall_seconds: float, cores: int | None = None) -> int:
    """Cores of this machine the driver left idle while it used `cpu_seconds` of CPU in `wall_seconds`:
    a core counts when at least 3/4 of it was idle (measurements on busy machines are noisy)."""
    busy = cpu_seconds / max(1e-6, wall_seconds)
    return max(0, int((cores or threads.machine_cores()) - busy + 0.25))


def _this_node_only(ray) -> bool:
    """Whether every live node of the cluster is the driver's own machine."""
    here = ray.get_runtime_context().get_node_id()
    return all(node["NodeID"] == here for node in ray.nodes() if node.get("Alive"))


def _ray_start_cost() -> float:
    """Seconds starting Ray would add before any actor could: 0 when it runs or a cluster is given."""
    ray = sys.modules.get("ray")
    if (ray is not None and ray.is_initialized()) or os.environ.get("RAY_ADDRESS"):
        return 0.0
    return FRESH_RAY_START


class RayEngine:
    """Ray core actors, each holding one ``setup()`` state, over groups of items."""

    name = "ray"

    def __init__(self, actors: int | None = None, progress: bool = False, group: int | None = None, workers: int = 1,
                 actors_after: float = ACTORS_AFTER):
        self.actors = actors
        self.actors_after = actors_after  # start actors only when the driver alone needs longer for what is left
        self.workers = workers  # decoding threads of the driver's own share of the work
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
        # about 8 groups per worker (the last group to finish idles the others for up to one group's
        # time), at most 16 items each
        size = self.group or max(1, min(16, -(-n // (8 * actors))))
        return [range(a, min(a + size, n)) for a in range(0, n, size)]

    def _run(self, items: list, setup: Callable | None, remote: Callable, local: Callable) -> Iterator[Outcome]:
        """Hand groups of items to a pool of actors, two groups in flight per actor (none waits for
        its next group), and to this process, which works through groups from the start: starting Ray
        and its actors takes seconds (a fresh instance 7-13 s, each actor imports torch and builds its
        model), time in which the driver would otherwise wait. Yield each group's outcomes as it completes.
        local(state, error, indices) -> (index, value, error) per index: the same work in this process."""
        todo = self._groups(len(items), self.actors or threads.machine_cores())[::-1]
        lock = threading.Lock()
        driver_on = os.environ.get("PROCVID_RAY_DRIVER", "1") != "0"  # 0: all work to the actors (a small head node)
        driven: list[tuple[float, float]] = []  # (wall clock, this process's CPU time) at each driver item
        finished: queue.Queue = queue.Queue()  # (group, results) from the driver's thread, None at its end
        stop = threading.Event()
        crashed: list[BaseException] = []  # what stopped the driver's thread, raised in the caller

        def take():
            with lock:
                return todo.pop() if todo and not stop.is_set() else None

        def driver():
            try:
                if not driver_on:
                    return
                state, error = _setup_once(setup, [None])
                if error:  # the actors build their own state (or report the error themselves)
                    return

                def indices():  # one stream over the groups it takes: decoding runs on across groups
                    while (group := take()) is not None:
                        yield from group

                for j, value, e in local(state, error, indices()):
                    finished.put((j, value, e))
                    driven.append((time.monotonic(), time.process_time()))
            except BaseException as e:  # raised in this process as the local engine would raise it
                crashed.append(e)
            finally:
                finished.put(None)

        thread = threading.Thread(target=driver, daemon=True)
        thread.start()
        self.nodes = {}
        here, driving = "driver", True
        running: dict = {}  # object ref -> (actor, group)
        actors, starting, lost = [], {}, ""
        driver_alone = False  # Ray could not be started or reached: the driver does all the work

        def outcomes(node: str, group: range, results: list) -> Iterator[Outcome]:
            self.nodes[node] = self.nodes.get(node, 0) + len(group)
            for j, (value, error) in zip(group, results):
                log.debug("ray: item %d ran on %s", j, node)
                yield items[j], value, error

        def drain(block: bool) -> Iterator[Outcome]:
            nonlocal driving
            while driving:
                try:
                    got = finished.get(timeout=0.05) if block else finished.get_nowait()
                except queue.Empty:
                    return
                if got is None:
                    driving = False
                    if crashed:
                        raise crashed[0]
                else:
                    j, value, e = got
                    yield from outcomes(here, [j], [(value, e)])
                block = False

        idle = {"cores": None, "at": 0}  # this machine's cores the driver leaves idle; at how many driver items
        said = []  # NO_IDLE_CORES logged already (once per map)

        def actors_pay() -> bool:
            """Whether the driver alone would need longer than actors_after (and a fresh instance's start)
            for the groups left; a fresh instance runs on this machine, so it must also find cores idle.
            A "no" after a rate was judged is judged again once the driver has done twice as many items."""
            if not driver_on or not driving:  # no driver, or it stopped (its setup failed): actors do the rest
                return True
            if driver_alone:
                return False
            n = len(driven)
            if n < RATE_ITEMS or n < 2 * idle["at"]:
                return False  # no rate yet (the first items carry the start-up), or judged too recently
            (t0, cpu0), (t1, cpu1) = driven[0], driven[-1]
            rate = (n - 1) / max(1e-6, t1 - t0)  # items per second, once running
            fresh = _ray_start_cost()
            with lock:
                left = sum(map(len, todo))
            if left / rate <= self.actors_after + fresh:
                return False
            idle["cores"], idle["at"] = _idle_cores(cpu1 - cpu0, t1 - t0), n
            if fresh and not idle["cores"]:
                say_no_idle_cores()
                return False
            return True

        def say_no_idle_cores():
            if not said:
                said.append(True)
                log.info(NO_IDLE_CORES)

        def submit(actor):
            group = take()
            if group is not None:
                running[remote(actor, [items[j] for j in group])] = (actor, group)

        try:
            while todo or running or driving:
                yield from drain(False)
                if not actors and todo and actors_pay():
                    try:
                        ray, count, gpus = self._start()  # only now: the driver's thread works meanwhile
                        if driving and idle["cores"] is not None and _this_node_only(ray):
                            count = min(count, idle["cores"])  # actors here would share the driver's cores
                    except Exception as e:
                        if not driving:  # nobody else to do the work
                            raise
                        log.warning("ray: cannot start or reach Ray (%s); the driver does the work",
                                    error_reason(e).splitlines()[0])
                        driver_alone = True
                        count = 0
                    if not count:
                        if not driver_alone:
                            say_no_idle_cores()
                        continue
                    worker = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(_RayWorker)
                    actors = [worker.remote(setup, 2 if gpus else 1) for _ in range(min(count, len(todo)))]
                    starting = {actor.ready.remote(): actor for actor in actors}
                if starting:
                    up, _ = ray.wait(list(starting), num_returns=len(starting), timeout=0)
                    for ref in up:
                        actor = starting.pop(ref)
                        submit(actor)
                        submit(actor)
                if not running:
                    if not starting and not driving:  # every actor died: what is left fails with the last reason
                        while todo:
                            yield from ((items[j], None, lost or "no Ray actor left") for j in todo.pop())
                        break
                    if starting:
                        ray.wait(list(starting), num_returns=1, timeout=0.05)
                    else:
                        yield from drain(True)
                    continue
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.05 if driving else None)
                if not ready:
                    continue
                actor, group = running.pop(ready[0])
                try:
                    node, results = ray.get(ready[0])
                except Exception as e:  # the actor died (out of memory, a lost node): its group fails
                    lost = error_reason(e).splitlines()[0]
                    yield from ((items[j], None, lost) for j in group)
                    continue
                yield from outcomes(node, group, results)
                submit(actor)
            if self.nodes:
                remote_nodes = {node: n for node, n in self.nodes.items() if node != here}
                log.info("ray: %d items ran on %d node(s): %s", sum(self.nodes.values()), len(remote_nodes),
                         ", ".join([*(f"{n} on {node[:12]}" for node, n in sorted(remote_nodes.items())),
                                    *([f"{self.nodes[here]} in the driver"] if here in self.nodes else [])]))
        finally:
            stop.set()  # the driver's thread takes no further group
            thread.join()
            if actors:
                import ray

                for actor in actors:  # its process and model go now, not when the driver exits
                    ray.kill(actor)

    def map(self, work: Callable, items: Iterable, setup: Callable | None = None) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        fn = _Shipped(work)
        yield from self._run(items, setup, lambda actor, group: actor.map.remote(fn.ref(), group),
                             lambda state, error, indices: _local_map(state, error, work, items, indices))

    def map_batched(self, produce: Callable, consume: Callable, finish: Callable, items: Iterable,
                    setup: Callable, batch_size: int) -> Iterator[Outcome]:
        items = list(items)
        if not items:
            return
        fns = [_Shipped(f) for f in (produce, consume, finish)]
        yield from self._run(
            items, setup, lambda actor, group: actor.map_batched.remote(*(f.ref() for f in fns), group, batch_size),
            lambda state, error, indices: _local_map_batched(state, error, self.workers, produce, consume, finish,
                                                             items, indices, batch_size))


class _Shipped:
    """A function put in Ray's object store once (at its first use, once Ray runs), not with every group."""

    def __init__(self, fn: Callable):
        self.fn, self._ref = fn, None

    def ref(self):
        if self._ref is None:
            import ray

            self._ref = ray.put(self.fn)
        return self._ref


ENGINES = {"local": LocalEngine, "ray": RayEngine}


def make_engine(name: str = "local", workers: int = 2, progress: bool = False):
    """An engine by its CLI name."""
    if name == "local":
        return LocalEngine(workers)
    if name == "ray":
        if importlib.util.find_spec("ray") is None:
            raise ProcvidError("--engine ray needs Ray: pip install -e '.[ray]'")
        return RayEngine(progress=progress, workers=workers)
    raise ProcvidError(f"unknown engine {name!r} (local or ray)")
