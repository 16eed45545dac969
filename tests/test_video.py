import numpy as np
import pytest

from helpers import CLIPS
from procvid.errors import VideoError
from procvid.video import Sampling, VideoReader, find_videos, probe, read_frames


@pytest.mark.parametrize("clip", CLIPS, ids=lambda p: p.name)
def test_every_clip_decodes_with_exact_increasing_timestamps(clip, videos_dir):
    info = probe(clip)
    frames, times = read_frames(clip, Sampling(fps=1), size=64)
    assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[-1] == 3
    assert min(frames.shape[1:3]) <= 64
    assert len(frames) == len(times) >= 1
    assert np.all(np.diff(times) > 0)
    assert times[0] >= 0 and times[-1] <= info.duration
    # one frame per second of video (fewer only where the video holds a frame longer)
    assert len(times) <= int(np.ceil(info.duration)) and len(times) >= 0.5 * info.duration


@pytest.mark.parametrize("clip", [c for c in CLIPS if c.suffix == ".mp4"], ids=lambda p: p.name)
def test_decord_and_pyav_agree(clip, videos_dir):
    fa, ta = read_frames(clip, Sampling(fps=2), size=64, backend="decord")
    fb, tb = read_frames(clip, Sampling(fps=2), size=64, backend="pyav")
    np.testing.assert_allclose(ta, tb, atol=1e-3)
    assert np.abs(fa.astype(int) - fb.astype(int)).mean() < 12  # different scalers, same frames


def test_tree_avi_miscount_is_detected_and_recovered(videos_dir):
    reader = VideoReader(videos_dir / "tree.avi")
    assert reader.info.backend == "pyav"  # decord says 68 frames, the container 444
    assert reader.info.num_frames == 444
    _, times = read_frames(videos_dir / "tree.avi", Sampling(fps=1))
    assert times[-1] > 28  # the real 29.6 s timeline, not 68 frames / 15 fps = 4.5 s


def test_megamind_invalid_decord_timestamps_fall_back(videos_dir):
    assert probe(videos_dir / "Megamind.avi").backend == "pyav"
    _, times = read_frames(videos_dir / "Megamind.avi", Sampling(every=1))
    assert len(times) == 270 and np.all(np.diff(times) > 0)


def test_sizes_decord_cannot_resize_to_fall_back_to_pyav(small_world):
    video = next((small_world / "videos").glob("*.mp4"))  # 64 px; decord fails at 24 x 24 (decord#336)
    assert probe(video).backend == "decord"
    assert VideoReader(video, size=24).info.backend == "pyav"
    frames, times = read_frames(video, Sampling(fps=2), size=24)
    assert frames.shape[1:] == (24, 24, 3) and len(frames) == len(times)
    np.testing.assert_allclose(times, read_frames(video, Sampling(fps=2))[1])


def test_sampling_modes(videos_dir):
    clip = videos_dir / "bikes.mp4"  # 250 frames at 25 fps
    assert len(read_frames(clip, Sampling(every=10), size=32)[1]) == 25
    _, t = read_frames(clip, Sampling(num=7), size=32)
    assert len(t) == 7 and t[0] < 1.0 and t[-1] > 8.5
    _, t = read_frames(clip, Sampling(fps=1000), size=32)
    assert len(t) == 250  # never more frames than the video has
    with pytest.raises(ValueError):
        Sampling(fps=1, every=2)


def test_chunks_bound_memory(videos_dir):
    reader = VideoReader(videos_dir / "vtest.avi", size=32)
    sizes = [len(f) for f, _ in reader.iter_chunks(Sampling(fps=5), chunk=16)]
    assert max(sizes) <= 16 and sum(sizes) > 300


def test_bad_inputs_give_one_clear_reason(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    cases = {tmp_path / "missing.mp4": "not found", empty: "empty", text: "cannot open", tmp_path: "directory"}
    for path, reason in cases.items():
        with pytest.raises(VideoError, match=reason) as e:
            probe(path)
        assert str(path) in str(e.value) and "\n" not in str(e.value)


def test_find_videos_expands_folders_and_lists(tmp_path, videos_dir):
    listing = tmp_path / "list.txt"
    listing.write_text(f"# two clips\n{videos_dir / 'box.mp4'}\n{videos_dir / 'cup.mp4'}\n")
    assert [rel.name for _, rel in find_videos([listing])] == ["box.mp4", "cup.mp4"]
    assert len(find_videos([videos_dir])) == len(CLIPS)


def test_decord_validation_frame_is_handed_out_as_frame_zero(videos_dir):
    """The frame decord decodes to validate a video is the first read's frame 0 (so decord need not seek
    back to it): the same pixels as decoding it again, and only the first read gets it."""
    sampling = Sampling(fps=2.0)
    with VideoReader(videos_dir / "bikes.mp4", size=224) as reader:
        assert reader.info.backend == "decord" and reader._decord_first is not None
        reused = np.concatenate([f for f, _ in reader.iter_chunks(sampling, chunk=7)])
        assert reader._decord_first is None
        again = np.concatenate([f for f, _ in reader.iter_chunks(sampling, chunk=7)])
    assert reused.shape == again.shape and np.array_equal(reused, again)
