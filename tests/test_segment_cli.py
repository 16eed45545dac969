"""`procvid segment` end to end on real clips (outputs, resume, failures) and `procvid eval segment`
on a small hand-made ground truth."""

import csv
import json

import numpy as np
import pytest

from procvid.cli import main
from procvid.segment.files import CSV_COLUMNS, read_segments_file
from procvid.segment.sbd import NextEmbeddingPredictor

ENC = "procvid-test-tiny:random"


@pytest.fixture(scope="module")
def sbd_checkpoint(tmp_path_factory, tiny_encoder):
    """An (untrained) predictor for the tiny test encoder's features."""
    net = NextEmbeddingPredictor(tiny_encoder.dim, window=4, width=16, layers=1, heads=2)
    return net.save_pretrained(tmp_path_factory.mktemp("sbd"), "test clips", encoder=tiny_encoder.id)


def test_segment_clips_writes_outputs_resumes_and_logs_failures(tmp_path, videos_dir, sbd_checkpoint, capsys):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00" * 1000)
    out = tmp_path / "seg"
    argv = ["segment", str(videos_dir / "cup.mp4"), str(videos_dir / "tree.avi"), str(bad), "--out", str(out),
            "--method", "sbd", "--param", f"checkpoint={sbd_checkpoint}", "--param", "min_jump=0",
            "--param", "threshold=1", "--encoder", ENC, "--fps", "2", "--timeline", "--no-progress"]
    assert main(argv) == 1  # one input failed
    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["item"] for f in failures] == [str(bad.resolve())] and failures[0]["reason"]
    for stem in ("cup", "tree"):
        header, segments = read_segments_file(out / f"{stem}.segments.json")
        assert header["method"] == "sbd" and header["params"]["threshold"] == 1
        assert segments[0].start == 0.0 and segments[-1].end_frame == len(header["timestamps"])
        with open(out / f"{stem}.segments.csv") as f:
            rows = list(csv.reader(f))
        assert rows[0] == CSV_COLUMNS and len(rows) == len(segments) + 1
        assert rows[1][1] == "1" and rows[-1][4] == str(len(header["timestamps"]))  # PySceneDetect numbering
        thumbs = sorted((out / f"{stem}.keyframes").glob("*.jpg"))
        assert len(thumbs) == len(segments)
        assert (out / f"{stem}.timeline.png").stat().st_size > 10_000
    assert "3 videos: 2 processed, 0 already done, 1 failed" in capsys.readouterr().out

    mtime = (out / "cup.segments.json").stat().st_mtime_ns
    assert main(argv) == 1
    assert "2 already done" in capsys.readouterr().out
    assert (out / "cup.segments.json").stat().st_mtime_ns == mtime
    # other parameters: recomputed
    assert main([*argv[:-1], "--param", "threshold=2", "--no-progress"]) == 1
    assert "2 processed" in capsys.readouterr().out


def test_segment_feature_files_with_known_k(tmp_path, videos_dir, tiny_encoder, capsys):
    from procvid.embedding import embed_videos
    from procvid.video import Sampling, find_videos

    embed_videos(find_videos([videos_dir / "box.mp4", videos_dir / "cup.mp4"]), tmp_path / "f", tiny_encoder,
                 Sampling(fps=2), progress=False)
    rc = main(["segment", str(tmp_path / "f"), "--out", str(tmp_path / "o"), "--method", "uniform",
              "--num-segments", "3", "--keyframes", "none", "--no-progress"])
    assert rc == 0
    for stem in ("box", "cup"):
        header, segments = read_segments_file(tmp_path / "o" / f"{stem}.segments.json")
        assert len(segments) == 3 and header["num_segments"] == 3 and header["encoder"] == tiny_encoder.id
        assert header["video"].endswith(f"{stem}.mp4")
        assert not (tmp_path / "o" / f"{stem}.keyframes").exists()


