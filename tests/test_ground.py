"""Step grounding: the order-aware alignment on similarity matrices with known answers, videos of
known step embeddings, path edit accuracy and the `procvid ground` CLI."""

import itertools
import json

import networkx as nx
import numpy as np
import pytest

from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.ground import align, ground_video, mark_repeats, path_edit_accuracy, precedence_matrix

LINEAR4 = precedence_matrix(range(4), "linear")


def gains(*rows):
    """Unit gains from rows of the favoured step index per unit (-1: background)."""
    k = 4
    out = np.full((len(rows), k), -1.0)
    for i, step in enumerate(rows):
        if step >= 0:
            out[i, step] = 1.0
    return out


def test_skipped_step_and_dropped_background():
    labels, score = align(gains(0, -1, 2, 3), LINEAR4)
    assert labels.tolist() == [0, -1, 2, 3]  # step 1 skipped, the background unit dropped
    assert score == pytest.approx(3.0)


def test_background_inside_a_step_keeps_the_step_whole():
    labels, _ = align(gains(0, 0, -1, 0, 1), LINEAR4)
    assert labels.tolist() == [0, 0, -1, 0, 1]


def test_linear_order_forbids_going_back():
    g = gains(1, 0)
    g[0, 1], g[1, 0] = 2.0, 1.0
    assert align(g, LINEAR4)[0].tolist() == [1, -1]  # 0 cannot follow 1: the weaker unit is dropped
    assert align(g, precedence_matrix(range(4), "any"))[0].tolist() == [1, 0]


def test_each_step_at_most_once():
    g = gains(0, 1, 0)
    g[1, 1] = 3.0  # worth more than both units of step 0 together (a run may hold dropped units)
    labels, _ = align(g, precedence_matrix(range(4), "any"))
    assert labels.tolist() in ([0, 1, -1], [-1, 1, 0])


def test_graph_order_allows_skipping_and_parallel_branches():
    graph = nx.DiGraph([("START", 0), (0, 1), (0, 2), (1, 3), (2, 3), (3, "END")])
    precedes = precedence_matrix([0, 1, 2, 3], "graph", graph)
    assert precedes[0, 3] and not precedes[1, 2] and not precedes[2, 1]
    assert align(gains(0, 2, 1, 3), precedes)[0].tolist() == [0, 2, 1, 3]  # branches in either order
    assert align(gains(0, 3), precedes)[0].tolist() == [0, 3]  # 1 and 2 skipped
    assert align(gains(3, 0), precedes)[0].tolist() in ([3, -1], [-1, 0])  # 0 must come before 3


def test_graph_nodes_named_as_text_match_step_ids():
    graph = nx.DiGraph([("1", "2")])
    assert precedence_matrix([1, 2], "graph", graph)[0, 1]


def test_step_cost_drops_weak_steps():
    g = gains(0, 0, 1, 2, 2)
    g[2, 1] = 0.5
    assert align(g, LINEAR4)[0].tolist() == [0, 0, 1, 2, 2]
    assert align(g, LINEAR4, step_cost=0.8)[0].tolist() == [0, 0, -1, 2, 2]


def test_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(40):
        n, k = rng.integers(1, 5), rng.integers(1, 4)
        order = ["linear", "any"][rng.integers(2)]
        precedes = precedence_matrix(range(k), order)
        g, cost = rng.normal(size=(n, k)), rng.random()
        best = -np.inf
        for labels in itertools.product(range(-1, k), repeat=n):
            kept = [x for x in labels if x >= 0]
            runs = [x for i, x in enumerate(kept) if i == 0 or kept[i - 1] != x]
            if len(runs) != len(set(runs)) or any(precedes[b, a] for a, b in itertools.combinations(runs, 2)):
                continue
            best = max(best, sum(g[i, x] for i, x in enumerate(labels) if x >= 0) - cost * len(runs))
        assert align(g, precedes, cost)[1] == pytest.approx(best)


def test_too_many_orders_is_a_user_error(monkeypatch):
    import procvid.ground as ground

    monkeypatch.setattr(ground, "MAX_SETS", 10)
    with pytest.raises(ProcvidError, match="too many step orders"):
        align(np.zeros((2, 6)), precedence_matrix(range(6), "any"))
    monkeypatch.setattr(ground, "MAX_CELLS", 10)
    with pytest.raises(ProcvidError, match="too large"):
        align(np.zeros((20, 2)), precedence_matrix(range(2), "linear"))


