"""--engine ray (a pool of Ray actors on a local 2-CPU instance, and the driver) gives the same outputs as the local engine,
on the shared real clips and on synthetic videos, and a rerun on Ray redoes nothing."""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import file_stamps, write_world
from procvid.cli import main

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
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


@pytest.mark.usefixtures("local_ray")
def test_ray_and_local_outputs_are_identical_and_a_ray_rerun_redoes_nothing(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PROCVID_RAY_DRIVER", "0")  # the actors do every video (the driver would do these few)
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


@pytest.mark.usefixtures("local_ray")
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


def _ray_start(args: list[str], log, env) -> subprocess.Popen:
    """`ray start ... --block` in its own process group (ended by its id, never with `ray stop`,
    which would stop every Ray instance on the machine); waits until the node is up."""
    proc = subprocess.Popen([str(Path(sys.executable).with_name("ray")), "start", *args, "--block"], env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 40
    while "Ray runtime started" not in Path(log.name).read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            pytest.skip(f"`ray start` did not start a node: {Path(log.name).read_text()[-500:]}")
        time.sleep(0.5)
    return proc


def _stop(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=5)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def test_two_local_ray_nodes_both_do_work(tmp_path):
    """A head and a worker node started with `ray start` (one CPU each, on this machine):
    `procvid embed --engine ray` with RAY_ADDRESS spreads the videos over both nodes, writes what
    the local engine writes, and says which node ran how many."""
    from procvid.data.synthetic import generate_world

    if not Path(sys.executable).with_name("ray").exists():
        pytest.skip("no `ray` command next to this Python")
    world = tmp_path / "world"
    generate_world(world, num_videos=6, seed=5, size=64, min_duration=8, max_duration=10, progress=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # a short temp dir of its own (Ray's socket paths must stay short; other Ray users keep /tmp/ray)
    temp = tempfile.mkdtemp(prefix="pvray", dir="/tmp")
    # the actors only: the driver's own share of the work would leave little for the two nodes
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "PROCVID_RAY_DRIVER": "0"}
    nodes = []
    try:
        with open(tmp_path / "head.log", "w") as head_log, open(tmp_path / "worker.log", "w") as worker_log:
            nodes.append(_ray_start(["--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
                                     "--include-dashboard", "false", "--temp-dir", temp], head_log, env))
            nodes.append(_ray_start(["--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                                     "--num-cpus", "1"], worker_log, env))
            outs = {}
            for engine in ("ray", "local"):
                done = subprocess.run(
                    [sys.executable, "-m", "procvid.cli", "embed", str(world / "videos"), "--out",
                     str(tmp_path / engine), "--encoder", "video", "--engine", engine, "--no-progress"],
                    env={**env, "RAY_ADDRESS": f"127.0.0.1:{port}", "TQDM_DISABLE": "1"}, capture_output=True,
                    text=True, timeout=120)
                assert done.returncode == 0, done.stderr[-2000:]
                outs[engine] = done.stdout + done.stderr
    finally:
        for proc in reversed(nodes):
            _stop(proc)
        shutil.rmtree(temp, ignore_errors=True)
    assert "6 videos: 6 processed" in outs["ray"]
    line = re.search(r"ray: 6 items ran on (\d+) node\(s\): (.*)", outs["ray"])
    assert line, outs["ray"][-2000:]
    counts = [int(n) for n in re.findall(r"(\d+) on [0-9a-f]+", line.group(2))]
    assert line.group(1) == "2" and len(counts) == 2 and min(counts) >= 1 and sum(counts) == 6, line.group(0)
    for f in sorted((tmp_path / "local").glob("*.json")):
        if f.name.startswith("failures"):
            continue
        assert json.loads(f.read_text())["tensor_sha1"] == \
            json.loads((tmp_path / "ray" / f.name).read_text())["tensor_sha1"], f.name
