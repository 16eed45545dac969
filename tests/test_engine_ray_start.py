"""RayEngine's choice to start Ray at all (in a module of its own: other modules' Ray instances are shut
down by the time it runs)."""

from __future__ import annotations

import pytest

import procvid.engine as engine_module
from procvid.engine import RayEngine


def test_ray_engine_starts_no_fresh_ray_for_work_the_driver_finishes_sooner(monkeypatch):
    """Without RAY_ADDRESS, a fresh Ray instance is started only when the driver alone would need longer
    than the actors' and the instance's start-up: short work runs in the driver, Ray never initialised."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance of another test is running")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert engine_module._ray_start_cost() == engine_module.FRESH_RAY_START
    engine = RayEngine()
    results = {x: v for x, v, _ in engine.map(lambda state, x: x * x, range(20), None)}
    assert results == {x: x * x for x in range(20)}
    assert engine.nodes == {"driver": 20} and not ray.is_initialized()
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # a given cluster: only the actors' start-up counts
    assert engine_module._ray_start_cost() == 0.0


def test_a_fresh_ray_instance_is_not_started_when_the_driver_keeps_the_cores_busy(monkeypatch, caplog):
    """A fresh instance runs on this machine: with no core left idle by the driver its actors would only
    take cores from it, however much work is left."""
    import logging
    import time

    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("a Ray instance of another test is running")
    monkeypatch.setattr(engine_module, "_ray_start_cost", lambda: 1e-3)  # fresh, and starting it costs nothing
    monkeypatch.setattr(engine_module.os, "cpu_count", lambda: 1)

    def busy(state, x):  # CPU-bound: the driver keeps the machine's one core busy
        end = time.process_time() + 0.02
        while time.process_time() < end:
            pass
        return x

    engine = RayEngine(actors_after=0.0)
    with caplog.at_level(logging.INFO, logger="procvid.engine"):
        results = {x: v for x, v, _ in engine.map(busy, range(30), None)}
    assert results == {x: x for x in range(30)}
    assert engine.nodes == {"driver": 30} and not ray.is_initialized()
    assert engine_module.NO_IDLE_CORES in caplog.text