def video(order, texts, frames_per_step=4, gap=2, noise=0.05, seed=0):
    """Frame embeddings showing the steps `order` (indices into texts) after idle gaps unlike any step."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in order:
        rows += [-texts.sum(0) + rng.normal(scale=noise, size=texts.shape[1]) for _ in range(gap)]
        rows += [texts[k] + rng.normal(scale=noise, size=texts.shape[1]) for _ in range(frames_per_step)]
    X = np.array(rows)
    return X / np.linalg.norm(X, axis=1, keepdims=True), np.arange(len(X)) * 0.5


def test_ground_video_recovers_a_non_canonical_order():
    rng = np.random.default_rng(1)
    texts = rng.normal(size=(5, 32))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    X, t = video([0, 2, 1, 4], texts)
    ids = [10, 20, 30, 40, 50]
    result = ground_video(X, t, texts, ids, order="any")
    assert result.path == [10, 30, 20, 50]
    assert result.labels[2:6] == [10] * 4 and result.labels[:2] == [None, None]
    assert [s[0] for s in result.spans] == result.path and result.spans[0][1:3] == (2, 6)
    linear = ground_video(X, t, texts, ids, order="linear")
    assert linear.path in ([10, 30, 50], [10, 20, 50])  # the swap cannot be expressed
    segments = ground_video(X, t, texts, ids, units=[(0, 6), (6, 12), (12, 18), (18, 24)], order="any")
    assert segments.path == [10, 30, 20, 50]


def test_mark_repeats_relabels_a_dropped_unit_that_matches_a_performed_step():
    g = gains(0, 1, 0, 2)  # step 0 shown again after step 1
    g[1, 1] = 2.0
    ones = np.ones(4)
    labels, _ = align(g, LINEAR4)
    assert labels.tolist() == [0, 1, -1, 2]  # each step once: the repeat is dropped
    assert mark_repeats(g, ones, labels, 0.5).tolist() == [0, 1, 0, 2]
    assert mark_repeats(g, ones, labels, 1.5).tolist() == [0, 1, -1, 2]  # not clear enough at this margin
    assert mark_repeats(g, 2 * ones, labels, 0.75).tolist() == [0, 1, -1, 2]  # mean evidence per second


def test_mark_repeats_peels_a_run_end_but_never_splits_a_run_or_removes_a_step():
    g = gains(0, 1, 1, 0, 0, 2)
    absorbed = np.array([0, 1, 1, 1, 1, 2])  # the repeat of 0 absorbed into the end of step 1's run
    assert mark_repeats(g, np.ones(6), absorbed, 0.5).tolist() == [0, 1, 1, 0, 0, 2]
    inside = np.array([0, 1, 1, 1, 1, 2])
    g2 = gains(0, 1, 0, 1, 1, 2)  # a unit like step 0 inside step 1's run: left alone
    assert mark_repeats(g2, np.ones(6), inside, 0.5).tolist() == inside.tolist()
    only = np.array([0, 1, 2])  # the only unit of step 1 is kept even if it looks like step 0
    assert mark_repeats(gains(0, 0, 2), np.ones(3), only, 0.5).tolist() == [0, 1, 2]
    beside = np.array([0, -1, 2])  # next to step 0's own run: a boundary, not a repeat
    assert mark_repeats(gains(0, 0, 2), np.ones(3), beside, 0.5).tolist() == [0, -1, 2]


def test_ground_video_reports_a_repeated_step_only_with_the_option():
    rng = np.random.default_rng(1)
    texts = rng.normal(size=(5, 32))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    X, t = video([0, 1, 2, 1, 3], texts)
    ids = [10, 20, 30, 40, 50]
    units = [(i * 6, i * 6 + 6) for i in range(5)]
    for order in ("linear", "any"):
        once = ground_video(X, t, texts, ids, units=units, order=order, drop_percentile=75)
        assert once.path == ([10, 20, 30, 40] if order == "linear" else [10, 30, 20, 40])  # the repeat is lost
        repeated = ground_video(X, t, texts, ids, units=units, order=order, drop_percentile=75, repeat_margin=0.5)
        assert repeated.path == [10, 20, 30, 20, 40]
        assert [s[:3] for s in repeated.spans] == [(10, 0, 6), (20, 6, 12), (30, 12, 18), (20, 18, 24), (40, 24, 30)]
        assert repeated.labels[18:24] == [20] * 6
    clean = video([0, 1, 2, 3], texts)
    for units in (units[:4], None):  # no repeat, none reported (segments or single frames)
        assert ground_video(*clean, texts, ids, units, "any", drop_percentile=75,
                            repeat_margin=0.5).path == [10, 20, 30, 40]


def test_path_edit_accuracy():
    assert path_edit_accuracy([1, 2, 3], [1, 2, 3]) == 1.0
    assert path_edit_accuracy([], []) == 1.0
    assert path_edit_accuracy([1, 3], [1, 2, 3]) == pytest.approx(2 / 3)
    assert path_edit_accuracy([2, 1], [1, 2]) == 0.0
    assert path_edit_accuracy([], [1]) == 0.0


@pytest.fixture(scope="module")
def grounding_inputs(tmp_path_factory):
    """A tasks.json, a feature file whose frames are step text embeddings (steps 3, 1, 2) and a
    segments file over it."""
    from procvid.encoders import load_encoder
    from procvid.features import write_entry

    root = tmp_path_factory.mktemp("ground")
    steps = ["put the red apple in the bowl", "pour white yogurt into the bowl", "add a green mint leaf"]
    (root / "tasks.json").write_text(json.dumps(
        [{"id": "salad", "name": "Salad", "steps": [{"id": i + 1, "text": s} for i, s in enumerate(steps)]},
         {"id": "tea", "name": "Tea", "steps": [{"id": 1, "text": "pour hot water"}]}]))
    encoder = load_encoder("default", device="cpu")
    emb = encoder.encode_texts(steps)
    X = np.repeat(emb[[2, 0, 1]], 3, axis=0)
    t = np.arange(len(X)) * 0.5
    sidecar = write_entry(root / "features", "salad_0001", X, t, {"encoder": encoder.id, "encoder_spec": "default"})
    segments = [{"start": t[a], "end": t[a] + 1.5, "start_frame": a, "end_frame": a + 3, "score": 1.0,
                 "keyframe": a} for a in (0, 3, 6)]
    (root / "seg").mkdir()
    (root / "seg" / "salad_0001.segments.json").write_text(json.dumps(
        {"format": "procvid-segments", "version": 1, "features": str(sidecar), "timestamps": t.tolist(),
         "segments": segments}))
    return root, encoder


@pytest.fixture
def reuse_encoder(grounding_inputs, monkeypatch):
    """The CLI gets the fixture's encoder instead of loading it again."""
    import procvid.encoders

    monkeypatch.setattr(procvid.encoders, "load_encoder", lambda spec, **kw: grounding_inputs[1])
    return grounding_inputs[0]


