"""Segmentation metrics: hand-computed examples, edge cases, and a cross-check against
straightforward transcriptions of the MS-TCN definitions."""

import numpy as np
import pytest

from procvid.errors import ProcvidError
from procvid.metrics.segmentation import (
    BACKGROUND,
    boundary_prf,
    boundary_times,
    edit_score,
    evaluate,
    f1_at,
    frame_labels,
    hungarian_mapping,
    mof,
    num_segments,
    summarize,
)
from procvid.segment import Segment

BG = BACKGROUND
T10 = np.arange(10, dtype=float)


# ---------------------------------------------------------------- inputs


def test_frame_labels_sorts_paints_later_starts_over_overlaps_and_fills_background():
    segs = [(6.0, 8.0, "c"), {"start": 0.0, "end": 3.5, "label": "a"}, (3.0, 5.0, "b")]
    assert frame_labels(segs, T10).tolist() == ["a", "a", "a", "b", "b", BG, "c", "c", BG, BG]


def test_frame_labels_ranks_unlabeled_segments_and_reads_segment_objects():
    segs = [Segment(5.0, 10.0, 5, 10, 0.3, 7), Segment(0.0, 5.0, 0, 5, 1.0, 2)]
    assert frame_labels(segs, T10).tolist() == [0] * 5 + [1] * 5
    assert frame_labels([(0.0, 2.0), (2.0, 4.0)], T10, background=-1).tolist() == [0, 0, 1, 1] + [-1] * 6


def test_boundary_times_are_label_changes_excluding_video_start_and_end():
    assert boundary_times([(0.0, 3.0, "a"), (3.0, 10.0, "b")], T10).tolist() == [3.0]
    # A step bordered by background has a boundary at each end.
    assert boundary_times([(2.0, 5.0, "a")], T10).tolist() == [2.0, 5.0]
    assert boundary_times(["a"] * 10).tolist() == []
    assert boundary_times(["a", "a", "b"], timestamps=[0.5, 1.0, 1.5]).tolist() == [1.5]


def test_num_segments_counts_non_background_runs():
    assert num_segments(["a", "a", BG, "a", "b"]) == 3
    assert num_segments([], T10) == 0


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: mof(["a"] * 3, ["a"] * 4), "3 frames but ground truth has 4"),
        (lambda: mof([(0, 1)], ["a"] * 4), "timestamps"),
        (lambda: frame_labels([(3.0, 2.0, "a")], T10), "start < end"),
        (lambda: frame_labels([(0.0, float("nan"))], T10), "start < end"),
        (lambda: frame_labels([("x", 2.0)], T10), "numbers"),
        (lambda: frame_labels([(1.0,)], T10), "cannot read"),
        (lambda: frame_labels([], [0.0, 2.0, 1.0]), "strictly increasing"),
        (lambda: boundary_times(["a", "b"], timestamps=[0.0, 1.0, 2.0]), "2 frame labels but 3"),
        (lambda: boundary_prf([1.0], [1.0], -1), "tolerance"),
        (lambda: boundary_prf([np.nan], [1.0], 1), "finite"),
        (lambda: summarize([]), "no videos"),
    ],
)
def test_user_mistakes_raise_one_line_procvid_errors(call, message):
    with pytest.raises(ProcvidError, match=message) as e:
        call()
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------- boundaries


def test_boundary_prf_hand_example():
    s = boundary_prf([1.0, 5.0, 9.5], [1.5, 5.0, 20.0], tolerance=1.0)
    assert (s.matched, s.num_pred, s.num_true) == (2, 3, 3)
    assert (s.precision, s.recall, s.f1) == pytest.approx((2 / 3, 2 / 3, 2 / 3))


def test_boundary_matching_is_one_to_one_and_maximal():
    # Two predictions near one true boundary: only one counts.
    s = boundary_prf([4.9, 5.1], [5.0], tolerance=1.0)
    assert (s.matched, s.precision, s.recall) == (1, 0.5, 1.0)
    # Pairing 1.0 with 1.5 (the nearest) would leave 0.0 unmatched; the maximum matching pairs both.
    assert boundary_prf([1.0, 2.0], [0.0, 1.5], tolerance=1.0).matched == 2
    # The tolerance is inclusive.
    assert boundary_prf([3.0], [5.0], tolerance=2.0).matched == 1


def test_boundary_prf_sorts_unsorted_input():
    a = boundary_prf([9.5, 1.0, 5.0], [20.0, 5.0, 1.5], tolerance=1.0)
    assert a == boundary_prf([1.0, 5.0, 9.5], [1.5, 5.0, 20.0], tolerance=1.0)


def test_boundary_prf_empty_sides():
    both = boundary_prf([], [], 1.0)
    assert (both.precision, both.recall, both.f1) == (1.0, 1.0, 1.0)
    no_pred = boundary_prf([], [3.0], 1.0)
    assert (no_pred.precision, no_pred.recall, no_pred.f1) == (0.0, 0.0, 0.0)
    no_true = boundary_prf([3.0], [], 1.0)
    assert (no_true.precision, no_true.recall, no_true.f1) == (0.0, 0.0, 0.0)


