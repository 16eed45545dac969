"""Real datasets' step timing, summarised as quantiles, for the v2 synthetic world.

`timing.json` (next to this module) holds, per dataset (crosstask, coin, captaincook4d), quantiles at
LEVELS of: step durations, gaps between consecutive steps (negative where the annotations overlap),
the lead before the first step, the tail after the last one (where the source gives the video's
length), video lengths and steps per video, plus how often a step is performed again in the same
video. All times in seconds. Recompute it from the shared annotations with

    python tools/synth_timing.py            # prints the summaries (exit 1: timing.json is stale)
    python tools/synth_timing.py --write    # rewrites timing.json

plan_video_v2 samples from the quantiles by inverse CDF (linear between the stored levels).
"""

from __future__ import annotations

import csv
import json
from functools import lru_cache
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError

TIMINGS = ("crosstask", "coin", "captaincook4d")
LEVELS = (0.0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65,
          0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1.0)
DIGITS = 3  # stored precision (s)
PATH = Path(__file__).with_name("timing.json")


def _quantiles(values) -> list[float]:
    q = np.quantile(np.asarray(values, dtype=float), LEVELS)
    return [round(float(x), DIGITS) for x in q]


def _video_lengths(name: str, dataset) -> dict[str, float]:
    """Video lengths (s) where the source states them: COIN's `duration`, CaptainCook4D's
    metadata/video_information.csv; CrossTask's annotations have none."""
    if name == "coin":
        return {v.video_id: float(v.meta["duration"]) for v in dataset.videos
                if v.meta.get("duration")}
    if name == "captaincook4d":
        path = Path(dataset.root) / "metadata" / "video_information.csv"
        if path.exists():
            with open(path, newline="") as f:
                return {row["recording_id"]: float(row["duration(sec)"]) for row in csv.DictReader(f)}
    return {}


def dataset_timing(name: str, root=None) -> dict:
    """Timing summary of one dataset, from its annotations (load_dataset(name))."""
    from procvid.data import load_dataset

    dataset = load_dataset(name) if root is None else load_dataset(name, root=root)
    lengths = _video_lengths(name, dataset)
    steps, gaps, leads, tails, spans, counts = [], [], [], [], [], []
    performed = repeats = immediate = 0
    for video in dataset.videos:
        segs = [s for s in video.segments if s.start is not None and s.end is not None]
        if not segs:
            continue
        steps += [s.end - s.start for s in segs]
        gaps += [b.start - a.end for a, b in zip(segs, segs[1:])]
        leads.append(segs[0].start)
        last = max(s.end for s in segs)
        length = lengths.get(video.video_id)
        if length is not None and length >= last:
            tails.append(length - last)
            spans.append(length)
        else:
            spans.append(last)
        counts.append(len(segs))
        seen = set()
        for i, s in enumerate(segs):
            performed += 1
            if s.step_id in seen:
                repeats += 1
                immediate += segs[i - 1].step_id == s.step_id
            seen.add(s.step_id)
    return {
        "videos": len(counts),
        "segments": performed,
        "video_length_source": "stated" if len(tails) == len(counts) else
                               ("mixed" if tails else "last step end"),
        "step_duration": _quantiles(steps),
        "gap": _quantiles(gaps),
        "lead": _quantiles(leads),
        "tail": _quantiles(tails) if tails else None,
        "video_length": _quantiles(spans),
        "steps_per_video": _quantiles(counts),
        "repeat_rate": round(repeats / performed, 4),
        "immediate_repeat_share": round(immediate / max(repeats, 1), 4),
        "overlap_rate": round(float(np.mean(np.asarray(gaps) < 0)), 4) if gaps else 0.0,
    }


def compute_timing(datasets=TIMINGS) -> dict:
    """The whole timing.json document, recomputed from the shared annotations."""
    return {"levels": list(LEVELS), "datasets": {name: dataset_timing(name) for name in datasets}}


@lru_cache(maxsize=None)
def _stored() -> dict:
    return json.loads(PATH.read_text())


def load_timing(name: str) -> dict:
    """Stored summary of dataset `name` (one of TIMINGS), with "levels" added."""
    doc = _stored()
    if name not in doc["datasets"]:
        raise ProcvidError(f"unknown timing {name!r} (known: {', '.join(doc['datasets'])})")
    return {"levels": doc["levels"], **doc["datasets"][name]}


def sample_quantiles(quantiles, levels, rng: np.random.Generator, size=None):
    """Inverse-CDF draws from a distribution given by its quantiles (linear between levels)."""
    return np.interp(rng.random(size), levels, quantiles)


def _table(doc: dict) -> str:
    lines = [f"{'dataset':14} {'videos':>6} {'step p50':>9} {'p10-p90':>13} {'gap p50':>8} "
             f"{'lead p50':>8} {'length p50':>10} {'steps p50':>9} {'repeats':>7}"]
    mid = doc["levels"].index(0.5)
    lo, hi = doc["levels"].index(0.1), doc["levels"].index(0.9)
    for name, d in doc["datasets"].items():
        s = d["step_duration"]
        lines.append(f"{name:14} {d['videos']:6d} {s[mid]:9.1f} {s[lo]:6.1f}-{s[hi]:<6.1f} "
                     f"{d['gap'][mid]:8.1f} {d['lead'][mid]:8.1f} {d['video_length'][mid]:10.1f} "
                     f"{d['steps_per_video'][mid]:9.0f} {d['repeat_rate']:7.1%}")
    return "\n".join(lines)


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite {PATH.name}")
    args = parser.parse_args(argv)
    doc = compute_timing()
    print(_table(doc))
    if args.write:
        from procvid.outputs import atomic_write

        atomic_write(PATH, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {PATH}")
    elif doc != _stored():
        print(f"differs from the stored {PATH.name} (rerun with --write)")
        return 1
    return 0
