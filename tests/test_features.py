import os

import numpy as np
import pytest

from procvid import features
from procvid.errors import ProcvidError


@pytest.fixture
def entry(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x" * 100)
    key = features.cache_key(video, "enc-a", {"fps": 1.0}, 32)
    emb = np.random.default_rng(0).normal(size=(5, 8)).astype(np.float32)
    out = tmp_path / "out"
    features.write_entry(out, "sub/v.mp4", emb, np.arange(5.0), key)
    return video, key, emb, out


def test_roundtrip_and_validity(entry):
    video, key, emb, out = entry
    tensor, sidecar = features.entry_paths(out, "sub/v.mp4")
    assert tensor.name == "v.safetensors" and sidecar.parent.name == "sub"
    assert features.is_valid(out, "sub/v.mp4", key)
    got, times, meta = features.load_features(sidecar)
    np.testing.assert_allclose(got, emb, atol=2e-3)  # stored as float16
    assert list(times) == [0, 1, 2, 3, 4] and meta["encoder"] == "enc-a"


def test_changed_settings_or_source_invalidate(entry):
    video, key, _, out = entry
    assert not features.is_valid(out, "sub/v.mp4", {**key, "encoder": "enc-b"})
    assert not features.is_valid(out, "sub/v.mp4", {**key, "sampling": {"fps": 2.0}})
    os.utime(video, ns=(0, 10**9))
    assert not features.is_valid(out, "sub/v.mp4", features.cache_key(video, "enc-a", {"fps": 1.0}, 32))


def test_corrupt_or_partial_entries_are_detected(entry):
    _, key, _, out = entry
    tensor, sidecar = features.entry_paths(out, "sub/v.mp4")
    blob = tensor.read_bytes()
    tensor.write_bytes(blob[: len(blob) // 2])  # partial write
    assert not features.is_valid(out, "sub/v.mp4", key)
    with pytest.raises(ProcvidError, match="corrupt or partial"):
        features.load_features(sidecar)
    tensor.write_bytes(blob)
    sidecar.write_text('{"truncated": ')
    assert not features.is_valid(out, "sub/v.mp4", key)
    sidecar.unlink()
    assert not features.is_valid(out, "sub/v.mp4", key)
