"""Annotation readers on the real shared files, the registry, and the synthetic-world reader."""

import networkx as nx
import pytest

from helpers import TINY_EDGES
from procvid.data import detect_format, load_dataset
from procvid.data.procedures import StepSegment, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.paths import shared_data_dir

DATA = shared_data_dir()


def _load(name):
    if not (DATA / "README.md").exists():
        pytest.skip(f"shared data not found at {DATA} (set PROCVID_DATA)")
    return load_dataset(name)


@pytest.fixture(scope="module")
def crosstask():
    return _load("crosstask")


def _sorted_by_start(dataset):
    return all([s.start for s in v.segments] == sorted(s.start for s in v.segments) for v in dataset.videos)


def test_crosstask(crosstask):
    assert len(crosstask.tasks) == 18
    assert sum(len(t.steps) for t in crosstask.tasks.values()) == 133
    assert len(crosstask.videos) == 2750
    assert sum(len(v.segments) for v in crosstask.videos) == 20919
    assert crosstask.splits == ["train", "val"] and len(crosstask.split("val").videos) == 360
    assert crosstask.tasks["23521"].name == "Make Jello Shots"
    assert crosstask.tasks["23521"].steps[1].text == "pour water"
    assert _sorted_by_start(crosstask)
    assert all(s in crosstask.tasks[v.task_id].steps for v in crosstask.videos for s in v.path)
    assert len(crosstask.videos_of("23521")) == 182


def test_coin():
    coin = _load("coin")
    assert len(coin.videos) == 10361 and len(coin.tasks) == 180
    assert sum(len(t.steps) for t in coin.tasks.values()) == 778
    assert {s: len(coin.split(s).videos) for s in coin.splits} == {"train": 7064, "test": 3006, "schema_test": 291}
    assert coin.tasks["ArcWeld"].name == "Arc Weld"
    assert _sorted_by_start(coin)


def test_captaincook4d_recordings():
    cc = _load("captaincook4d")
    assert len(cc.videos) == 384 and len(cc.tasks) == 24
    assert {s: len(cc.split(s).videos) for s in cc.splits} == {"train": 213, "val": 62, "test": 109}
    assert sum(v.meta["is_error"] for v in cc.videos) == 220
    assert all(s.start >= 0 for v in cc.videos for s in v.segments)  # "-1" = step not performed
    assert sum(len(v.meta["missing_steps"]) for v in cc.videos) == 287
    assert cc.tasks["coffee"].name == "Coffee"


def test_captaincook4d_task_graphs():
    from procvid.data.captaincook4d import load_captaincook4d_task_graphs
    from procvid.graph import END, START

    _load("captaincook4d")
    recipes = load_captaincook4d_task_graphs()
    assert len(recipes) == 24
    assert sum(len(r.sequences) for r in recipes.values()) == 194
    for r in recipes.values():
        assert nx.is_directed_acyclic_graph(r.graph)
        assert set(r.graph.nodes) == {START, END, *r.steps}
        assert r.graph.in_degree(START) == 0 and r.graph.out_degree(END) == 0
        assert all(len(seq) == len(set(seq)) and set(seq) <= set(r.steps) for seq in r.sequences)
    coffee = recipes["coffee"]
    assert (START, 7) in coffee.graph.edges and (8, END) in coffee.graph.edges and (2, 1) in coffee.graph.edges
    # duplicated step texts map to the last node that carries them (DTGL), so node 5 is never observed
    assert not any(5 in seq for seq in recipes["dressedupmeatballs"].sequences)


def test_niv_sorts_rows_by_time():
    niv = _load("niv")
    assert len(niv.videos) == 148 and len(niv.tasks) == 5
    assert _sorted_by_start(niv)
    video = next(v for v in niv.videos if v.video_id == "coffee_0001")
    texts = niv.tasks["coffee"].steps
    # on disk: FILL WATER 9.3 s, GRIND COFFE 90.3 s, PUT FILTER 137.4 s, ADD COFFEE 50.3 s, ...
    assert [texts[s].text for s in video.path[:3]] == ["fill water", "add coffee", "grind coffe"]


def test_ego4d():
    ego = _load("ego4d")
    assert len(ego.videos) == 134 and len(ego.tasks) == 43
    assert sum(len(v.segments) for v in ego.videos) == 3349
    assert sum(v.meta["num_substeps"] for v in ego.videos) == 4347
    assert _sorted_by_start(ego)
    assert ego.tasks["COOKING:MAKE_BREAD"].name == "Make bread"


def test_graph_script():
    gs = _load("graph_script")
    assert len(gs.videos) == 2610 and len(gs.tasks) == 17
    task = gs.tasks["23521"]
    assert task.name == "Make Jello Shots" and task.meta["script"] == [1, 2, 3, 4, 5, 6]
    assert task.steps[1].text == "pour water into the container."
    assert all(s.start is None for v in gs.videos for s in v.segments)
    assert gs.videos[0].path == [1, 5, 3, 4, 2, 6]


def test_registry_by_path_and_errors(tmp_path, monkeypatch):
    _load("niv")
    assert load_dataset(DATA / "crosstask").name == "crosstask"  # parent of crosstask_release
    assert detect_format(DATA / "coin") == "coin"
    with pytest.raises(ProcvidError, match="unknown dataset"):
        load_dataset("no-such-dataset")
    with pytest.raises(ProcvidError, match="unrecognised dataset folder"):
        load_dataset(tmp_path)
    monkeypatch.setenv("PROCVID_DATA", str(tmp_path))
    with pytest.raises(ProcvidError, match="dataset folder not found"):
        load_dataset("niv")


def test_video_annotation_sorts_and_keeps_untimed_order():
    timed = VideoAnnotation("v", "t", [StepSegment(2, 5.0, 6.0), StepSegment(1, 1.0, 2.0)])
    assert timed.path == [1, 2] and timed.duration == 6.0
    untimed = VideoAnnotation("v", "t", [StepSegment(2, None, None), StepSegment(1, None, None)])
    assert untimed.path == [2, 1]


# ----------------------------------------------------------------------------- synthetic world


def test_synthetic_reader(tea_world):
    world = load_dataset(tea_world)
    assert world.name == "synthetic"
    assert list(world.tasks) == ["tea"] and world.tasks["tea"].steps[2].text == "add tea"
    assert [v.path for v in world.videos] == [[1, 2, 3, 4], [1, 3, 2, 4], [1, 2, 4]]
    assert world.videos[0].segments[1] == StepSegment(2, 2.0, 3.5)
    assert world.videos[2].segments[0].start is None  # no annotation file: order column
    assert world.videos[0].meta["fps"] == 10.0 and world.videos[0].meta["path"].endswith("videos/tea_0000.mp4")
    graph = world.graphs["tea"]
    assert set(graph.edges) == set(TINY_EDGES) and graph.graph["optional"] == [3]


def test_crosstask_reader_on_a_synthetic_world(tea_world):
    from procvid.data.crosstask import load_crosstask

    world = load_crosstask(tea_world)
    assert [v.video_id for v in world.videos] == ["tea_0000", "tea_0001"]
    assert world.videos[1].path == [1, 3, 2, 4] and world.videos[0].split is None


def test_synthetic_reader_errors(tea_world):
    from procvid.data.synthetic_reader import load_synthetic

    root = tea_world
    (root / "graphs" / "tea.json").write_text('{"nodes": 3}')
    with pytest.raises(ProcvidError, match="node-link"):
        load_synthetic(root)
    (root / "videos.csv").unlink()
    with pytest.raises(ProcvidError, match="missing annotation file"):
        load_synthetic(root)
