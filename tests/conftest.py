import os
import sys

import pytest

from procvid.paths import shared_data_dir

DATA = shared_data_dir()
VIDEOS = DATA / "videos"
CLIPS = sorted(p for p in VIDEOS.glob("*") if p.suffix in (".mp4", ".avi")) if VIDEOS.exists() else []


@pytest.fixture(scope="session")
def videos_dir():
    if not CLIPS:
        pytest.skip(f"shared real clips not found at {VIDEOS} (set PROCVID_DATA)")
    return VIDEOS


@pytest.fixture(scope="session")
def tiny_encoder():
    from procvid.encoders import load_encoder

    return load_encoder("procvid-test-tiny:random", device="cpu")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """Six short synthetic videos, generated once for every test that trains on a world."""
    from procvid.data.synthetic import generate_world

    world = tmp_path_factory.mktemp("world")
    generate_world(world, num_videos=6, seed=11, size=64, min_duration=20, max_duration=25, progress=False)
    return world


@pytest.fixture
def procvid_cmd():
    """The CLI as a subprocess argv prefix (same interpreter as the tests)."""
    return [sys.executable, "-m", "procvid.cli"]


def pytest_configure(config):
    os.environ.setdefault("TQDM_DISABLE", "1")
