"""--engine ray (Ray Data on a local 2-CPU instance) gives the same outputs as the local engine,
on the shared real clips and on synthetic videos, and a rerun on Ray redoes nothing."""

import json

import pytest

from helpers import file_stamps, write_world
from procvid.cli import main

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


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


def _segment(engine, inputs, out, capsys):
    capsys.readouterr()
    assert main(["segment", *inputs, "--out", str(out), "--method", "uvd", "--encoder", "video", "--engine", engine,
                 "--no-progress"]) == 0
    return capsys.readouterr().out


def test_ray_and_local_outputs_are_identical_and_a_ray_rerun_redoes_nothing(inputs, tmp_path, capsys):
    assert "13 videos: 13 processed, 0 already done, 0 failed" in _segment("local", inputs, tmp_path / "local", capsys)
    assert "13 videos: 13 processed, 0 already done, 0 failed" in _segment("ray", inputs, tmp_path / "ray", capsys)
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
    # a rerun on Ray finds every video current and rewrites nothing
    before = file_stamps(tmp_path / "ray")
    assert "13 videos: 0 processed, 13 already done, 0 failed" in _segment("ray", inputs, tmp_path / "ray", capsys)
    assert file_stamps(tmp_path / "ray") == before


def _comparable(out):
    """Relative path -> contents (the output folder's own path replaced) of the files two runs must
    share byte for byte: features, segments, grounded steps and graph scripts."""
    files = {}
    for pattern in ("features/*.safetensors", "features/*.json", "segments/*.segments.json", "segments/*.csv",
                    "steps/*.steps.json", "graphs/*.json"):
        for p in sorted(out.glob(pattern)):
            files[str(p.relative_to(out))] = p.read_bytes().replace(str(out).encode(), b"OUT")
    return files


RUN_CLIPS = ["bigbuckbunny.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4", "cup.mp4"]  # short ones


def test_run_on_ray_writes_what_the_local_engine_writes(videos_dir, tmp_path):
    """`procvid run --engine ray` and `--engine local` on short shared clips (each taken as a video of
    the hand-written tea task) write byte-identical features, segments, steps and graphs."""
    tasks = write_world(tmp_path / "world") / "tasks.json"
    listing = tmp_path / "clips.txt"
    listing.write_text("".join(f"{videos_dir / name}\n" for name in RUN_CLIPS))
    outs = {}
    for engine in ("local", "ray"):
        outs[engine] = tmp_path / engine
        assert main(["run", str(listing), "--steps", str(tasks), "--task", "tea", "--out", str(outs[engine]),
                     "--config", "synthetic", "--method", "uvd", "--engine", engine, "--no-generate",
                     "--no-progress"]) == 0
    local, on_ray = _comparable(outs["local"]), _comparable(outs["ray"])
    assert sum(name.startswith("steps/") for name in local) == len(RUN_CLIPS) and "graphs/tea.json" in local
    assert sorted(local) == sorted(on_ray)
    for name in local:
        assert local[name] == on_ray[name], name