def test_sbd_warns_when_features_come_from_another_encoder(tmp_path, videos_dir, tiny_encoder, capsys):
    ck = NextEmbeddingPredictor(tiny_encoder.dim, window=4, width=16, layers=1, heads=2).save_pretrained(
        tmp_path / "ck", "test clips", encoder="some-other-encoder")
    rc = main(["segment", str(videos_dir / "cup.mp4"), "--out", str(tmp_path / "o"), "--encoder", ENC,
              "--method", "sbd", "--param", f"checkpoint={ck}", "--keyframes", "none", "--no-progress"])
    assert rc == 0
    assert "trained on features of some-other-encoder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["segment", "no/such/file.mp4", "--out", "x"], "no such file or directory"),
    (["segment", ".", "--out", "x", "--num-segments", "0"], "--num-segments must be positive"),
    (["segment", ".", "--out", "x", "--method", "uvd", "--param", "bogus=1"], "unknown parameter(s)"),
    (["segment", ".", "--out", "x", "--method", "sbd", "--param", "checkpoint=/nope"], "checkpoint not found"),
])
def test_bad_input_is_a_one_line_error(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.json").write_text("{}")
    (tmp_path / "f.safetensors").write_bytes(b"")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def _write_prediction(folder, video_id, method, bounds, duration=10.0, step=0.5, num_segments=None):
    t = np.arange(0.0, duration, step)
    edges = [0.0, *bounds, duration]
    frame = [int(round(x / step)) for x in edges]
    segments = [{"start": a, "end": b, "start_frame": fa, "end_frame": fb, "score": 1.0, "keyframe": fa}
                for a, b, fa, fb in zip(edges, edges[1:], frame, frame[1:])]
    doc = {"format": "procvid-segments", "version": 1, "method": method, "params": {}, "num_segments": num_segments,
           "timestamps": t.tolist(), "segments": segments}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{video_id}.segments.json").write_text(json.dumps(doc))


def test_eval_segment_on_hand_made_ground_truth(tmp_path, capsys):
    gt = tmp_path / "gt"
    gt.mkdir()
    # steps 1: [1, 3) and 2: [5, 8) with idle gaps -> boundaries at 1, 3, 5, 8
    (gt / "taskA_v1.csv").write_text("1,1.0,3.0\n2,5.0,8.0\n")
    (gt / "taskA_v2.csv").write_text("1,2.0,6.0\n")  # boundaries 2, 6
    pred = tmp_path / "pred"
    _write_prediction(pred / "a", "v1", "exact", [1.0, 3.0, 5.0, 8.0])
    _write_prediction(pred / "a", "v2", "exact", [2.0, 6.0])
    _write_prediction(pred / "b", "v1", "half", [1.5, 4.0])  # 1.5 within 1 s of 1; 4.0 within 1 s of 3 or 5
    _write_prediction(pred / "b", "v2", "half", [9.0])
    _write_prediction(pred / "b", "v3", "half", [5.0])  # no ground truth for v3
    rc = main(["eval", "segment", "--pred", str(pred), "--gt", str(gt), "--json", str(tmp_path / "s.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "exact" in out and "half" in out and "1 prediction(s) without ground truth" in out
    scores = json.loads((tmp_path / "s.json").read_text())
    exact, half = scores["exact"], scores["half"]
    assert exact["num_videos"] == 2 and exact["boundary_f1"] == 1.0
    # half: 3 predicted boundaries, 2 matched, 6 true -> P 2/3, R 1/3
    assert half["boundary_precision"] == pytest.approx(2 / 3) and half["boundary_recall"] == pytest.approx(1 / 3)
    assert exact["mof"] > half["mof"]


def test_eval_segment_without_matching_videos_is_an_error(tmp_path, capsys):
    (tmp_path / "gt").mkdir()
    (tmp_path / "gt" / "taskA_v1.csv").write_text("1,1.0,3.0\n")
    _write_prediction(tmp_path / "pred", "other", "exact", [1.0])
    assert main(["eval", "segment", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt")]) == 2
    assert "no prediction" in capsys.readouterr().err
