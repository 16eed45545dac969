"""The CUDA path of `procvid embed`: features on the GPU match the CPU ones, and bf16 autocast runs.
Marked `gpu`: conftest skips these where torch sees no CUDA device."""

import numpy as np
import pytest

from procvid import features
from procvid.cli import main
from procvid.video import find_videos

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def tiny_random(tmp_path_factory):
    """procvid-test-tiny with random weights, saved once to a file: `procvid-test-tiny:random` draws new
    weights at every load in one process, and the two devices must see the same ones."""
    import open_clip
    import torch

    from procvid.encoders.open_clip_encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("tiny") / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model("procvid-test-tiny").state_dict(), weights)
    return f"procvid-test-tiny:{weights}"


def embed(videos_dir, spec, out, device, precision):
    assert main(["embed", str(videos_dir), "--out", str(out), "--encoder", spec, "--fps", "1",
                 "--device", device, "--precision", precision, "--no-progress"]) == 0
    entries = {}
    for _, rel in find_videos([videos_dir]):
        emb, times, meta = features.load_features(features.entry_paths(out, rel)[1])
        entries[str(rel)] = emb, times, meta
    return entries


@pytest.fixture(scope="module")
def on_cpu(videos_dir, tiny_random, tmp_path_factory):
    return embed(videos_dir, tiny_random, tmp_path_factory.mktemp("cpu"), "cpu", "fp32")


def cosines(a, b):
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_cuda_features_match_the_cpu_ones(videos_dir, tiny_random, on_cpu, tmp_path):
    on_cuda = embed(videos_dir, tiny_random, tmp_path / "cuda", "cuda", "fp32")
    assert sorted(on_cuda) == sorted(on_cpu) and len(on_cpu) >= 10
    for name, (emb, times, meta) in on_cuda.items():
        cpu_emb, cpu_times, cpu_meta = on_cpu[name]
        np.testing.assert_array_equal(times, cpu_times, err_msg=name)  # same frames decoded
        assert meta["encoder"] == cpu_meta["encoder"]
        # float16 files; cuDNN convolutions may use TF32
        np.testing.assert_allclose(emb, cpu_emb, atol=2e-2, err_msg=name)
        assert cosines(emb, cpu_emb).min() > 0.999, name


def test_cuda_bf16_runs_and_stays_close(videos_dir, tiny_random, on_cpu, tmp_path):
    on_bf16 = embed(videos_dir, tiny_random, tmp_path / "bf16", "cuda", "bf16")
    assert sorted(on_bf16) == sorted(on_cpu)
    for name, (emb, times, _) in on_bf16.items():
        cpu_emb, cpu_times, _ = on_cpu[name]
        assert emb.shape == cpu_emb.shape and np.isfinite(emb).all(), name
        np.testing.assert_array_equal(times, cpu_times, err_msg=name)
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-2, err_msg=name)
        assert cosines(emb, cpu_emb).min() > 0.95, name  # bf16 keeps 8 bits of mantissa