@pytest.mark.parametrize("source", ["features/salad_0001.json", "seg"])
def test_ground_cli_writes_step_paths(reuse_encoder, tmp_path, source, capsys):
    root = reuse_encoder
    assert main(["ground", str(root / source), "--steps", str(root / "tasks.json"), "--order", "any",
                 "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "salad_0001.steps.json").read_text())
    assert doc["task"] == "salad" and doc["path"] == [3, 1, 2]
    assert [s["start_frame"] for s in doc["steps"]] == [0, 3, 6] and doc["steps"][0]["end"] == 1.5
    assert "salad_0001: task salad, any order, 3 steps: 3 1 2" in capsys.readouterr().out
    assert "repeat_margin" not in doc["params"]  # the default documents stay as they were


def test_ground_cli_repeat_margin_is_recorded_and_redoes_the_outputs(reuse_encoder, tmp_path):
    root = reuse_encoder
    args = ["ground", str(root / "seg"), "--steps", str(root / "tasks.json"), "--order", "any", "--out", str(tmp_path)]
    assert main(args) == 0 and main(args + ["--repeat-margin", "1"]) == 0
    doc = json.loads((tmp_path / "salad_0001.steps.json").read_text())
    assert doc["params"]["repeat_margin"] == 1.0 and doc["path"] == [3, 1, 2]  # nothing repeated there


def test_ground_cli_errors(reuse_encoder, tmp_path, capsys):
    root = reuse_encoder
    features = str(root / "features/salad_0001.json")
    assert main(["ground", features, "--steps", str(root / "tasks.json"), "--task", "soup",
                 "--out", str(tmp_path)]) == 2
    assert main(["ground", features, "--steps", str(root / "tasks.json"), "--order", "graph",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'soup'" in err and "no graph script for task salad" in err


def test_features_of_another_width_than_the_step_texts_fail_the_video_in_one_line(reuse_encoder, tmp_path, caplog):
    """E.g. image-only features (efficientnet-lite0, 1280-d) grounded with a 64-d text tower."""
    from procvid.features import write_entry

    root = reuse_encoder
    X = np.eye(4, 1280, dtype=np.float32)
    write_entry(tmp_path / "f", "salad_0002", X, np.arange(4.0), {"encoder": "efficientnet-lite0:x"})
    assert main(["ground", str(tmp_path / "f"), "--steps", str(root / "tasks.json"), "--out", str(tmp_path / "o"),
                 "--encoder", "default", "--no-progress"]) == 1  # every video failed
    reason = json.loads((tmp_path / "o" / "failures.jsonl").read_text().splitlines()[0])["reason"]
    assert reason.startswith("features from efficientnet-lite0:x are 1280-d, step texts from ")
    assert "one joint image-text model" in reason and "\n" not in reason


def test_ground_without_encoder_spec_asks_for_one(reuse_encoder, tmp_path):
    """Features that do not record their encoder's spec cannot pick the text encoder by themselves."""
    from procvid.features import write_entry

    write_entry(tmp_path / "f", "salad_0003", np.eye(4, 64, dtype=np.float32), np.arange(4.0), {"encoder": "x"})
    assert main(["ground", str(tmp_path / "f"), "--steps", str(reuse_encoder / "tasks.json"), "--out",
                 str(tmp_path / "o"), "--no-progress"]) == 1
    reason = json.loads((tmp_path / "o" / "failures.jsonl").read_text().splitlines()[0])["reason"]
    assert reason.endswith("the features do not say which encoder made them; pass --encoder")


def test_tasks_from_names_with_sub_folders():
    """A stem keeps its sub-folders (a/tea_01); the task comes from the name's prefix, a --task-of file may
    name either form, and the one-line error names the whole stem."""
    from procvid.discover.stage import task_from_name
    from procvid.ground_files import task_of

    tasks = {"tea": object(), "pizza": object()}
    assert task_of("a/tea_01", None, tasks) == "tea" and task_of("b/pizza", None, tasks) == "pizza"
    with pytest.raises(ProcvidError, match="a/clip: cannot tell its task"):
        task_of("a/clip", None, tasks)
    assert task_from_name("a/tea_01") == "tea" and task_from_name("a/clip") == "task"
    assert task_from_name("a/clip", {"clip": "x"}) == "x" and task_from_name("a/clip", {"a/clip": "y"}) == "y"
    with pytest.raises(ProcvidError, match="a/clip: not in the --task-of file"):
        task_from_name("a/clip", {"b/clip": "z"})


def test_frame_units_recover_a_short_step_that_a_segment_merged():
    """Frames as units (tools/bench_mistake.py part c, units "frames"): a step the segmenter merged into
    its neighbour's segment is still labelled; with the merged segment only one of the two survives."""
    rng = np.random.default_rng(2)
    texts = rng.normal(size=(4, 32))
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    X, t = video([0, 1, 2, 3], texts, frames_per_step=4, gap=2)  # step k at frames 6k+2 .. 6k+6
    ids = [10, 20, 30, 40]
    merged = [(0, 6), (6, 16), (18, 24)]  # steps 20 and 30 (with the gap between) in one segment
    on_segments = ground_video(X, t, texts, ids, units=merged, order="any")
    assert on_segments.path in ([10, 20, 40], [10, 30, 40])
    on_frames = ground_video(X, t, texts, ids, order="any", step_cost=1.0)
    assert on_frames.path == [10, 20, 30, 40]
    assert [s[1:3] for s in on_frames.spans] == [(2, 6), (8, 12), (14, 18), (20, 24)]
