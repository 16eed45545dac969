"""The clip-level video encoder: sequence semantics through the embedding pipeline, training with
Lightning, loading by spec, the shipped checkpoint's step grounding."""

import numpy as np
import pytest
import torch

from procvid.cli import main
from procvid.errors import EncoderError
from procvid.paths import REPO_ROOT

VIDEO_CFG = str(REPO_ROOT / "configs/train/video_tiny.yaml")
DEBUG_CFG = str(REPO_ROOT / "configs/trainer/debug.yaml")


@pytest.fixture(scope="module")
def trained_folder(small_world, tmp_path_factory):
    """A video encoder trained for a few steps on the small world and exported."""
    out = tmp_path_factory.mktemp("video_model")
    main(["train", "video", "--config", VIDEO_CFG, "--config", DEBUG_CFG, f"--data.world={small_world}",
          "--data.run_length", "8", "--data.batch_size", "2", "--model.export_dir", str(out)])
    return out


def test_training_exports_a_loadable_encoder(trained_folder):
    from procvid.encoders import load_encoder

    enc = load_encoder(f"video:{trained_folder}", device="cpu")
    assert enc.dim == 64 and enc.image_size == 48 and enc.fps == 2.0
    assert enc.id.startswith("procvid-video-tiny:") and "@" in enc.id
    assert enc.config["kind"] == "video-encoder" and enc.config["domain"] == "procvid synthetic world v1"
    texts = enc.encode_texts(["put the cup on the saucer", "the hand is idle between steps"])
    np.testing.assert_allclose(texts, load_encoder("default").encode_texts(
        ["put the cup on the saucer", "the hand is idle between steps"]), atol=1e-6)


def test_an_embedding_depends_on_the_neighbouring_frames(trained_folder):
    from procvid.encoders import load_encoder

    enc = load_encoder(f"video:{trained_folder}", device="cpu")
    frames = np.random.default_rng(0).integers(0, 255, (12, 48, 48, 3), dtype=np.uint8)
    base = enc.encode_images(frames)
    assert base.shape == (12, 64)
    np.testing.assert_allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)
    changed = frames.copy()
    changed[6] = 255 - changed[6]
    moved = enc.encode_images(changed)
    window = enc.net.context
    differs = np.abs(moved - base).max(1) > 1e-6
    assert differs[6 - window : 6 + window + 1].all()  # the frames whose window holds frame 6
    assert not differs[: 6 - window].any() and not differs[6 + window + 1 :].any()
    # How frames are grouped into calls does not change a single bit (fixed-size forward passes).
    per_frame = enc.encode_frames(frames)
    for size in (1, 5, 7):
        grouped = np.concatenate([enc.encode_frames(frames[i : i + size]) for i in range(0, len(frames), size)])
        assert np.array_equal(grouped, per_frame)
    # Videos shorter than the window (the ends repeat) and no frames at all.
    assert enc.encode_images(frames[:1]).shape == (1, 64)
    assert enc.encode_images(frames[:0]).shape == (0, 64)


def test_embedding_pipeline_applies_the_temporal_stage_per_video(trained_folder, small_world, tmp_path):
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.features import entry_paths, load_features
    from procvid.video import Sampling, find_videos, read_frames

    enc = load_encoder(f"video:{trained_folder}", device="cpu")
    videos = find_videos([small_world / "videos"])[:2]
    # Small batches: each video's frames arrive in several chunks, mixed with the other video's.
    summary = embed_videos(videos, tmp_path, enc, Sampling(fps=2.0), batch_size=7, progress=False)
    assert summary.done == 2
    for path, rel in videos:
        X, t, meta = load_features(entry_paths(tmp_path, rel)[1])
        frames, times = read_frames(path, Sampling(fps=2.0), size=enc.image_size)
        np.testing.assert_allclose(t, times)
        np.testing.assert_allclose(X, enc.encode_images(frames), atol=2e-3)  # features are float16
        assert meta["encoder"] == enc.id


def test_bad_video_encoder_folder_is_a_clear_error(tmp_path):
    from procvid.encoders import load_encoder

    with pytest.raises(EncoderError, match="not a procvid model folder"):
        load_encoder(f"video:{tmp_path}")
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match="not a procvid model folder"):
        load_encoder(f"video:{tmp_path}")
    (tmp_path / "config.json").write_text('{"format": "procvid-model", "format_version": 1, "kind": "video-encoder"}')
    with pytest.raises(EncoderError, match="corrupt weights"):
        load_encoder(f"video:{tmp_path}")


def test_own_task_accuracy_restricts_to_the_task_and_idle():
    from procvid.train.video import own_task_accuracy

    text = torch.eye(5)  # texts 0-1: task 0, texts 2-3: task 1, text 4: idle
    emb = torch.eye(5)[[0, 3, 4, 2]]
    emb[3, 1] = 0.1  # the last frame looks most like text 2, a step of the other task, then like text 1
    targets = torch.tensor([0, 3, 4, 0])
    task = torch.tensor([0, 1, 1, 0])
    assert own_task_accuracy(emb, text, targets, task, [range(0, 2), range(2, 4)]) == pytest.approx(0.75)
    targets[3] = 1  # among its task's texts and idle, text 1 is the nearest
    assert own_task_accuracy(emb, text, targets, task, [range(0, 2), range(2, 4)]) == pytest.approx(1.0)


def test_shipped_video_encoder_grounds_steps_and_idle(small_world):
    from procvid.encoders import load_encoder
    from procvid.train.frames import load_world_frames
    from procvid.train.video import IDLE_TEXT, own_task_accuracy

    enc = load_encoder("video", device="cpu")
    data = load_world_frames(small_world, fps=2.0, size=enc.image_size, progress=False, keep_idle=True)
    texts, idx = data.text_index()
    targets = np.where(data.step > 0, idx, len(texts))
    emb = np.concatenate([enc.encode_images(data.frames[data.video == v]) for v in range(len(data.videos))])
    acc = own_task_accuracy(torch.from_numpy(emb), torch.from_numpy(enc.encode_texts([*texts, IDLE_TEXT])),
                            torch.from_numpy(targets), torch.from_numpy(data.task), data.task_text_ranges())
    assert acc > 0.7  # idle included; chance is ~1/9; the model card reports the held-out figure
