"""Decoding says how complete it was (DecodeReport); the embed stage never caches a truncated or
damaged video as complete; rotation metadata is applied so frames come out upright."""

import json
import re
import struct

import numpy as np
import pytest

from helpers import CLIPS
from procvid import features
from procvid.cli import main
from procvid.embedding import _incomplete
from procvid.video import DecodeReport, Sampling, VideoReader, frames_at, iter_frames, probe, read_frames

ENC = "procvid-test-tiny:random"
SAMPLINGS = [Sampling(fps=2), Sampling(num=3), Sampling(every=10)]


def _decode(path, sampling, size=32):
    report = DecodeReport()
    times = [t for _, ts in iter_frames(path, sampling, size=size, report=report) for t in ts]
    return report, np.asarray(times)


def _top_level_boxes(path) -> list[str]:
    data = path.read_bytes()
    boxes, i = [], 0
    while i + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[i : i + 8])
        if size == 1:
            size = struct.unpack(">Q", data[i + 8 : i + 16])[0]
        boxes.append(kind.decode("latin-1"))
        if size < 8:
            break
        i += size
    return boxes


def truncated_copy(src, dst):
    """`src` cut in half with its index kept, as a download or copy cut short: an mp4 whose moov
    box follows the media data is first remuxed with movflags=faststart (moov to the front)."""
    import av

    boxes = _top_level_boxes(src)
    if boxes.index("moov") > boxes.index("mdat"):
        full = dst.with_name(dst.stem + ".faststart.mp4")
        with av.open(str(src)) as inp, av.open(str(full), "w", format="mp4", options={"movflags": "faststart"}) as out:
            stream = out.add_stream_from_template(inp.streams.video[0])
            for packet in inp.demux(inp.streams.video[0]):
                if packet.dts is not None:
                    packet.stream = stream
                    out.mux(packet)
        src = full
    boxes = _top_level_boxes(src)
    assert boxes.index("moov") < boxes.index("mdat")
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_healthy_clips_decode_completely(clip, videos_dir):
    for sampling in SAMPLINGS:
        report, times = _decode(clip, sampling)
        assert report.frames == len(times) > 0
        assert report.errors == 0 and report.first_error == ""  # damaged slices are concealed, not errors
        assert report.duration - report.end < 0.1, sampling  # within a frame or two of the duration
        assert report.targets_covered == report.targets
        assert _incomplete(report.to_dict()) is None


def test_synthetic_videos_decode_completely(small_world):
    for video in sorted((small_world / "videos").glob("*.mp4")):
        for sampling in SAMPLINGS:
            report, _ = _decode(video, sampling)
            assert report.errors == 0 and report.duration - report.end < 0.1
            assert report.targets_covered == report.targets and _incomplete(report.to_dict()) is None


@pytest.mark.parametrize("name", ["cup.mp4", "bikes.mp4"])  # moov first / moov last (remuxed first)
def test_truncated_file_reports_the_decoded_span(name, videos_dir, tmp_path):
    bad = truncated_copy(videos_dir / name, tmp_path / name)
    full = probe(videos_dir / name).duration
    for sampling in SAMPLINGS:
        report, times = _decode(bad, sampling)
        assert abs(report.duration - full) < 0.1  # the index still claims the whole video
        assert 0.2 * full < report.end < 0.6 * full and times[-1] <= report.end
        if sampling.every is None:
            assert report.targets_covered < report.targets
        assert re.fullmatch(r"decoded only 0\.0–\d+\.\d s of \d+\.\d s \(file truncated or damaged\)",
                            _incomplete(report.to_dict()))


def test_damaged_middle_is_a_hole_with_errors(videos_dir, tmp_path):
    """30 % of cup.mp4's data zeroed: decord fails mid-stream, PyAV skips the damaged packets."""
    data = bytearray((videos_dir / "cup.mp4").read_bytes())
    a, b = int(0.4 * len(data)), int(0.7 * len(data))
    data[a:b] = bytes(b - a)
    bad = tmp_path / "cup_damaged.mp4"
    bad.write_bytes(data)
    report, _ = _decode(bad, Sampling(fps=2))
    assert report.backend == "decord+pyav" and report.errors > 1
    assert report.first_error.startswith("decord failed mid-stream")
    assert report.largest_gap > 2.0
    assert _incomplete(report.to_dict()).startswith(f"no frames decoded between {report.gap_at:.1f} and ")


