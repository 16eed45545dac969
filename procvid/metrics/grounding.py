"""Grounded step paths against ground truth (as tools/bench_ground.py)."""

from __future__ import annotations


def score_grounding(videos: list, grounding: dict) -> dict:
    """Mean step-order accuracy (1 - normalised edit distance of the step paths), share of exact paths
    and frame accuracy on the feature grid (background a class of its own), in percent, over the
    videos (procvid.segment.files.SegmentedVideo) with ground truth and a steps document in
    `grounding` (stem -> steps.json document); {} when there are none."""
    from procvid.ground import path_edit_accuracy
    from procvid.metrics.segmentation import frame_labels

    paths, exact, correct, total = [], 0, 0, 0
    for v in videos:
        doc = grounding.get(v.stem)
        if doc is None or v.truth is None:
            continue
        truth_path = [str(label) for _, _, label in sorted(v.truth)]
        predicted = [str(step) for step in doc["path"]]
        paths.append(path_edit_accuracy(predicted, truth_path))
        exact += predicted == truth_path
        t = v.doc["timestamps"]
        pred = frame_labels([(s["start"], s["end"], str(s["step"])) for s in doc["steps"]], t)
        true = frame_labels([(a, b, str(label)) for a, b, label in v.truth], t)
        correct += int(sum(p == g for p, g in zip(pred, true)))
        total += len(t)
    if not paths:
        return {}
    return {"videos": len(paths), "path_accuracy": 100 * sum(paths) / len(paths), "exact": 100 * exact / len(paths),
            "frame_accuracy": 100 * correct / max(total, 1)}
