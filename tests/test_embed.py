import json
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import CLIPS
from procvid import features
from procvid.batch import in_shard, parse_shard
from procvid.cli import main
from procvid.embedding import embed_videos
from procvid.errors import ProcvidError
from procvid.video import Sampling, find_videos, read_frames

ENC = "procvid-test-tiny:random"


def test_embed_all_clips_then_rerun_skips(tmp_path, videos_dir, tiny_encoder):
    videos = find_videos([videos_dir])
    s = embed_videos(videos, tmp_path, tiny_encoder, Sampling(fps=1), batch_size=16, progress=False)
    assert (s.done, s.failed) == (len(CLIPS), 0)
    failures_file = tmp_path / "failures.jsonl"
    assert not failures_file.exists() or failures_file.read_text() == ""
    # batches mix frames of several videos: each video must still get exactly its own frames
    for name in ("box.mp4", "tree.avi"):
        emb, times, meta = features.load_features(tmp_path / (name.rsplit(".", 1)[0] + ".json"))
        frames, t = read_frames(videos_dir / name, Sampling(fps=1), size=tiny_encoder.image_size)
        np.testing.assert_allclose(times, t, atol=1e-5)
        np.testing.assert_allclose(emb, tiny_encoder.encode_images(frames), atol=5e-3)
    again = embed_videos(videos, tmp_path, tiny_encoder, Sampling(fps=1), progress=False)
    assert (again.done, again.skipped) == (0, len(CLIPS))


def test_corrupt_entry_is_recomputed(tmp_path, videos_dir, tiny_encoder):
    videos = find_videos([videos_dir / "cup.mp4", videos_dir / "box.mp4"])
    embed_videos(videos, tmp_path, tiny_encoder, progress=False)
    tensor, _ = features.entry_paths(tmp_path, "cup.mp4")
    tensor.write_bytes(tensor.read_bytes()[:50])
    s = embed_videos(videos, tmp_path, tiny_encoder, progress=False)
    assert (s.done, s.skipped) == (1, 1)
    features.load_features(tensor)


# shard of each name among 3 and among 4: computed once and fixed here, so a change of the hash (or of
# its input, e.g. path separators) that would move videos between machines' shards fails this test
GOLDEN_SHARDS = {"box.mp4": (2, 0), "cup.mp4": (0, 3), "tree.avi": (1, 0), "vtest.avi": (0, 0),
                 "bikes.mp4": (0, 3), "kitchen/tea_0001.mp4": (1, 2), "a": (1, 0)}


def test_shard_assignments_are_fixed():
    for name, (of3, of4) in GOLDEN_SHARDS.items():
        assert [i for i in range(3) if in_shard(name, (i, 3))] == [of3], name
        assert [i for i in range(4) if in_shard(name, (i, 4))] == [of4], name
    assert all(in_shard(name, (0, 1)) for name in GOLDEN_SHARDS)


def test_shards_are_disjoint_complete_and_independent_of_the_other_inputs(videos_dir, tmp_path):
    """What `embed --shard I/N` selects (plan_jobs): every input in exactly one shard, and an input's
    shard does not move when other inputs are added or removed."""
    from procvid.batch import FailureLog, RunSummary
    from procvid.embedding import plan_jobs

    clips = find_videos([videos_dir])
    extra = [(clips[0][0], Path(f"more/clip_{k}.mp4")) for k in range(20)]  # other names, same file

    def selected(videos, shard):
        jobs = plan_jobs(videos, tmp_path / "o", ENC, Sampling(fps=1), 32, shard, False, RunSummary(),
                         FailureLog(tmp_path / "o"))
        return {str(j.rel) for j in jobs}

    everything = clips + extra
    names = {str(rel) for _, rel in everything}
    for n in (2, 3, 4):
        parts = [selected(everything, (i, n)) for i in range(n)]
        assert set().union(*parts) == names and sum(map(len, parts)) == len(names)  # complete, disjoint
        assert all(parts), f"a shard of {n} is empty: the split is degenerate"
        for i in range(n):
            fewer = clips[::2] + extra[5:]
            assert selected(fewer, (i, n)) == parts[i] & {str(rel) for _, rel in fewer}
            assert selected(list(reversed(clips)), (i, n)) == parts[i] & {str(rel) for _, rel in clips}
    for name, (of3, _) in GOLDEN_SHARDS.items():
        if name in names:
            assert name in selected(everything, (of3, 3))
    for bad in ("3/3", "x", "1/0"):
        with pytest.raises(ProcvidError):
            parse_shard(bad)


def test_cli_failures_file_and_exit_code(tmp_path, videos_dir, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    rc = main(["embed", str(videos_dir / "cup.mp4"), str(bad), "--out", str(tmp_path / "o"),
               "--encoder", ENC, "--no-progress"])
    assert rc == 1
    rows = [json.loads(x) for x in (tmp_path / "o" / "failures.jsonl").read_text().splitlines()]
    assert [r["item"] for r in rows] == [str(bad.resolve())] and "cannot open" in rows[0]["reason"]
    assert "1 processed" in capsys.readouterr().out


def test_cli_user_errors_are_one_line(tmp_path, videos_dir, capsys):
    assert main(["embed", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 2
    assert main(["embed", str(tmp_path), "--out", str(tmp_path), "--shard", "5/2"]) == 2
    assert main(["embed", str(videos_dir), "--out", str(tmp_path), "--encoder", "ViT-B-32:laion2b_s34b_b79k"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(line.startswith("procvid embed: error:") for line in err)
    assert "not available offline" in err[2]


# sorted by name, as embed runs them: two to write before the kill, short ones, then a long one last
KILL_CLIPS = ["bikes.mp4", "box.mp4", "carphone_distorted.mp4", "carphone_pristine.mp4", "cup.mp4", "tree.avi"]


@pytest.mark.slow
def test_sigkill_mid_run_leaves_nothing_corrupt(tmp_path, videos_dir, procvid_cmd, capsys):
    """A separate `procvid embed` process is killed once it has written two entries; the rerun (in this
    process: same code, no second start-up) counts the finished ones as done and completes the rest."""
    listing = tmp_path / "clips.txt"
    listing.write_text("".join(f"{videos_dir / name}\n" for name in KILL_CLIPS))
    out = tmp_path / "o"
    args = ["embed", str(listing), "--out", str(out), "--encoder", ENC,
            "--fps", "4", "--batch-size", "4", "--workers", "1", "--no-progress"]
    with open(tmp_path / "stderr.txt", "w") as err:
        proc = subprocess.Popen(procvid_cmd + args, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and len(list(out.glob("*.json"))) < 2:
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
    assert code == -signal.SIGKILL, f"embed ended by itself ({code}): {(tmp_path / 'stderr.txt').read_text()[-2000:]}"
    written = len(list(out.glob("*.json")))
    assert 0 < written < len(KILL_CLIPS), "the kill should land mid-run"
    capsys.readouterr()
    assert main(args) == 0
    summary = capsys.readouterr().out
    assert f"{written} already done" in summary or f"{written - 1} already done" in summary, summary
    for _, rel in find_videos([listing]):
        emb, times, _ = features.load_features(features.entry_paths(out, rel)[1])
        assert len(emb) == len(times) > 0