def test_incompleteness_policy():
    ok = {"backend": "pyav", "frames": 30, "targets": 30, "targets_covered": 30, "start": 0.0, "end": 15.2,
          "duration": 15.2, "largest_gap": 0.04, "gap_at": 3.0, "errors": 0, "first_error": ""}
    assert _incomplete(ok) is None
    assert _incomplete({**ok, "end": 13.5}) is None  # within max(2 s, 10 %)
    assert _incomplete({**ok, "end": 7.475}) == "decoded only 0.0–7.5 s of 15.2 s (file truncated or damaged)"
    assert _incomplete({**ok, "duration": 100.0, "end": 91.0}) is None  # 10 % of a long video
    assert "decoded only" in _incomplete({**ok, "duration": 100.0, "end": 89.0})
    # a frame held long is fine (variable frame rate), a hole next to decode errors is not
    assert _incomplete({**ok, "largest_gap": 5.0}) is None
    assert _incomplete({**ok, "errors": 3, "first_error": "x", "largest_gap": 0.5}) is None  # errors, no hole
    hole = _incomplete({**ok, "errors": 3, "first_error": "damaged packet skipped", "largest_gap": 5.0})
    assert hole.startswith("no frames decoded between 3.0 and 8.0 s of 15.2 s") and "3 decode errors" in hole


def test_embed_refuses_truncated_video_and_records_decode_info(videos_dir, small_world, tmp_path):
    bad_dir = tmp_path / "bad"
    bad_dir.mkdir()
    truncated_copy(videos_dir / "cup.mp4", bad_dir / "cup_truncated.mp4")
    rotated = write_rotated_clip(bad_dir / "portrait.mp4", -90)  # healthy, next to the bad one
    out = tmp_path / "features"
    inputs = [str(videos_dir), str(small_world / "videos"), str(bad_dir)]
    assert main(["embed", *inputs, "--out", str(out), "--encoder", ENC, "--no-progress"]) == 1

    failures = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert [f["item"].endswith("cup_truncated.mp4") for f in failures] == [True]
    covered = re.fullmatch(r"decoded only 0\.0–(\d+\.\d) s of 8\.1 s \(file truncated or damaged\)",
                           failures[0]["reason"])
    assert covered and 2.0 < float(covered.group(1)) < 5.0
    tensor, sidecar = features.entry_paths(out, "cup_truncated.mp4")
    assert not tensor.exists() and not sidecar.exists()  # no entry, so nothing a rerun could skip

    healthy = [*CLIPS, *sorted((small_world / "videos").glob("*.mp4")), rotated]
    for video in healthy:
        _, _, meta = features.load_features(features.entry_paths(out, video.name)[1])
        decode = meta["decode"]
        assert decode["backend"] == probe(video).backend
        assert decode["frames"] == meta["num_frames"] and decode["targets_covered"] == decode["targets"]
        assert decode["errors"] == 0 and decode["duration"] - decode["end"] < 0.1
    # a rerun skips the healthy entries and tries the truncated file again
    assert main(["embed", *inputs, "--out", str(out), "--encoder", ENC, "--no-progress"]) == 1
    assert len((out / "failures.jsonl").read_text().splitlines()) == 2


# --- rotation -------------------------------------------------------------------------------------


def write_rotated_clip(path, rotation: int | None, width=64, height=48):
    """A landscape clip with a bright square in the top-left corner of the stored frames, and a
    display matrix turning it `rotation` degrees counter-clockwise (-90: a phone's rotate=90)."""
    import av

    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for i in range(20):
            img = np.full((height, width, 3), 30, np.uint8)
            img[:16, :16] = 240
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _bright_corner(frame: np.ndarray) -> str:
    h, w = frame.shape[:2]
    quads = {"top-left": frame[: h // 2, : w // 2], "top-right": frame[: h // 2, w // 2 :],
             "bottom-left": frame[h // 2 :, : w // 2], "bottom-right": frame[h // 2 :, w // 2 :]}
    return max(quads, key=lambda q: quads[q].mean())


# display matrix rotation (counter-clockwise) -> where the stored top-left corner is shown, portrait?
ROTATIONS = {None: ("top-left", False), -90: ("top-right", True), 90: ("bottom-left", True),
             180: ("bottom-right", False)}


@pytest.mark.parametrize("rotation", list(ROTATIONS), ids=str)
def test_rotation_metadata_is_applied(rotation, tmp_path):
    corner, portrait = ROTATIONS[rotation]
    clip = write_rotated_clip(tmp_path / "clip.mp4", rotation)
    info = probe(clip)
    assert info.rotation == (rotation or 0)
    assert (info.height > info.width) == portrait and sorted((info.width, info.height)) == [48, 64]
    assert info.backend == ("decord" if rotation is None else "pyav")  # decord cannot rotate
    for size, shape in ((None, (48, 64)), (24, (24, 32))):  # size bounds the displayed short side
        expected = shape[::-1] if portrait else shape
        for sampling in (Sampling(fps=2), Sampling(every=5)):
            frames, _ = read_frames(clip, sampling, size=size)
            assert frames.shape[1:] == (*expected, 3)
            assert all(_bright_corner(f) == corner for f in frames)
    shown = frames_at(clip, [0.0, 1.0], short_side=24)
    assert all(f.shape == (*((32, 24) if portrait else (24, 32)), 3) for f in shown)
    assert all(_bright_corner(f) == corner for f in shown)
    with VideoReader(clip, size=24) as reader:
        assert reader.out_size == ((24, 32) if portrait else (32, 24))  # (w, h) as displayed
