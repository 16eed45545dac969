import json
import signal
import subprocess
import time

import numpy as np
import pytest

from conftest import CLIPS
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
    assert (tmp_path / "failures.jsonl").read_text() == ""
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


def test_shards_are_disjoint_stable_and_complete(videos_dir):
    names = [str(rel) for _, rel in find_videos([videos_dir])]
    parts = [{n for n in names if in_shard(n, (i, 3))} for i in range(3)]
    assert set().union(*parts) == set(names) and sum(map(len, parts)) == len(names)
    assert parts[1] == {n for n in reversed(names) if in_shard(n, (1, 3))}
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


def test_sigkill_mid_run_leaves_nothing_corrupt(tmp_path, videos_dir, procvid_cmd):
    out = tmp_path / "o"
    cmd = procvid_cmd + ["embed", str(videos_dir), "--out", str(out), "--encoder", ENC,
                         "--fps", "8", "--batch-size", "4", "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("*.json"))) < 2:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = len(list(out.glob("*.json")))
    assert 0 < written < len(CLIPS), "the kill should land mid-run"
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{written} already done" in done.stdout or f"{written - 1} already done" in done.stdout
    for _, rel in find_videos([videos_dir]):
        emb, times, _ = features.load_features(features.entry_paths(out, rel)[1])
        assert len(emb) == len(times) > 0
