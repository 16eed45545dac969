"""procvid.engine on toy functions (no procvid stage): LocalEngine and RayEngine run `map` and
`map_batched` with one setup() per worker, record a failing item's reason while the others complete,
hand finish() every output of its item in order, and give the same values.

The toy functions are defined inside `toys()` so that Ray ships them by value to its workers (the
test modules are not importable there)."""

from __future__ import annotations

import os

import pytest

from procvid.engine import LocalEngine, RayEngine

# rows each item's produce() yields, chunk by chunk: different sizes within and across items, an item
# with no rows, one whose produce() fails after its first chunk (x), one whose finish() fails (f)
CHUNKS = {"a": [3, 1, 4], "b": [2], "c": [5, 5], "d": [], "e": [1, 1, 1, 1, 1, 1, 1], "x": [2, 2, 2], "f": [4]}
GOOD = ["a", "b", "c", "d", "e"]
BATCH = 6


@pytest.fixture(scope="module")
def ray_started():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def make_engine(name, request):
    if name == "ray":
        request.getfixturevalue("ray_started")
        return RayEngine()
    return LocalEngine(workers=2)


_RUNS: dict[str, dict] = {}


def run_toys(name, request) -> dict:
    """An engine's outcomes of one `map` and one `map_batched` over the toy items, computed once per
    engine and checked by several tests (each Ray Data run costs seconds)."""
    if name not in _RUNS:
        engine = make_engine(name, request)
        setup, square, _, produce, consume, finish = toys()
        _RUNS[name] = {"engine": name, "map": by_item(engine.map(square, range(8), setup)),
                       "batched": by_item(engine.map_batched(produce, consume, finish, list(CHUNKS), setup, BATCH))}
    return _RUNS[name]


ENGINE_NAMES = ["local", pytest.param("ray", marks=pytest.mark.slow)]  # Ray: seconds per run


@pytest.fixture(params=ENGINE_NAMES)
def runs(request):
    return run_toys(request.param, request)


@pytest.fixture(params=ENGINE_NAMES)
def engine(request):
    return make_engine(request.param, request)


def toys():
    import os
    import uuid

    import numpy as np

    def setup():
        return {"token": f"{os.getpid()}-{uuid.uuid4().hex}"}  # unique per call

    def square(state, x):
        if x == 3:
            raise ValueError("three is bad")
        return state["token"], x * x

    def rows_of(item):
        """The rows of `item` in order: they name their item (offset) and position."""
        return 1000 * (ord(item) - ord("a")) + np.arange(sum(CHUNKS[item]))

    def produce(item):
        rows, start = rows_of(item), 0
        for k, n in enumerate(CHUNKS[item]):
            if item == "x" and k == 1:
                raise RuntimeError("decoder gave up")
            yield rows[start:start + n], 10 * k + n
            start += n

    def consume(state, chunks):
        assert isinstance(chunks, list) and all(isinstance(c, np.ndarray) and c.ndim == 1 for c in chunks)
        return [-c for c in chunks]  # one output per chunk

    def finish(state, item, outputs, auxes):
        if item == "f":
            raise KeyError("cannot write f")
        values = np.concatenate(outputs).tolist() if outputs else []
        return state["token"], values, [int(a) for a in auxes], [len(o) for o in outputs]

    return setup, square, rows_of, produce, consume, finish


def by_item(outcomes):
    result = {}
    for item, value, error in outcomes:
        assert item not in result, f"{item} reported twice"
        result[item] = (value, error)
    return result


def test_map_sets_up_once_per_worker_and_a_failing_item_fails_alone(runs):
    results = runs["map"]
    assert sorted(results) == list(range(8))
    assert results[3] == (None, "ValueError: three is bad")
    assert all(results[x][1] == "" and results[x][0][1] == x * x for x in results if x != 3)
    tokens = {results[x][0][0] for x in results if x != 3}
    # one state per worker, reused: the local engine has one, Ray one per actor (two on 2 CPUs) and the driver's
    assert len(tokens) == 1 if runs["engine"] == "local" else 1 <= len(tokens) <= 3


def test_map_batched_gives_finish_every_output_of_its_item_in_order(runs):
    _, _, rows_of, *_ = toys()
    results = runs["batched"]
    assert sorted(results) == sorted(CHUNKS)
    for item in GOOD:
        (_, values, auxes, _), error = results[item]
        assert error == ""
        assert values == (-rows_of(item)).tolist(), item  # every row's output, in the item's order
        assert auxes == [10 * k + n for k, n in enumerate(CHUNKS[item])], item  # every aux, in order
    tokens = {results[item][0][0] for item in GOOD}
    assert len(tokens) == 1 if runs["engine"] == "local" else 1 <= len(tokens) <= 3


def test_map_batched_failures_stay_with_their_item(runs):
    """produce() raising after its first chunk fails only its item (x); so does finish() raising (f)."""
    results = runs["batched"]
    assert results["x"] == (None, "RuntimeError: decoder gave up")
    assert results["f"] == (None, "KeyError: 'cannot write f'")
    assert all(results[item][1] == "" for item in GOOD)


