"""The run's real costs: decoder messages counted instead of printed, key-frame thumbnails from the
frames embedding decoded, timelines only where asked, only sampled frames converted, and a rerun of a
finished run that recomputes nothing."""

import json
import random
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from procvid.errors import ProcvidError
from procvid.video import DecodeReport, Sampling, VideoReader, frames_at, iter_frames


def spotted_copy(src, dst, spots=40, seed=0):
    """`src` with small runs of bytes zeroed: the decoder conceals the damage and logs it."""
    data = bytearray(src.read_bytes())
    rng = random.Random(seed)
    for _ in range(spots):
        p = rng.randrange(len(data) // 10, len(data) - 20)
        data[p : p + 20] = bytes(20)
    dst.write_bytes(data)
    return dst


def test_decoder_messages_are_counted_not_printed(videos_dir, tmp_path, capfd):
    bad = spotted_copy(videos_dir / "cup.mp4", tmp_path / "cup_spots.mp4")
    report = DecodeReport()
    frames = sum(len(f) for f, _ in iter_frames(bad, Sampling(fps=2), size=64, report=report))
    assert report.backend == "decord" and frames == report.frames > 0
    assert report.messages > 0 and "decod" in report.first_message  # e.g. "error while decoding MB N N, ..."
    assert report.to_dict()["messages"] == report.messages
    healthy = DecodeReport()
    list(iter_frames(videos_dir / "cup.mp4", Sampling(fps=2), size=64, report=healthy))
    assert healthy.messages == 0 and healthy.first_message == ""
    err = capfd.readouterr().err
    assert "error while decoding" not in err and "[h264 @" not in err  # nothing raw on stderr


def test_embed_summary_counts_decoder_messages(videos_dir, tiny_encoder, tmp_path):
    from procvid.embedding import embed_videos
    from procvid.features import read_sidecar

    (tmp_path / "in").mkdir()
    bad = spotted_copy(videos_dir / "cup.mp4", tmp_path / "in" / "cup_spots.mp4")
    summary = embed_videos([(bad, bad.relative_to(tmp_path / "in"))], tmp_path / "out", tiny_encoder, progress=False)
    meta = read_sidecar(tmp_path / "out" / "cup_spots.json")
    assert summary.done == 1 and summary.messages == meta["decode"]["messages"] > 0 and summary.messages_in == 1
    assert f"{summary.messages} decoder messages from 1 damaged videos" in summary.line()


def test_only_sampled_frames_are_converted(small_world, monkeypatch):
    """PyAV decodes every frame but converts only the ones it yields (the conversion costs more)."""
    from procvid import video

    path = sorted((small_world / "videos").glob("*.mp4"))[0]
    converted = []
    rgb = video._PyAVStream.rgb
    monkeypatch.setattr(video._PyAVStream, "rgb", lambda self, f, size: converted.append(1) or rgb(self, f, size))
    with VideoReader(path, size=32, backend="pyav") as reader:
        frames = sum(len(f) for f, _ in reader.iter_chunks(Sampling(fps=2)))
        decoded = reader.info.num_frames
    assert frames == len(converted) and decoded > 3 * frames


def test_thumbnails_come_from_the_embedding_frames(small_world, tiny_encoder, tmp_path, monkeypatch):
    """Segmenting videos keeps the frames embedding decoded and takes the key frames from them, without
    seeking; they match what a seek at that size gives (PNG thumbnails: no JPEG loss)."""
    from procvid.segment import batch as segment_batch_module
    from procvid.segment import get_detector
    from procvid.segment.batch import segment_batch

    videos = sorted((small_world / "videos").glob("*.mp4"))[:2]
    monkeypatch.setattr(segment_batch_module, "frames_at", lambda *a, **k: pytest.fail("decoded again by seeking"))
    summary = segment_batch([str(v) for v in videos], tmp_path / "seg", get_detector("kcpd"), encoder=tiny_encoder,
                            keyframes="png", progress=False)
    assert summary.done == 2
    monkeypatch.undo()
    checked = 0
    for v in videos:
        doc = json.loads((tmp_path / "seg" / f"{v.stem}.segments.json").read_text())
        times = [s["keyframe_time"] for s in doc["segments"]]
        seeked = frames_at(v, times, short_side=min(128, tiny_encoder.image_size))
        for s, expected in zip(doc["segments"], seeked):
            kept = np.asarray(Image.open(tmp_path / "seg" / s["thumbnail"]))
            assert kept.shape == expected.shape and min(kept.shape[:2]) == tiny_encoder.image_size
            # decord scaled the kept frames, PyAV the seeked ones: a grey level apart on average
            assert np.abs(kept.astype(int) - expected).mean() < 3.0
            checked += 1
    assert checked >= 2


def test_kept_frames_stay_within_their_budget():
    from procvid.embedding import KeptFrames

    kept = KeptFrames(short_side=8, max_bytes=3 * 8 * 8 * 3)
    frames = np.zeros((2, 16, 16, 3), np.uint8)  # shrunk to 8 x 8 on the way in
    kept.add("a", frames, np.array([0.0, 0.5]))
    kept.add("b", frames, np.array([0.0, 0.5]))  # does not fit: not kept at all
    assert kept.bytes == 2 * 8 * 8 * 3
    assert kept.take("b", [0.0]) is None
    assert [f.shape for f in kept.take("a", [0.5])] == [(8, 8, 3)]
    assert kept.bytes == 0 and kept.take("a", [0.5]) is None  # taken once


def _video(stem, task):
    return SimpleNamespace(stem=stem, task=task)


def test_timelines_on_request():
    from procvid.pipeline import RunConfig
    from procvid.report.timeline import pick_timelines

    few = [_video(f"t{i % 2}_{i}", f"t{i % 2}") for i in range(5)]
    assert pick_timelines(few, "auto", sample=10) == few and pick_timelines(few, "none") == []
    many = [_video(f"{t}_{i:03d}", t) for t in ("a", "b", "c") for i in range(40 if t == "a" else 3)]
    picked = pick_timelines(many, "auto", sample=9)
    assert len(picked) == 9 and {v.task for v in picked} == {"a", "b", "c"}  # every task shows
    assert pick_timelines(many, "auto", sample=9) == picked  # the same sample every time
    assert len(pick_timelines(many, "all", sample=9)) == len(many)
    with pytest.raises(ProcvidError, match="timelines: 'some' is not one of"):
        RunConfig(timelines="some").check()


@pytest.mark.slow
def test_rerun_of_a_finished_run_loads_and_draws_nothing(small_world, tmp_path, monkeypatch):
    """A finished run is recorded; its rerun returns before any stage (no encoder loaded, nothing drawn),
    and a deleted output makes the next run redo just that."""
    from procvid.cli import main
    from procvid.report import timeline

    argv = ["run", str(small_world / "videos"), "--annotations", str(small_world), "--out", str(tmp_path / "run"),
            "--config", "synthetic", "--no-generate", "--no-progress", "--timelines", "sample"]
    assert main(argv) == 0
    drawn = sorted((tmp_path / "run" / "segments").glob("*.timeline.png"))
    assert len(drawn) == 6  # a sample of 48 holds all six
    import procvid.encoders

    monkeypatch.setattr(procvid.encoders, "load_encoder", lambda *a, **k: pytest.fail("encoder loaded"))
    monkeypatch.setattr(timeline, "draw_timeline", lambda *a, **k: pytest.fail("timeline drawn"))
    assert main(argv) == 0
    monkeypatch.undo()
    drawn[0].unlink()
    calls = []
    draw = timeline.draw_timeline
    monkeypatch.setattr(timeline, "draw_timeline", lambda *a, **k: calls.append(a[0]) or draw(*a, **k))
    assert main(argv) == 0
    assert calls == [drawn[0]] and drawn[0].exists()
