"""--engine ray (Ray Data on a local 2-CPU instance) gives the same outputs as the local engine,
on the shared real clips and on synthetic videos."""

import json

import pytest

from procvid.cli import main

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(videos_dir, tmp_path_factory):
    from procvid.data.synthetic import generate_world

    world = tmp_path_factory.mktemp("world")
    generate_world(world, num_videos=3, seed=5, size=64, min_duration=20, max_duration=25, progress=False)
    return [str(videos_dir), str(world / "videos")]


def _run(engine, inputs, out):
    assert main(["segment", *inputs, "--out", str(out), "--method", "uvd", "--engine", engine,
                 "--no-progress"]) == 0


def test_ray_and_local_outputs_are_identical(inputs, tmp_path):
    _run("local", inputs, tmp_path / "local")
    _run("ray", inputs, tmp_path / "ray")
    local = sorted((tmp_path / "local").rglob("*.segments.json"))
    assert len(local) == 13
    for f in local:
        twin = tmp_path / "ray" / f.relative_to(tmp_path / "local")
        a, b = json.loads(f.read_text()), json.loads(twin.read_text())
        assert a["segments"] == b["segments"] and a["timestamps"] == b["timestamps"], f.name
        fa = json.loads((tmp_path / "local" / "features" / f.relative_to(tmp_path / "local")).with_name(
            f.name.replace(".segments.json", ".json")).read_text())
        fb = json.loads((tmp_path / "ray" / "features" / f.relative_to(tmp_path / "local")).with_name(
            f.name.replace(".segments.json", ".json")).read_text())
        assert fa["tensor_sha1"] == fb["tensor_sha1"]  # bit-identical embeddings
    # a rerun on Ray skips everything (idempotent per video)
    _run("ray", inputs, tmp_path / "ray")
