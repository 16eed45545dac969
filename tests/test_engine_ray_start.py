"""RayEngine's choice to start Ray at all (in a module of its own: other modules' Ray instances are shut
down by the time it runs)."""

from __future__ import annotations

import logging
import time

import pytest
from helpers import busy

import procvid.engine as engine_module
from procvid.engine import RayEngine


@pytest.fixture
def no_ray_running(monkeypatch):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance of another test is running")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ray


def test_idle_cores_counts_the_cores_the_driver_leaves_three_quarters_idle():
    assert engine_module._idle_cores(1.9, 1.0, cores=2) == 0
    assert engine_module._idle_cores(1.0, 1.0, cores=2) == 1
    assert engine_module._idle_cores(0.8, 1.0, cores=2) == 1
    assert engine_module._idle_cores(0.1, 1.0, cores=4) == 4
    assert engine_module._idle_cores(0.5, 1.0, cores=4) == 3
    assert engine_module._idle_cores(3.0, 1.0, cores=2) == 0
    assert 1 <= engine_module.threads.machine_cores()


def test_ray_start_cost_counts_a_fresh_instance_only(no_ray_running, monkeypatch):
    assert engine_module._ray_start_cost() == engine_module.FRESH_RAY_START
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # a given cluster: only the actors' start-up counts
    assert engine_module._ray_start_cost() == 0.0


def test_no_fresh_ray_for_work_the_driver_finishes_before_ray_would_start(no_ray_running, monkeypatch):
    """Actors would pay at once (actors_after=0) but for a fresh instance's start-up: under a second
    of work is left, so the driver does it all and Ray is never initialised."""
    monkeypatch.setattr(engine_module.threads, "machine_cores", lambda: 8)  # idle cores: only the cost decides

    def nap(state, x):
        time.sleep(0.01)
        return x * x

    engine = RayEngine(actors_after=0.0)
    results = {x: v for x, v, _ in engine.map(nap, range(40), None)}
    assert results == {x: x * x for x in range(40)}
    assert engine.nodes == {"driver": 40} and not no_ray_running.is_initialized()


def test_a_fresh_ray_instance_is_not_started_when_the_driver_keeps_the_cores_busy(no_ray_running, monkeypatch,
                                                                                   caplog):
    """A fresh instance runs on this machine: with no core left idle by the driver its actors would only
    take cores from it, however much work is left."""
    monkeypatch.setattr(engine_module, "_ray_start_cost", lambda: 1e-3)  # fresh, and starting it costs nothing
    monkeypatch.setattr(engine_module.threads, "machine_cores", lambda: 1)
    engine = RayEngine(actors_after=0.0)
    with caplog.at_level(logging.INFO, logger="procvid.engine"):
        results = {x: v for x, v, _ in engine.map(busy, range(30), None)}
    assert results == {x: x for x in range(30)}
    assert engine.nodes == {"driver": 30} and not no_ray_running.is_initialized()
    assert caplog.text.count(engine_module.NO_IDLE_CORES) == 1  # said once, though judged again


def test_ray_that_cannot_start_leaves_the_work_to_the_driver(no_ray_running, monkeypatch, caplog):
    def fail(self):
        raise ConnectionError("no cluster at 10.0.0.1:6379")

    monkeypatch.setattr(RayEngine, "_start", fail)
    monkeypatch.setattr(engine_module, "_ray_start_cost", lambda: 0.0)
    engine = RayEngine(actors_after=0.0)
    with caplog.at_level(logging.WARNING, logger="procvid.engine"):
        results = {x: (v, e) for x, v, e in engine.map(busy, range(20), None)}
    assert results == {x: (x, "") for x in range(20)} and engine.nodes == {"driver": 20}
    assert "cannot start or reach Ray (ConnectionError: no cluster at 10.0.0.1:6379)" in caplog.text
