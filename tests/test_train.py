"""Training layer: every LightningModule runs with fast_dev_run; configs, resume, DDP on CPU;
the shipped encoder checkpoint loads through the encoder interface and works."""

import subprocess

import numpy as np
import pytest

from procvid.cli import main
from procvid.paths import REPO_ROOT

CLIP_CFG = str(REPO_ROOT / "configs/train/clip_tiny.yaml")
DEBUG_CFG = str(REPO_ROOT / "configs/trainer/debug.yaml")


def test_clip_fast_dev_run(small_world, tmp_path):
    """The debug preset's promise: no checkpoints or logs (the config's ModelCheckpoint with save_last
    would otherwise still write one when training ends)."""
    main(["train", "clip", "--config", CLIP_CFG, "--config", DEBUG_CFG, f"--data.world={small_world}",
          "--model.export_path", str(tmp_path / "w.safetensors"), "--data.batch_size", "32",
          "--trainer.callbacks+=ModelCheckpoint", f"--trainer.callbacks.dirpath={tmp_path / 'ckpt'}",
          "--trainer.callbacks.save_last=true"])
    assert (tmp_path / "w.safetensors").exists()
    assert not (tmp_path / "ckpt").exists()


def test_print_config_resolves_overrides(capsys):
    with pytest.raises(SystemExit):
        main(["train", "clip", "--config", CLIP_CFG, "--trainer.max_steps", "7", "--print_config"])
    out = capsys.readouterr().out
    assert "max_steps: 7" in out and "model_name: procvid-clip-tiny" in out


def _fit_args(world, root, steps, *presets):
    return ["--config", CLIP_CFG, *[a for p in presets for a in ("--config", p)], "--trainer.max_steps", str(steps), "--trainer.val_check_interval", "1",
            f"--data.world={world}", "--data.batch_size", "16", "--model.export_path", "null",
            "--trainer.default_root_dir", str(root), "--trainer.logger", "false", "--trainer.callbacks", "null",
            "--trainer.enable_progress_bar", "false"]


def test_checkpoint_and_resume(small_world, tmp_path):
    main(["train", "clip", *_fit_args(small_world, tmp_path, 2)])
    ckpts = list(tmp_path.rglob("*.ckpt"))
    assert ckpts, "a checkpoint is written"
    import torch

    assert torch.load(ckpts[0], weights_only=False)["global_step"] == 2
    main(["train", "clip", *_fit_args(small_world, tmp_path / "resumed", 3), "--ckpt_path", str(ckpts[0])])
    resumed = list((tmp_path / "resumed").rglob("*.ckpt"))
    assert torch.load(resumed[0], weights_only=False)["global_step"] == 3


@pytest.mark.slow
def test_ddp_on_cpu_with_two_processes(small_world, tmp_path, procvid_cmd):
    args = _fit_args(small_world, tmp_path, 2, str(REPO_ROOT / "configs/trainer/ddp_cpu.yaml"))
    done = subprocess.run(procvid_cmd + ["train", "clip", *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "distributed_backend=gloo" in done.stderr + done.stdout
    assert "All distributed processes registered" in done.stderr + done.stdout


def test_shipped_encoder_loads_and_classifies_steps(small_world):
    from procvid.encoders import DEFAULT_ENCODER_WEIGHTS, load_encoder
    from procvid.metrics.retrieval import zero_shot_step_accuracy
    from procvid.train.frames import load_world_frames

    by_default = load_encoder("default")
    by_path = load_encoder(f"procvid-clip-tiny:{DEFAULT_ENCODER_WEIGHTS}")
    assert by_default.id == by_path.id
    data = load_world_frames(small_world, fps=1.0, size=by_default.image_size, progress=False)
    texts, frame_text = data.text_index()
    img = by_default.encode_images(data.frames)
    np.testing.assert_allclose(img, by_path.encode_images(data.frames), atol=1e-5)
    acc = zero_shot_step_accuracy(img, by_default.encode_texts(texts), frame_text, data.task_text_ranges(), data.task)
    assert acc > 0.6  # chance is ~1/8; the model card reports the full held-out figure


def test_accuracy_by_position_in_step():
    from procvid.metrics.retrieval import accuracy_by_position, position_in_step

    video = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    step = np.array([1, 1, 1, 1, 2, 2, 2, 2])  # runs: 4 frames, 2 frames, 2 frames (another video)
    pos = position_in_step(video, step)
    np.testing.assert_allclose(pos, [0.125, 0.375, 0.625, 0.875, 0.25, 0.75, 0.25, 0.75])
    correct = np.array([0, 1, 1, 1, 0, 1, 1, 1], dtype=bool)
    np.testing.assert_allclose(accuracy_by_position(correct, pos, bins=2), [2 / 4, 4 / 4])
    assert np.isnan(accuracy_by_position(correct[:1], pos[:1], bins=2)[1])
