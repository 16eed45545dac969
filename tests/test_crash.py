"""Interrupted and concurrent runs.

Crash tests: `procvid run` is killed (SIGKILL, through the PROCVID_FAULT hook of procvid.outputs) in
each stage, mid-write or just after a write; the rerun must finish with exactly the outputs of an
uninterrupted run, leave no temporary file, and a further rerun must rewrite nothing.
Concurrency: a second process on the same output folder stops with a clear message, and the failures
file is appended per run, never truncated.
"""

import hashlib
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

BOOKKEEPING = {".procvid-manifest.jsonl", ".procvid.lock", "failures.jsonl",  # may differ between histories
               ".procvid-run.json"}  # its stamp holds the outputs' times


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from procvid.data.synthetic import generate_world

    w = tmp_path_factory.mktemp("crash_world")
    generate_world(w, num_videos=3, seed=31, size=64, min_duration=12, max_duration=16, progress=False)
    from procvid.paths import REPO_ROOT

    synthetic = (REPO_ROOT / "configs" / "run" / "synthetic.yaml").read_text()
    (w / "preset.yaml").write_text(synthetic.replace("generate_steps: 5", "generate_steps: 2"))
    return w


def _run(world, out, fault=None, check=True, extra=()):
    env = {**os.environ, "TQDM_DISABLE": "1"}
    env.pop("PROCVID_FAULT", None)
    if fault:
        env["PROCVID_FAULT"] = fault
    cmd = [sys.executable, "-m", "procvid.cli", "run", str(world / "videos"), "--annotations", str(world),
           "--out", str(out), "--config", str(world / "preset.yaml"), "--no-progress", *extra]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if check:
        assert done.returncode == 0, done.stderr[-2000:]
    return done


def _content(path):
    """A file's bytes; a Parquet shard's rows (its bytes are compressed: paths in them cannot be masked),
    without their stamps (bookkeeping, as the manifests are: digests of inputs that name the folder)."""
    if path.suffix != ".parquet":
        return path.read_bytes()
    import pyarrow.parquet as pq

    return repr({k: v for k, v in pq.read_table(path).to_pydict().items() if k != "stamp"}).encode()


def _digests(out):
    """Checksums of every output, with the output folder's own path (recorded in some files) masked."""
    prefix = str(out.resolve()).encode()
    return {str(p.relative_to(out)): hashlib.sha1(_content(p).replace(prefix, b"OUT")).hexdigest()
            for p in sorted(out.rglob("*")) if p.is_file() and p.name not in BOOKKEEPING}


def _mtimes(out):
    return {str(p.relative_to(out)): p.stat().st_mtime_ns for p in sorted(out.rglob("*")) if p.is_file()}


# Kill points, one per stage, in pipeline order: mid-write (the new content still in its temporary
# file) or just after a write (before the stage recorded it as done).
FAULTS = [
    ("embedding", "*.safetensors:tmp:2"),
    ("segmentation", "*.segments.json:tmp:2"),
    ("key frames", "*.keyframes/*.jpg:done:3"),
    ("grounding", "*.steps.json:done:1"),
    ("graphs", "*.graphml:tmp:1"),
    ("forecast", "forecast/*.forecast.json:tmp:1"),
    ("timelines", "*.timeline.png:tmp:2"),
    ("generation", "generate/*/contact_sheet.png:tmp:1"),
    ("report", "report/index.html:tmp:1"),
]


def test_run_killed_in_every_stage_resumes_to_the_same_outputs(world, tmp_path):
    """One output folder; each run is killed in the next stage (the earlier ones complete on the
    rerun), then a last run completes: its outputs equal an uninterrupted run's."""
    reference = tmp_path / "reference"
    _run(world, reference)
    out = tmp_path / "out"
    for stage, fault in FAULTS:
        killed = _run(world, out, fault=fault, check=False)
        assert killed.returncode == -9, f"the {stage} fault point was not reached: {killed.stderr[-1000:]}"
    _run(world, out)
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    assert _digests(out) == _digests(reference)
    before = _mtimes(out)
    _run(world, out)
    assert _mtimes(out) == before, "a rerun of a finished run rewrote files"


# The shard layout: each stage's shard killed mid-write or just after (before the stage's index).
SHARD_FAULTS = [
    ("embedding", "features/features-0*.parquet:tmp:1"),
    ("segmentation", "segments/segments-0*.parquet:done:1"),
    ("grounding", "steps/steps-0*.parquet:tmp:1"),
    ("mistakes", "mistakes/mistakes-0*.parquet:done:1"),
    ("forecast", "forecast/forecast-0*.parquet:tmp:1"),
    ("index", "forecast/forecast-index.parquet:tmp:1"),
]


def test_shard_layout_killed_in_every_stage_resumes_to_the_same_outputs(world, tmp_path):
    shards = ("--layout", "shards", "--no-generate")
    reference = tmp_path / "reference"
    _run(world, reference, extra=shards)
    out = tmp_path / "out"
    for stage, fault in SHARD_FAULTS:
        killed = _run(world, out, fault=fault, check=False, extra=shards)
        assert killed.returncode == -9, f"the {stage} fault point was not reached: {killed.stderr[-1000:]}"
    _run(world, out, extra=shards)
    assert not list(out.rglob("*.tmp")), "temporary files left behind"
    assert _digests(out) == _digests(reference)
    before = _mtimes(out)
    _run(world, out, extra=shards)
    assert _mtimes(out) == before, "a rerun of a finished run rewrote files"


def test_second_process_on_the_same_folder_refuses(videos_dir, tmp_path, procvid_cmd):
    """While one process writes into a folder (here this test, through the same lock every stage takes),
    another procvid process stops at once with one clear line and touches nothing."""
    import fcntl

    from procvid.outputs import LOCK

    out = tmp_path / "o"
    out.mkdir()
    cmd = procvid_cmd + ["embed", str(videos_dir / "cup.mp4"), "--out", str(out), "--encoder",
                         "procvid-test-tiny:random", "--no-progress"]
    with open(out / LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        second = subprocess.run(cmd, capture_output=True, text=True)
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and "another procvid process is writing into this folder" in err[0]
    assert sorted(p.name for p in out.iterdir()) == [LOCK]
    assert subprocess.run(cmd, capture_output=True, text=True).returncode == 0  # free again: it runs


def test_failures_file_is_appended_per_run_never_truncated(videos_dir, tmp_path, procvid_cmd):
    out = tmp_path / "o"
    out.mkdir()
    (out / "failures.jsonl").write_text('{"item": "old.mp4", "reason": "from an earlier run"}\n')
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    cmd = procvid_cmd + ["embed", str(bad), str(videos_dir / "cup.mp4"), "--out", str(out), "--encoder",
                         "procvid-test-tiny:random", "--no-progress"]
    for run in (1, 2):
        done = subprocess.run(cmd, capture_output=True, text=True)
        assert done.returncode == 1 and f"{2 - run} processed" in done.stdout
        lines = (out / "failures.jsonl").read_text().splitlines()
        assert "from an earlier run" in lines[0] and sum("broken.mp4" in line for line in lines) == run