# ---------------------------------------------------------------- MoF / Hungarian


GT = ["a"] * 4 + ["b"] * 4 + [BG] * 2
PRED = [0] * 3 + [1] * 5 + [2] * 2


def test_mof_with_hungarian_matching_hand_example():
    # Overlaps: 0->a 3; 1->a 1, b 4; 2->bg 2. Best one-to-one: 0->a, 1->b, 2->bg: 9 of 10 frames.
    assert hungarian_mapping(PRED, GT) == {0: "a", 1: "b", 2: BG}
    assert mof(PRED, GT) == pytest.approx(90.0)
    assert mof(PRED, GT, hungarian=False) == 0.0


def test_mof_background_handling():
    gt = ["a", "a", "b", "b", BG, BG]
    pred = [0, 0, 0, 1, 1, 1]
    # Background as a class: 0->a (2 frames) and 1->bg (2 frames) beat 0->a, 1->b (3 frames).
    assert mof(pred, gt) == pytest.approx(100 * 4 / 6)
    # Ignoring background: only the 4 step frames count and the matching targets steps: 0->a, 1->b.
    assert mof(pred, gt, ignore_background=True) == pytest.approx(75.0)
    assert hungarian_mapping(pred, gt, ignore_background=True) == {0: "a", 1: "b"}


def test_more_predicted_segments_than_steps_leave_the_extra_ones_wrong():
    gt = ["a"] * 6
    pred = [0, 0, 0, 1, 1, 1]
    assert hungarian_mapping(pred, gt) == {0: "a"}
    assert mof(pred, gt) == pytest.approx(50.0)
    # The unmatched segment is a false positive / insertion.
    assert f1_at(pred, gt)[0.1] == pytest.approx(100 * 2 * 0.5 * 1 / 1.5)
    assert edit_score(pred, gt) == pytest.approx(50.0)


# ---------------------------------------------------------------- Edit / F1 (MS-TCN)


def test_edit_score_hand_examples():
    # Segment sequences [a, b, c] vs [a, c]: one deletion, normalised by 3.
    pred = ["a", "a", "b", "c", "c"]
    true = ["a", "a", "a", "c", "c"]
    assert edit_score(pred, true, hungarian=False) == pytest.approx(100 * (1 - 1 / 3))
    # Background runs are dropped: [a, b] vs [a, b].
    assert edit_score(["a", BG, "b"], ["a", "b", "b"], hungarian=False) == 100.0
    # Segment lengths do not matter, only the order.
    assert edit_score(["a", "b", "b", "b"], ["a", "a", "a", "b"], hungarian=False) == 100.0


def test_f1_hand_example_with_a_double_hit():
    # Truth: a over frames 0-9. Prediction: a over 0-2 (IoU 0.3) and a over 4-9 (IoU 0.6).
    true = ["a"] * 10
    pred = ["a"] * 3 + [BG] + ["a"] * 6
    f = f1_at(pred, true, hungarian=False)
    # @0.10: the first takes the only true segment, the second finds it taken -> tp 1, fp 1, fn 0.
    # @0.50: the first is below the threshold (fp), the second hits -> tp 1, fp 1, fn 0.
    assert f == pytest.approx({0.1: 100 * 2 / 3, 0.25: 100 * 2 / 3, 0.5: 100 * 2 / 3})
    counts = evaluate(pred, true, hungarian=False, overlaps=(0.1, 0.5, 0.75)).f1_counts
    assert counts == {0.1: (1, 1, 0), 0.5: (1, 1, 0), 0.75: (0, 2, 1)}


def test_f1_needs_matching_labels():
    assert f1_at(["x"] * 10, ["a"] * 10, hungarian=False)[0.1] == 0.0
    assert f1_at(["x"] * 10, ["a"] * 10)[0.5] == 100.0  # Hungarian maps x -> a


def _levenshtein(a, b):
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
    return d[-1][-1]


def _segments(labels, bg):
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            if labels[start] != bg:
                out.append((labels[start], start, i))
            start = i
    return out


def _ms_tcn_scores(pred, true, overlap, bg=BG):
    """The published definitions written out naively, as the cross-check."""
    p, y = _segments(pred, bg), _segments(true, bg)
    n = max(len(p), len(y))
    edit = 100.0 if n == 0 else (1 - _levenshtein([s[0] for s in p], [s[0] for s in y]) / n) * 100
    hit = [False] * len(y)
    tp = fp = 0
    for label, s, e in p:
        ious = [
            (min(e, ye) - max(s, ys)) / (max(e, ye) - min(s, ys)) if label == yl else 0.0 for yl, ys, ye in y
        ]
        k = int(np.argmax(ious)) if ious else None
        if k is not None and ious[k] >= overlap and not hit[k]:
            tp, hit[k] = tp + 1, True
        else:
            fp += 1
    return edit, (tp, fp, len(y) - sum(hit))


