"""The synthetic procedural-video world: task specs, graphs, orders, files on disk, determinism."""

from __future__ import annotations

import json
import shutil

import av
import networkx as nx
import numpy as np
import pytest

from procvid import cli
from procvid.data import synthetic as syn
from procvid.errors import ProcvidError

SMALL = ["--videos", "6", "--min-duration", "8", "--max-duration", "12", "--size", "64"]


def synth(out, *args) -> int:
    return cli.main(["synth", "--out", str(out), *SMALL, *args])


def decode(path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def read_annotation(path) -> list[tuple[int, float, float]]:
    rows = [line.split(",") for line in path.read_text().splitlines()]
    return [(int(step), float(start), float(end)) for step, start, end in rows]


def read_index(out) -> list[dict]:
    lines = (out / "videos.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [dict(zip(header, line.split(","))) for line in lines[1:]]


def precedes(spec) -> set[tuple[int, int]]:
    """All (u, v) with u required before v (transitive closure of the preconditions)."""
    return set(nx.transitive_closure_dag(nx.DiGraph(list(spec.edges))).edges)


@pytest.fixture(scope="module")
def worlds(tmp_path_factory):
    """Same seed with 2 and 1 workers, and another seed."""
    root = tmp_path_factory.mktemp("synth")
    assert synth(root / "a", "--seed", "3", "--workers", "2") == 0
    assert synth(root / "b", "--seed", "3", "--workers", "1") == 0
    assert synth(root / "c", "--seed", "4", "--workers", "2") == 0
    return root / "a", root / "b", root / "c"


# ----------------------------------------------------------------------------- tasks and graphs


def test_tasks_meet_the_spec():
    specs = syn.task_specs()
    assert len(specs) >= 6
    assert len({s.id for s in specs}) == len(specs)
    texts = [text for s in specs for _, text in s.steps]
    assert len(set(texts)) == len(texts)
    for spec in specs:
        assert "_" not in spec.id
        assert 6 <= len(spec.steps) <= 10
        assert spec.step_ids == list(range(1, len(spec.steps) + 1))
        assert all(text and "," not in text for _, text in spec.steps)  # CrossTask's separator
        assert spec.optional and spec.interchangeable


def test_graphs_are_reduced_dags_between_start_and_end():
    for spec in syn.task_specs():
        g = syn.task_graph(spec)
        assert nx.is_directed_acyclic_graph(g)
        assert set(g.edges) == set(nx.transitive_reduction(g).edges)
        steps = set(spec.step_ids)
        assert set(g.nodes) == steps | {"START", "END"}
        assert all(g.nodes[s]["text"] == text for s, text in spec.steps)
        assert nx.descendants(g, "START") == steps | {"END"}
        assert nx.ancestors(g, "END") == steps | {"START"}
        assert g.graph["optional"] == sorted(spec.optional)
        closure = precedes(spec)
        for a, b in spec.interchangeable:
            assert (a, b) not in closure and (b, a) not in closure
            assert set(g.predecessors(a)) == set(g.predecessors(b))
            assert set(g.successors(a)) == set(g.successors(b))


def test_step_effects_are_consistent_with_the_graph():
    """Every object is created once, before (and not skippably) anything else happens to it, and
    steps that may come in either order touch different objects, so any valid order renders."""
    for spec in syn.task_specs():
        closure = precedes(spec)
        creators = {}
        for step in spec.step_ids:
            action = spec.action(step)
            if action.kind in ("place", "grow"):
                assert action.obj not in creators, (spec.id, action.obj)
                creators[action.obj] = step
        for step in spec.step_ids:
            action = spec.action(step)
            creator = creators[action.obj]
            if creator != step:
                assert (creator, step) in closure and creator not in spec.optional, (spec.id, step)
        for a in spec.step_ids:
            for b in spec.step_ids:
                if a < b and (a, b) not in closure and (b, a) not in closure:
                    assert spec.action(a).obj != spec.action(b).obj, (spec.id, a, b)


def test_end_states_differ_per_step_and_per_task():
    empty = [syn.render_state(spec, [], 64).astype(float) for spec in syn.task_specs()]
    for i in range(len(empty)):
        for j in range(i):
            assert np.abs(empty[i] - empty[j]).mean() > 10
    for spec in syn.task_specs():
        order = [n for n in nx.topological_sort(syn.task_graph(spec)) if isinstance(n, int)]
        states = [syn.render_state(spec, order[:k], 64).astype(float) for k in range(len(order) + 1)]
        for before, after in zip(states, states[1:]):
            assert (np.abs(after - before).max(axis=2) > 20).sum() >= 10  # a visible change


def test_sample_order_is_a_valid_order_with_skips_and_swaps():
    rng = np.random.default_rng(0)
    for spec in syn.task_specs():
        closure = precedes(spec)
        orders = [syn.sample_order(spec, rng) for _ in range(200)]
        for order in orders:
            assert len(set(order)) == len(order)
            assert set(spec.step_ids) - set(order) <= spec.optional
            pos = {s: i for i, s in enumerate(order)}
            assert all(pos[u] < pos[v] for u, v in closure if u in pos and v in pos)
        for step in spec.optional:
            assert 0.15 < np.mean([step in o for o in orders]) < 0.9
        for a, b in spec.interchangeable:
            both = [o for o in orders if a in o and b in o]
            assert {o.index(a) < o.index(b) for o in both} == {True, False}


# ----------------------------------------------------------------------------- world on disk


def test_world_layout(worlds):
    out = worlds[0]
    world = json.loads((out / "world.json").read_text())
    assert {k: world[k] for k in ("version", "seed", "difficulty", "size", "fps", "num_videos")} == {
        "version": 1, "seed": 3, "difficulty": 0.5, "size": 64, "fps": 10.0, "num_videos": 6}
    specs = syn.task_specs()
    tasks = json.loads((out / "tasks.json").read_text())
    assert [t["id"] for t in tasks] == [s.id for s in specs]
    assert tasks[0]["steps"][0] == {"id": 1, "text": specs[0].steps[0][1]}
    blocks = (out / "tasks_primary.txt").read_text().strip().split("\n\n")
    for block, spec in zip(blocks, specs, strict=True):
        tid, name, url, count, steps = block.split("\n")
        assert (tid, name, url, int(count)) == (spec.id, spec.name, "synthetic", len(spec.steps))
        assert steps.split(",") == [text for _, text in spec.steps]
    for spec in specs:
        data = json.loads((out / "graphs" / f"{spec.id}.json").read_text())
        g = nx.node_link_graph(data, edges="edges")
        assert set(g.edges) == set(syn.task_graph(spec).edges)
        assert g.graph["interchangeable"] == [list(p) for p in spec.interchangeable]
    rows = read_index(out)
    assert [r["task_id"] for r in rows] == [specs[i % len(specs)].id for i in range(6)]
    for i, row in enumerate(rows):
        assert row["video_id"] == f"{row['task_id']}_{i:04d}"
        assert row["path"] == f"videos/{row['video_id']}.mp4"
        frames = decode(out / row["path"])
        assert frames.shape == (int(row["num_frames"]), 64, 64, 3)
        assert 8 <= float(row["duration"]) <= 12.1
        assert float(row["duration"]) == pytest.approx(int(row["num_frames"]) / float(row["fps"]))


def test_annotations_match_labels_and_orders_are_valid(worlds):
    out = worlds[0]
    for row in read_index(out):
        spec = syn.task_spec(row["task_id"])
        labels = np.load(out / "labels" / f"{row['video_id']}.npy")
        assert labels.dtype == np.int16 and len(labels) == int(row["num_frames"])
        annotation = read_annotation(out / "annotations" / f"{row['task_id']}_{row['video_id']}.csv")
        fps = float(row["fps"])
        expected = np.zeros_like(labels)
        for i in range(len(labels)):
            hits = [step for step, start, end in annotation if start <= i / fps < end]
            assert len(hits) <= 1
            expected[i] = hits[0] if hits else 0
        assert np.array_equal(labels, expected)
        assert all(s1 < e1 <= s2 for (_, s1, e1), (_, s2, _) in zip(annotation, annotation[1:]))
        assert (labels == 0).any()  # idle gaps exist
        order = [step for step, _, _ in annotation]
        assert row["order"] == "-".join(map(str, order))
        assert set(spec.step_ids) - set(order) <= spec.optional
        pos = {s: i for i, s in enumerate(order)}
        assert all(pos[u] < pos[v] for u, v in precedes(spec) if u in pos and v in pos)


def test_same_seed_same_world_other_seed_differs(worlds):
    a, b, c = worlds
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.suffix != ".mp4")
    assert len(files) == 4 + 3 * 6  # world, tasks, primary, videos.csv + graphs, annotations, labels
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    for video in sorted((a / "videos").glob("*.mp4")):
        assert np.array_equal(decode(video), decode(b / "videos" / video.name)), video.name
    labels = sorted(p.name for p in (a / "labels").iterdir())
    assert any((a / "labels" / n).read_bytes() != (c / "labels" / n).read_bytes() for n in labels)
    first = sorted((a / "videos").glob("*.mp4"))[0]
    assert not np.array_equal(decode(first)[:10], decode(c / "videos" / first.name)[:10])


def test_resume_regenerates_only_the_missing_video(worlds, tmp_path):
    out = tmp_path / "w"
    shutil.copytree(worlds[0], out)
    victim = sorted((out / "videos").glob("*.mp4"))[2]
    original = victim.read_bytes()
    victim.unlink()
    others = {p: p.stat().st_mtime_ns for p in (out / "videos").glob("*.mp4")}
    assert synth(out, "--seed", "3") == 0
    assert victim.read_bytes() == original
    assert {p: p.stat().st_mtime_ns for p in others} == others
    assert not list(out.rglob(".*"))  # no temp files left behind


def test_refuses_to_overwrite_another_world(worlds, tmp_path, capsys):
    assert synth(worlds[0], "--seed", "99") == 2
    assert "different synthetic world" in capsys.readouterr().err
    (tmp_path / "notes.txt").write_text("mine")
    assert synth(tmp_path, "--seed", "3") == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 30}, "size"),
    ({"size": 65}, "even"),
    ({"min_duration": 50.0, "max_duration": 40.0}, "larger than max"),
    ({"min_duration": 2.0}, "at least"),
    ({"difficulty": 1.5}, "difficulty"),
    ({"fps": 29.97}, "fps"),
    ({"num_videos": 0}, "videos"),
    ({"workers": 0}, "workers"),
])
def test_bad_arguments_are_user_errors(tmp_path, kwargs, message):
    with pytest.raises(ProcvidError, match=message):
        syn.generate_world(tmp_path / "w", progress=False, **kwargs)
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("difficulty", [0.0, 0.5])
def test_boundaries_do_not_show_in_frame_differences(difficulty):
    """The hand moves continuously through steps and gaps and changes are gradual, so the mean
    absolute difference between consecutive frames is no larger at step boundaries than inside
    steps, and ranks boundary frames no better than chance (measured: ratio ~0.95, AUC ~0.45)."""
    at_boundary, elsewhere = [], []
    for i in range(6):
        spec = syn.task_specs()[i]
        plan = syn.plan_video(spec, i, seed=7, min_duration=15, max_duration=25)
        frames, labels = syn.render_video_frames(spec, plan, np.random.default_rng(i), 64, difficulty)
        diff = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
        boundary = labels[1:] != labels[:-1]
        at_boundary += list(diff[boundary])
        elsewhere += list(diff[~boundary])
    inside = np.array(elsewhere)
    at_boundary = np.array(at_boundary)
    assert at_boundary.mean() < 1.2 * inside.mean()
    # Probability that a boundary frame differs more than a random other frame (ROC AUC).
    auc = (at_boundary[:, None] > inside[None, :]).mean()
    assert auc < 0.65


def test_steps_change_the_scene_gradually():
    """No cut: each frame-to-frame change within a step is a small part of the step's total change."""
    spec = syn.task_spec("pizza")
    plan = syn.plan_video(spec, 0, seed=1, min_duration=20, max_duration=20)
    frames, labels = syn.render_video_frames(spec, plan, np.random.default_rng(0), 64, 0.0)
    assert frames.dtype == np.uint8 and frames.shape == (plan.num_frames, 64, 64, 3)
    assert np.array_equal(labels, plan.labels())
    step, start, end = plan.segments[0]  # the dough is carried onto the tray
    clip = frames[start - 1:end + 1].astype(np.float32)
    total = np.abs(clip[-1] - clip[0]).mean()
    steps = np.abs(np.diff(clip, axis=0)).mean(axis=(1, 2, 3))
    assert total > 5
    assert steps.max() < 0.4 * total