def test_finish_gets_one_output_per_produced_chunk(runs, request):
    for item in GOOD:
        assert runs["batched"][item][0][3] == CHUNKS[item], item


@pytest.mark.slow
def test_local_and_ray_give_the_same_values(request):
    def values(runs):  # without the per-worker tokens; Ray hands tuples back as lists
        mapped = {x: (list(v)[1:] if v is not None else None, e) for x, (v, e) in runs["map"].items()}
        batched = {item: (list(v)[1:3] if v is not None else None, e) for item, (v, e) in runs["batched"].items()}
        return mapped, batched

    assert values(run_toys("local", request)) == values(run_toys("ray", request))


@pytest.mark.slow
def test_ray_driver_works_while_the_actors_start_and_beside_them(ray_started, monkeypatch):
    """The driver takes groups from the start (Ray and its actors take seconds to come up), then
    shares the rest with the actors; every item once, values as the local engine gives them."""
    import time

    def setup():
        return os.getpid()

    def slow_square(pid, x):
        time.sleep(0.2)
        return pid, x * x

    import procvid.engine as engine_module

    monkeypatch.setattr(engine_module.threads, "machine_cores", lambda: 4)  # cores to spare whatever runs this test
    engine = RayEngine(actors_after=0.0)  # actors once the driver has done a group, however little is left
    results = by_item(engine.map(slow_square, range(60), setup))
    assert sorted(results) == list(range(60))
    assert all(v[1] == x * x and e == "" for x, (v, e) in results.items())
    pids = {v[0] for v, _ in results.values()}
    assert os.getpid() in pids and len(pids) >= 2, pids  # the driver and at least one actor
    assert "driver" in engine.nodes and len(engine.nodes) >= 2


@pytest.mark.slow
def test_ray_actors_on_the_drivers_only_machine_get_only_its_idle_cores(ray_started, monkeypatch, caplog):
    """A running cluster whose only node is this machine: with the driver keeping its one core busy, no
    actor starts (it would only take the core from the driver)."""
    import logging

    import procvid.engine as engine_module

    from helpers import busy

    monkeypatch.setattr(engine_module.threads, "machine_cores", lambda: 1)

    engine = RayEngine(actors_after=0.0)
    with caplog.at_level(logging.INFO, logger="procvid.engine"):
        results = by_item(engine.map(busy, range(30), None))  # the driver keeps the one core busy
    assert {x: v for x, (v, _) in results.items()} == {x: x for x in range(30)}
    assert engine.nodes == {"driver": 30} and engine_module.NO_IDLE_CORES in caplog.text


def test_map_with_a_failing_setup_fails_every_item_with_its_reason(engine):
    def setup():
        raise OSError("no model here")

    def work(state, x):
        return x

    results = by_item(engine.map(work, ["p", "q"], setup))
    assert results == {"p": (None, "OSError: no model here"), "q": (None, "OSError: no model here")}


def test_map_without_setup_and_without_items(engine):
    results = by_item(engine.map(lambda state, x: [state, x + 1], [1, 2]))
    assert {x: (list(v), e) for x, (v, e) in results.items()} == {1: ([None, 2], ""), 2: ([None, 3], "")}
    assert list(engine.map(lambda state, x: x, [], None)) == []


def test_map_batched_with_a_failing_setup_fails_every_item(engine):
    _, _, _, produce, consume, finish = toys()

    def setup():
        raise RuntimeError("no device")

    results = by_item(engine.map_batched(produce, consume, finish, ["a", "b"], setup, BATCH))
    assert results == {"a": (None, "RuntimeError: no device"), "b": (None, "RuntimeError: no device")}


def test_local_map_calls_setup_once():
    calls = []
    setup = lambda: calls.append(1) or {"n": len(calls)}  # noqa: E731
    results = by_item(LocalEngine().map(lambda state, x: state["n"], range(5), setup))
    assert calls == [1] and {v for v, _ in results.values()} == {1}


def test_local_map_calls_a_setup_returning_none_once():
    calls = []
    results = by_item(LocalEngine().map(lambda state, x: x, range(3), lambda: calls.append(1)))
    assert all(error == "" for _, error in results.values())
    assert calls == [1]


def test_local_map_batched_batches_rows_of_several_items():
    """consume() gets lists of chunks that mix items (one decoding thread: a deterministic order)."""
    setup, _, _, produce, consume, finish = toys()
    calls = []

    def recording_consume(state, chunks):
        calls.append([int(c[0]) // 1000 for c in chunks])  # the item of each chunk
        return consume(state, chunks)

    results = by_item(LocalEngine(workers=1).map_batched(produce, recording_consume, finish, ["a", "b", "c"],
                                                         setup, BATCH))
    assert all(error == "" for _, error in results.values())
    assert any(len(set(owners)) > 1 for owners in calls), calls
    assert sorted(owner for owners in calls for owner in owners) == [0, 0, 0, 1, 2, 2]  # each chunk once