@pytest.mark.parametrize("seed", range(20))
def test_edit_and_f1_agree_with_the_reference_definitions_on_random_sequences(seed):
    rng = np.random.default_rng(seed)
    vocab = ["a", "b", "c", BG]

    def random_labels():
        runs = rng.integers(1, 8, size=rng.integers(1, 9))
        return [vocab[i] for i, n in zip(rng.integers(0, 4, size=len(runs)), runs) for _ in range(n)]

    true = random_labels()
    pred = random_labels()
    n = min(len(true), len(pred))
    true, pred = true[:n], pred[:n]
    scores = evaluate(pred, true, hungarian=False, overlaps=(0.1, 0.25, 0.5))
    for o in (0.1, 0.25, 0.5):
        edit, counts = _ms_tcn_scores(pred, true, o)
        assert scores.edit == pytest.approx(edit)
        assert scores.f1_counts[o] == counts


# ---------------------------------------------------------------- edge cases and evaluate()


TRUTH = [(0.0, 4.0, "a"), (4.0, 8.0, "b"), (8.0, 10.0, "c")]


def test_prediction_equal_to_truth_scores_perfectly():
    pred = [
        Segment(0.0, 4.0, 0, 4, 1.0, 1),
        Segment(4.0, 8.0, 4, 8, 0.5, 5),
        Segment(8.0, 10.0, 8, 10, 0.4, 9),
    ]
    s = evaluate(pred, TRUTH, T10).to_dict()
    assert s == {
        "mof": 100.0,
        "edit": 100.0,
        "f1@10": 100.0,
        "f1@25": 100.0,
        "f1@50": 100.0,
        "boundary_precision": 1.0,
        "boundary_recall": 1.0,
        "boundary_f1": 1.0,
        "num_pred_segments": 3,
        "num_true_segments": 3,
        "num_segments_error": 0,
    }
    assert evaluate(TRUTH, TRUTH, T10, hungarian=False).to_dict() == s


def test_no_prediction():
    s = evaluate([], TRUTH, T10)
    assert (s.mof, s.edit, s.f1(0.1), s.boundaries.f1) == (0.0, 0.0, 0.0, 0.0)
    assert s.num_segments_error == -3
    # Predicting nothing where nothing happens is right.
    empty = evaluate([], [], T10).to_dict()
    assert empty["mof"] == empty["edit"] == empty["f1@50"] == 100.0 and empty["boundary_f1"] == 1.0


def test_single_predicted_segment():
    s = evaluate([(0.0, 10.0)], TRUTH, T10)
    assert s.mof == pytest.approx(40.0)  # the segment maps to a: 4 of 10 frames
    assert s.edit == pytest.approx(100 * (1 - 2 / 3))  # [a] vs [a, b, c]
    assert s.f1(0.1) == pytest.approx(100 * 2 * (1 * 1 / 3) / (1 + 1 / 3))  # IoU 0.4 -> one tp
    assert s.f1(0.5) == 0.0
    assert (s.boundaries.num_pred, s.boundaries.num_true, s.boundaries.recall) == (0, 2, 0.0)
    assert s.num_segments_error == -2


def test_unsorted_segment_lists_are_sorted():
    assert evaluate(TRUTH[::-1], TRUTH, T10).to_dict() == evaluate(TRUTH, TRUTH, T10).to_dict()


def test_boundary_tolerance_in_evaluate():
    pred = [(0.0, 5.0), (5.0, 10.0)]
    truth = [(0.0, 3.0, "a"), (3.0, 10.0, "b")]
    assert evaluate(pred, truth, T10, tolerance=1.0).boundaries.matched == 0
    assert evaluate(pred, truth, T10, tolerance=2.0).boundaries.matched == 1


def test_summarize_pools_like_the_field():
    v1 = evaluate([(0.0, 10.0)], TRUTH, T10)  # MoF 4/10
    v2 = evaluate(TRUTH, TRUTH, np.arange(30, dtype=float) / 3)  # 30 frames, all right
    out = summarize([v1, v2])
    assert out["mof"] == pytest.approx(100 * (4 + 30) / 40)  # frames pooled
    assert out["edit"] == pytest.approx((v1.edit + 100) / 2)  # videos averaged
    # F1@50 from summed counts: v1 (0 tp, 1 fp, 3 fn) + v2 (3 tp, 0 fp, 0 fn).
    p, r = 3 / 4, 3 / 6
    assert out["f1@50"] == pytest.approx(100 * 2 * p * r / (p + r))
    assert out["boundary_recall"] == pytest.approx(2 / 4)
    assert out["num_segments_mae"] == pytest.approx(1.0)
    assert out["num_videos"] == 2


def test_detector_output_evaluates_perfectly_on_its_own_boundaries():
    from procvid.segment import get_detector

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 64))
    X = np.repeat(centres, [20, 30, 25], axis=0) + 0.01 * rng.normal(size=(75, 64))
    t = np.arange(75) * 0.5
    segs = get_detector("kcpd").detect(X, t)
    truth = [(0.0, 10.0, "pour"), (10.0, 25.0, "stir"), (25.0, 37.5, "serve")]
    s = evaluate(segs, truth, t, tolerance=0.5)
    assert (s.mof, s.edit, s.f1(0.5), s.boundaries.f1) == (100.0, 100.0, 100.0, 1.0)
