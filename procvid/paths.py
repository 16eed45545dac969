"""Where procvid finds shared data and its shipped checkpoints."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS_DIR = REPO_ROOT / "checkpoints"


def shared_data_dir() -> Path:
    """Root of the real annotation data; override with PROCVID_DATA (default ../shared/data)."""
    return Path(os.environ.get("PROCVID_DATA", REPO_ROOT.parent / "shared" / "data"))
