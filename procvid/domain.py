"""Which footage a model is for, which footage an input is, and one warning when they disagree.

Our shipped models are trained on procvid's synthetic world and declare it ("procvid synthetic world
v1" in their config); real pretrained weights declare nothing and are taken to suit any footage. A
video belongs to a synthetic world when it lies in the `videos/` folder of a world (its `world.json`
names the version); feature files carry their source video's path.
"""

from __future__ import annotations

import json
from pathlib import Path

from procvid.checkpoint import SYNTHETIC_DOMAIN


def video_domain(video: str | Path | None) -> str | None:
    """"procvid synthetic world vN" for a video of a synthetic world, else None (other footage)."""
    if not video:
        return None
    try:
        world = json.loads((Path(video).resolve().parent.parent / "world.json").read_text())
        return SYNTHETIC_DOMAIN.format(version=world["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mismatch_warnings(models: dict[str, str | None], videos: list) -> list[str]:
    """One line per model with a declared domain that some of `videos` are not from."""
    domains = [video_domain(v) for v in videos]
    lines = []
    for name, domain in models.items():
        if not domain:
            continue
        other = sum(d != domain for d in domains)
        if other:
            lines.append(f"{name} is a model for {domain} videos, but {other} of {len(domains)} inputs are other "
                         f"footage: its results on them mean little (configs/run/default.yaml is the preset for "
                         f"real videos)")
    return lines
