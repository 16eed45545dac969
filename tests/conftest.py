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


@pytest.fixture
def procvid_cmd():
    """The CLI as a subprocess argv prefix (same interpreter as the tests)."""
    return [sys.executable, "-m", "procvid.cli"]


def pytest_configure(config):
    os.environ.setdefault("TQDM_DISABLE", "1")
