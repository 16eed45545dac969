"""Script model and next-step baselines: training runs (fast_dev_run and a short fit on a toy dataset
with known answers), the baselines' predictions, decoding, and `procvid graph predict`."""

import json
import math

import networkx as nx
import pytest

from procvid.cli import main
from procvid.graph import END, START, induce_graph
from procvid.graph.script import consecutive_pairs
from procvid.graph.script_model import (GraphWalk, LinearScript, MarkovBaseline, beam_search, collapse_repeats,
                                        ScriptModel, complete, ranked)
from procvid.paths import REPO_ROOT

SCRIPT_CFG = str(REPO_ROOT / "configs/train/script.yaml")
DEBUG_CFG = str(REPO_ROOT / "configs/trainer/debug.yaml")
# task "up" is always done 1, 2, 3; task "down" 3, 2, 1 (only the task token tells them apart)
TOY = {"up": [[1, 2, 3]] * 12, "down": [[3, 2, 1]] * 12}


@pytest.fixture(scope="module")
def toy_world(tmp_path_factory):
    """A dataset folder in the synthetic-world format holding only step orders."""
    root = tmp_path_factory.mktemp("toy")
    (root / "tasks.json").write_text(json.dumps(
        [{"id": t, "name": t, "steps": [{"id": i, "text": f"step {i}"} for i in (1, 2, 3)]} for t in TOY]))
    rows = ["video_id,task_id,path,num_frames,fps,duration,order"]
    rows += [f"{t}_{i:02d},{t},videos/{t}_{i:02d}.mp4,10,10,1.0,{'-'.join(map(str, seq))}"
             for t, seqs in TOY.items() for i, seq in enumerate(seqs)]
    (root / "videos.csv").write_text("\n".join(rows) + "\n")
    return root


def _train(world, out, *extra):
    main(["train", "script", "--config", SCRIPT_CFG, f"--data.dataset={world}", "--model.export_dir", str(out),
          "--trainer.logger", "false", "--trainer.callbacks", "null", "--trainer.enable_checkpointing", "false",
          "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", str(out.parent), *extra])


def test_fast_dev_run_exports_a_loadable_model(toy_world, tmp_path):
    _train(toy_world, tmp_path / "s", "--config", DEBUG_CFG, "--data.batch_size", "8")
    model = ScriptModel.from_pretrained(tmp_path / "s")
    assert model.info["kind"] == "script-model" and model.info["dataset"] == str(toy_world)
    assert model.vocab.tasks == {"up": [1, 2, 3], "down": [1, 2, 3]}  # step ids stay ints
    dist = model.predict("up", [[], [1, 2]])
    assert set(dist[0]) == {1, 2, 3, END} and sum(dist[1].values()) == pytest.approx(1.0, abs=1e-5)


