"""Scores of segments files (procvid.segment.files) against ground-truth steps, and their table
(`procvid eval segment`, `procvid run`, tools/bench_segment.py)."""

from __future__ import annotations

import json
import os

from procvid.errors import ProcvidError
from procvid.segment.files import SEGMENTS_SUFFIX, read_segments_file, segments_entries, stem_of

SCORE_COLUMNS = [("boundary_precision", "B-P", "{:.3f}"), ("boundary_recall", "B-R", "{:.3f}"),
                 ("boundary_f1", "B-F1", "{:.3f}"), ("mof", "MoF", "{:.1f}"), ("f1@10", "F1@10", "{:.1f}"),
                 ("f1@25", "F1@25", "{:.1f}"), ("f1@50", "F1@50", "{:.1f}"), ("edit", "Edit", "{:.1f}"),
                 ("num_segments_mae", "|dK|", "{:.2f}")]


def method_label(header: dict) -> str:
    return header["method"] + (" (K given)" if header.get("num_segments") is not None else "")


def evaluate_predictions(pred_dir: str | os.PathLike, gt: dict, tolerance: float = 1.0):
    """Score every ``*.segments.json`` under ``pred_dir`` against ``gt`` (from
    :func:`procvid.data.crosstask.read_ground_truth`), matched by video id (the file stem). Returns
    ({label: [VideoScores]}, {label: params}, ids of predictions without ground truth). The label is
    the method, with "(K given)" for known K and "#n" when a method ran with several settings."""
    from procvid.metrics.segmentation import evaluate

    files = segments_entries(pred_dir)
    if not files:
        raise ProcvidError(f"{pred_dir}: no *{SEGMENTS_SUFFIX} files (procvid segment writes them)")
    runs: dict[tuple[str, str], list] = {}  # (label, settings) -> [(header, segments, video id)]
    unmatched = []
    for f in files:
        header, segments = read_segments_file(f)
        video_id = stem_of(f)
        if video_id not in gt:
            unmatched.append(video_id)
            continue
        settings = json.dumps(header["params"], sort_keys=True)
        runs.setdefault((method_label(header), settings), []).append((header, segments, video_id))
    scores, params = {}, {}
    for (label, settings), videos in runs.items():
        variants = sorted(s for lb, s in runs if lb == label)
        if len(variants) > 1:
            label = f"{label} #{variants.index(settings) + 1}"
        params[label] = json.loads(settings)
        scores[label] = [evaluate(segs, gt[vid], h["timestamps"], tolerance=tolerance) for h, segs, vid in videos]
    return scores, params, unmatched


def format_table(rows: list[tuple[str, dict]], extra: list[tuple[str, str, str]] = ()) -> str:
    """A fixed-width table of dataset summaries (procvid.metrics.segmentation.summarize)."""
    columns = [*SCORE_COLUMNS, *extra]
    width = max([len("method"), *(len(label) for label, _ in rows)])
    lines = [f"{'method':<{width}} {'videos':>6} " + " ".join(f"{name:>7}" for _, name, _ in columns)]
    for label, summary in rows:
        cells = [fmt.format(summary[key]) if key in summary else "-" for key, _, fmt in columns]
        lines.append(f"{label:<{width}} {summary.get('num_videos', 0):>6} " + " ".join(f"{c:>7}" for c in cells))
    return "\n".join(lines)


def score_segments(segments_dir: str | os.PathLike, gt: dict) -> dict[str, dict]:
    """Pooled scores per method label (procvid.metrics.segmentation.summarize) of the segments files
    under `segments_dir` that have ground truth in `gt`."""
    from procvid.metrics.segmentation import summarize

    scores, _, _ = evaluate_predictions(segments_dir, gt)
    return {label: summarize(videos) for label, videos in scores.items()}


def write_scores(path: str | os.PathLike, rows: list[tuple[str, dict]], params: dict) -> None:
    """The scores per method label with its detector parameters, as JSON."""
    from procvid.outputs import atomic_write

    atomic_write(path, json.dumps({label: {"params": params[label], **summary} for label, summary in rows}, indent=1))