@pytest.fixture(scope="module")
def toy_model(toy_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "toy"
    _train(toy_world, out, "--trainer.max_steps", "60", "--trainer.accelerator", "cpu", "--model.lr", "0.01",
           "--model.warmup_steps", "5", "--data.val_fraction", "0", "--trainer.limit_val_batches", "0")
    return out


def test_short_fit_learns_task_conditioned_orders(toy_model):
    model = ScriptModel.from_pretrained(toy_model)
    up, down = model.predict("up", [[1]])[0], model.predict("down", [[3]])[0]
    assert ranked(up)[0][0] == 2 and ranked(down)[0][0] == 2
    assert complete(model, "up", [1]) == [2, 3] and complete(model, "down", [], width=3) == [3, 2, 1]
    graph = model.model_graph("up", width=4)
    assert {(START, 1), (1, 2), (2, 3), (3, END)} <= set(graph.edges)


def test_linear_script():
    model = LinearScript({"t": [1, 2, 3, 4]})
    after = ranked(model.predict("t", [[1, 3]])[0])  # 4 follows 3; then the script ends; 2 was passed over
    assert [s for s, _ in after] == [4, END, 2, 1, 3]
    assert [p for _, p in after][:3] == pytest.approx([16 / 31, 8 / 31, 4 / 31])
    assert complete(model, "t", [2]) == [3, 4]
    assert [s for s, _ in ranked(model.predict("t", [[]])[0], [1, 2, 3, 4])] == [1, 2, 3, 4]


def test_markov_baseline():
    model = MarkovBaseline({"t": [[1, 2, 3], [1, 2, 3], [1, 3, 2]]}, {"t": [1, 2, 3]}, alpha=0.0)
    first, after1, after3 = model.predict("t", [[], [1], [1, 3]])
    assert first[1] == 1.0
    assert after1 == pytest.approx({1: 0, 2: 2 / 3, 3: 1 / 3, END: 0})
    assert after3[END] == pytest.approx(2 / 3)
    assert complete(model, "t", []) == [1, 2, 3]


@pytest.fixture
def walk_graph():
    sequences = [[1, 2, 3, 4], [1, 2, 3, 4], [1, 3, 2, 4]]
    graph = induce_graph(sequences, [1, 2, 3, 4])  # 1 -> {2, 3} -> 4
    return graph, sequences


def test_graph_walk_prefers_frequent_valid_successors(walk_graph):
    graph, sequences = walk_graph
    counts = {"t": consecutive_pairs([[START, *s, END] for s in sequences])}
    model = GraphWalk({"t": graph}, counts)
    assert model.valid("t", [1]) == [2, 3]
    assert model.valid("t", [1, 2, 3]) == [4]  # END waits for the required step 4
    assert [s for s, _ in ranked(model.predict("t", [[1]])[0])][:2] == [2, 3]
    assert ranked(model.predict("t", [[1, 3]])[0])[0][0] == 2
    assert complete(model, "t", [1]) == [2, 3, 4]
    # without training counts the graph's own edge counts give the same walk
    assert complete(GraphWalk({"t": graph}), "t", []) == [1, 2, 3, 4]


def test_beam_search_orders_and_collapse():
    model = MarkovBaseline({"t": [[1, 2], [1, 2], [2, 1]]}, {"t": [1, 2]}, alpha=0.0)
    beams = beam_search(model, "t", [], width=4)
    assert beams[0][0] == [1, 2] and beams[0][1] == pytest.approx(math.log(8 / 27))  # 2/3 * 2/3 * 2/3
    assert sorted(b for b, _ in beams[1:3]) == [[1], [2]]  # 2/9 each; [2, 1] has 1/27
    assert [lp for _, lp in beams] == sorted((lp for _, lp in beams), reverse=True)
    assert collapse_repeats([1, 1, 2, 2, 1]) == [1, 2, 1]


def test_graph_predict_cli(tmp_path, capsys):
    from procvid.graph.export import write_json

    graph = nx.DiGraph(task_id="tea", optional=[2, 3])  # tea, milk or both
    graph.add_nodes_from([(START, {"text": START}), (1, {"text": "boil water"}), (2, {"text": "add tea"}),
                          (3, {"text": "add milk"}), (END, {"text": END})])
    graph.add_edges_from([(START, 1, {"transitions": 5}), (1, 2, {"transitions": 4}), (1, 3, {"transitions": 1}),
                          (2, END, {"transitions": 4}), (3, END, {"transitions": 1})])
    write_json(graph, tmp_path / "tea.json")
    assert main(["graph", "predict", "--graph", str(tmp_path / "tea.json"), "--prefix", "1", "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "task tea; done: 1"
    assert lines[2].split()[:2] == ["1", "2"] and "add tea" in lines[2]
    assert lines[-1].startswith("completion (greedy") and lines[-1].endswith("1 | 2 -> END")
    assert main(["graph", "predict", "--graph", str(tmp_path / "tea.json"), "--prefix", "1,9"]) == 2
    assert "has no step '9'" in capsys.readouterr().err


def test_graph_predict_cli_with_model(toy_model, capsys):
    assert main(["graph", "predict", "--model", str(toy_model), "--task", "down", "--prefix", "3",
                 "--beam", "2"]) == 0
    out = capsys.readouterr().out
    assert "completion (beam 2" in out and out.rstrip().endswith("3 | 2 -> 1 -> END")
    assert main(["graph", "predict", "--model", str(toy_model), "--prefix", "3"]) == 2
    assert "--task" in capsys.readouterr().err
