"""Procedure planning: valid windows and both planners on hand-built graphs with known answers, observations,
the planner's training run (fast_dev_run), `procvid plan` on local stand-in open_clip weights (the real-weights
path), and the label-level benchmark on NIV."""

import json
from collections import Counter

import networkx as nx
import numpy as np
import pytest

from helpers import DATA, TINY_EDGES, load_tool
from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.forecast.plan import (ProcedurePlanner, Windows, best_paths, build_network, done_steps, observation,
                                   parse_source, save_planner, set_evidence, viterbi)
from procvid.graph.script_model import ScriptVocab

PLANNER_CFG = "configs/train/planner.yaml"
DEBUG_CFG = "configs/trainer/debug.yaml"


def tiny_graph():
    """START -> 1 -> {2, 3} -> 4 -> END; 3 optional (helpers.TINY_EDGES)."""
    g = nx.DiGraph(optional=[3])
    g.add_nodes_from(["START", 1, 2, 3, 4, "END"])
    g.add_edges_from(TINY_EDGES)
    return g


def test_valid_windows_of_a_hand_built_graph():
    w = Windows({"tea": tiny_graph()})
    steps = w.steps["tea"]
    found = {tuple(steps[i] for i in row) for row in w.valid("tea", 3)}
    # 1,3,4 skips the required step 2 between 1 and 4; 2,1,.. breaks the order; 1,2,4 skips optional 3
    assert found == {(1, 2, 3), (1, 3, 2), (1, 2, 4), (2, 3, 4), (3, 2, 4)}
    assert {tuple(steps[i] for i in row) for row in w.valid("tea", 4)} == {(1, 2, 3, 4), (1, 3, 2, 4)}
    assert w.is_valid("tea", [1, 2, 4]) and not w.is_valid("tea", [1, 3, 4]) and not w.is_valid("tea", [9])


def test_best_paths_and_viterbi_known_answers():
    windows = np.array([[0, 1], [1, 0], [0, 2]])
    pos = np.log(np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]]))
    (best, score), = best_paths(windows, pos, None, top=1)
    assert best.tolist() == [0, 2] and score == pytest.approx(np.log(0.6 * 0.5))
    trans = np.log(np.array([[0.01, 0.98, 0.01], [0.5, 0.0 + 1e-9, 0.5], [0.5, 0.5, 1e-9]]))
    assert best_paths(windows, pos, trans)[0][0].tolist() == [0, 1]  # transitions overrule the second position
    path, _ = viterbi(pos, trans)
    assert path.tolist() == [0, 1]


def _planner(tmp_path, counts, state=False, state_dim=0, **settings):
    """A planner folder for the tiny graph: one-hot prototypes (step k of tea = axis k), given transitions;
    state_dim > 0: its state head also reads a second encoder's observation of that size."""
    import torch

    vocab = ScriptVocab({"tea": [1, 2, 3, 4]}, {"tea": {1: "boil", 2: "tea", 3: "sugar", 4: "pour"}})
    config = {"input_dim": 4, "num_steps": 4, "num_tasks": 1, "max_horizon": 4, "dim": 8, "layers": 1, "heads": 2,
              "state": state, "state_dim": state_dim}
    net = build_network(**config)
    net.start_prototypes.copy_(torch.eye(4))
    net.goal_prototypes.copy_(torch.eye(4))
    info = {"state_encoder": "frames@0", "state_encoder_spec": "frames"} if state_dim else {}
    save_planner(tmp_path / "p", net, vocab, {"tea": tiny_graph()}, {"tea": Counter(counts)}, config, "test",
                 settings={"temperature": 0.05, "alpha": 0.1, "decode": "graph", **settings}, **info)
    return ProcedurePlanner.from_pretrained(tmp_path / "p")


def test_done_steps_and_set_evidence_known_answers():
    steps = [(1, 0.0, 2.0), (2, 3.0, 5.0), (3, 6.0, 8.0)]
    assert done_steps(steps, 3.0, "start") == {1}  # step 2 starts: in progress, not done
    assert done_steps(steps, 5.0, "goal") == {1}  # step 2 ends inside the goal window (4, 5]: in progress
    assert done_steps(steps, 6.0, "goal") == {1, 2}
    ds, dg = np.array([0.9, 0.2, 0.1, 0.1]), np.array([0.9, 0.8, 0.3, 0.1])
    (e,) = set_evidence(np.array([[1, 2, 3]]), ds, dg)
    # steps 2, 3 (index 1, 2) inside, step 4 (index 3) in progress at the goal, step 1 outside
    want = np.log(0.8 * 0.8) + np.log(0.9 * 0.3) + np.log(0.9 * 0.9) + np.log(0.9 * 0.9 + 0.1 * 0.1)
    assert e == pytest.approx(want)


def test_set_evidence_changes_the_learned_path(tmp_path):
    """The network slightly prefers 1, 2, 4; the state says step 1 was done before the window began and steps
    2, 3 were done by the goal: the set evidence turns the plan into 2, 3, 4 (and only when weighted in)."""
    planner = _planner(tmp_path, {(1, 2): 5, (2, 3): 5, (3, 4): 5, (2, 4): 5}, state=True, set_weight=1.0)
    assert planner.has_state and planner.set_weight == 1.0 and planner.transition_weight == 0.0
    steps = np.log(np.array([[0.4, 0.3, 0.2, 0.1], [0.1, 0.4, 0.4, 0.1], [0.1, 0.1, 0.2, 0.6]]))
    tasks = np.zeros(1)
    done = np.array([[0.95, 0.05, 0.05, 0.05], [0.95, 0.95, 0.95, 0.05]])  # P(done) at the start, the goal
    assert planner.decode_learned(steps, tasks, set_weight=0.0, done=done)[0].steps == [1, 2, 4]
    assert planner.decode_learned(steps, tasks, done=None)[0].steps == [1, 2, 4]  # no state given: as before
    plan = planner.decode_learned(steps, tasks, done=done)[0]
    assert plan.steps == [2, 3, 4] and plan.valid
    # the done probabilities come from the state head; the planner's own path runs end to end
    done = planner.predict_done(np.eye(4)[[0, 3]])
    assert done.shape == (2, 4) and ((done > 0) & (done < 1)).all()
    assert planner.plan(np.eye(4)[0], np.eye(4)[3], 3)[0].valid
    # a folder without a state head decodes as before and says so when asked for states
    plain = _planner(tmp_path / "plain", {(1, 2): 1}, set_weight=1.0)
    assert not plain.has_state and plain.set_weight == 0.0
    with pytest.raises(ProcvidError, match="no state head"):
        plain.predict_done(np.eye(4)[:1])


def test_a_planner_folder_from_before_the_second_encoder_still_plans(tmp_path):
    """Folders written before the state head could read a second encoder have no state_dim and no
    state_encoder: they load with a one-encoder state head and plan with the set evidence."""
    import json

    _planner(tmp_path, {(1, 2): 5, (2, 3): 5, (3, 4): 5}, state=True, set_weight=1.0)
    path = tmp_path / "p" / "config.json"
    config = json.loads(path.read_text())
    assert not any("state_encoder" in k for k in config) and config["architecture"].pop("state_dim") == 0
    path.write_text(json.dumps(config))
    old = ProcedurePlanner.from_pretrained(tmp_path / "p")
    assert old.has_state and old.state_dim == 0 and old.state_encoder_spec is None
    start, goal = np.eye(4)[0], np.eye(4)[3]
    steps, tasks = old.predict(start, goal, 3)
    with_state = old.plan(start, goal, 3)[0]
    want = old.decode_learned(steps[0], tasks[0], done=old.predict_done(np.stack([start, goal])))[0]
    assert with_state.steps == want.steps and with_state.score == pytest.approx(want.score) and with_state.valid


def test_state_head_with_a_second_encoder(tmp_path):
    """A state head that reads a second encoder's observation too: it needs that observation (one clear line
    without it), its input is both observations concatenated at unit norm, and the learned planner decodes
    without the set evidence when the second observation is missing."""
    import torch

    from procvid.forecast.plan import state_input

    x = state_input(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert x.shape == (1, 5) and float(x.norm()) == pytest.approx(1.0)
    planner = _planner(tmp_path, {(1, 2): 5, (2, 3): 5, (3, 4): 5, (2, 4): 5}, state=True, state_dim=3,
                       set_weight=1.0)
    assert planner.state_dim == 3 and planner.state_encoder_id == "frames@0" and planner.state_encoder_spec == "frames"
    with pytest.raises(ProcvidError, match="also reads features of frames@0"):
        planner.predict_done(np.eye(4)[[0, 3]])
    state = np.eye(3)[[0, 2]]
    done = planner.predict_done(np.eye(4)[[0, 3]], state)
    assert done.shape == (2, 4) and ((done > 0) & (done < 1)).all()
    # the second observation changes the state head's answer (its weights read it)
    assert not np.allclose(done, planner.predict_done(np.eye(4)[[0, 3]], np.eye(3)[[1, 1]]))
    start, goal = np.eye(4)[0], np.eye(4)[3]
    steps, tasks = planner.predict(start, goal, 3)
    plain = planner.decode_learned(steps[0], tasks[0], set_weight=0.0)[0]
    assert planner.plan(start, goal, 3)[0].score == pytest.approx(plain.score)  # no second observation: no set evidence
    full = planner.plan(start, goal, 3, start_state=state[0], goal_state=state[1])[0]
    want = planner.decode_learned(steps[0], tasks[0], done=done)[0]
    assert full.steps == want.steps and full.score == pytest.approx(want.score) and full.valid


def test_bench_diagnosis_counts_the_misses(tmp_path):
    """tools/bench_plan.py --tune's diagnosis: one window the planner gets right, one with the same
    observations whose truth differs in its middle step (ends right, set wrong)."""
    bench = load_tool("bench_plan")
    planner = _planner(tmp_path, {(1, 2): 5, (2, 3): 5, (3, 4): 5, (2, 4): 5}, state=True, state_dim=3,
                       set_weight=1.0)
    start, goal, state = np.eye(4)[0], np.eye(4)[3], np.eye(3)[[0, 2]]
    done = planner.predict_done(np.stack([start, goal]), state)
    steps, tasks = planner.predict(start, goal, 3)
    plan = planner.decode_learned(steps[0], tasks[0], done=done)[0].steps
    other = [plan[0], next(s for s in (1, 2, 3, 4) if s not in plan), plan[2]]
    qs = [("tea", tuple(truth), start, goal, state[0], state[1]) for truth in (plan, other)]
    assert np.allclose(bench.done_probs(planner, qs)[:, 0], done)
    line = bench.diagnose(planner, qs)
    assert "learned misses 1 of 2 windows; of those right: task 1, first 1, last 1, set 0, set + ends 0" in line
    assert "thresholded window set right" in line


def test_graph_planner_known_answers(tmp_path):
    # training went 1 -> 3 -> 4 most often, but 1, 3, 4 skips the required step 2
    planner = _planner(tmp_path, {(1, 3): 9, (3, 4): 9, (1, 2): 1, (2, 4): 1, (2, 3): 1, (3, 2): 2})
    start, goal = np.eye(4)[0], np.eye(4)[3]  # looks like step 1 starting, step 4 ending
    plan, second = planner.plan_graph(start, goal, 3, top=2)
    assert plan.task == "tea" and plan.steps == [1, 2, 4] and plan.valid and plan.texts == ["boil", "tea", "pour"]
    assert second.score < plan.score
    free = planner.plan_graph(start, goal, 3, constrained=False)[0]
    assert free.steps == [1, 3, 4] and not free.valid  # the ablation without the graph takes the invalid path
    assert planner.plan_graph(start, goal, 4)[0].steps == [1, 3, 2, 4]  # 1 -> 3 preferred, 2 required
    learned = planner.plan(start, goal, 3, method="learned")[0]  # untrained net: any valid path, never invalid
    assert learned.valid and len(learned.step_probs) == 3
    with pytest.raises(ProcvidError, match="plans 1 to 4 steps"):
        planner.plan_graph(start, goal, 5)
    with pytest.raises(ProcvidError, match="does not know task"):
        planner.plan(start, goal, 3, task="coffee")


def test_observation_windows_and_sources(tmp_path):
    emb = np.eye(6, dtype=np.float32)[[0, 1, 2, 3, 4, 5]]
    times = np.arange(6) * 0.5
    assert observation(emb, times, 1.0, "start") == pytest.approx(np.array([0, 0, 1, 1, 0, 0]) / np.sqrt(2))
    assert observation(emb, times, 1.0, "goal") == pytest.approx(np.array([0, 1, 1, 0, 0, 0]) / np.sqrt(2))
    assert observation(emb, times, 9.0, "goal") == pytest.approx(emb[5])  # outside: the nearest row
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    assert parse_source(f"{video}@2.5") == (video, 2.5, "video")
    for bad, message in [(f"{video}", "give the time"), (f"{video}@x", "not a time"), ("nope.png", "no such file"),
                         (f"{video}@-1", ">= 0")]:
        with pytest.raises(ProcvidError, match=message):
            parse_source(bad)


@pytest.fixture(scope="module")
def open_clip_weights(tmp_path_factory):
    """Stand-in weights of a real open_clip architecture saved to a local file (how real weights are given)."""
    import open_clip
    import torch

    from procvid.encoders.open_clip_encoder import register_model_configs

    register_model_configs()
    torch.manual_seed(0)
    weights = tmp_path_factory.mktemp("oc") / "open_clip_pytorch_model.bin"
    torch.save(open_clip.create_model("procvid-test-tiny").state_dict(), weights)
    return f"procvid-test-tiny:{weights}"


@pytest.mark.slow
def test_fast_dev_run_and_plan_with_local_open_clip_weights(small_world, open_clip_weights, tmp_path, capsys):
    """`procvid train planner` (fast_dev_run) on features of an open_clip model given by path, then `procvid plan`
    embedding a video's frames with that model: the same code as the shipped planner."""
    features, model = tmp_path / "features", tmp_path / "model"
    assert main(["train", "planner", "--config", PLANNER_CFG, "--config", DEBUG_CFG, "--data.world", str(small_world),
                 "--data.features", str(features), "--data.encoder", open_clip_weights, "--data.num_videos", "6",
                 "--data.horizons", "[2, 3]", "--data.batch_size", "8", "--model.export_dir", str(model),
                 "--data.state_encoder", open_clip_weights, "--data.state_features", str(tmp_path / "state"),
                 "--model.dim", "16", "--trainer.default_root_dir", str(tmp_path)]) in (0, None)
    planner = ProcedurePlanner.from_pretrained(model)
    assert planner.info["encoder_spec"] == open_clip_weights and planner.info["domain"] == "procvid synthetic world v1"
    assert planner.info["encoder"].startswith("open_clip:procvid-test-tiny:open_clip_pytorch_model.bin@")
    # the state head's second encoder (here the same stand-in model, embedded into its own folder)
    assert planner.state_dim > 0 and planner.state_encoder_id == planner.info["encoder"]
    assert planner.state_encoder_spec == open_clip_weights
    capsys.readouterr()
    video = sorted((small_world / "videos").glob("*.mp4"))[0]
    out = tmp_path / "plan.json"
    assert main(["plan", "--start", f"{video}@1.0", "--goal", f"{video}@12", "--horizon", "3", "--model", str(model),
                 "--top", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert len(result["plans"]) == 2 and all(len(p["steps"]) == 3 and p["valid"] for p in result["plans"])
    assert f"1. [{result['plans'][0]['steps'][0]}]" in printed
    # feature rows give the same observation path; the graph planner reads the same folder
    feats = features / f"{video.stem}.safetensors"
    assert main(["plan", "--start", f"{feats}@1.0", "--goal", f"{feats}@12", "--horizon", "2", "--model", str(model),
                 "--planner", "graph"]) == 0
    assert "plan 1: task" in capsys.readouterr().out
    # feature files hold no second encoder's rows: the learned planner plans without the set evidence and says so
    assert main(["plan", "--start", f"{feats}@1.0", "--goal", f"{feats}@12", "--horizon", "2", "--model", str(model),
                 "--out", str(out)]) == 0
    assert "without the set evidence" in " ".join(json.loads(out.read_text())["warnings"])


def test_plan_command_errors(tmp_path, capsys):
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(image)
    assert main(["plan", "--start", str(image), "--goal", str(image), "--horizon", "0"]) == 2
    assert "--horizon must be at least 1" in capsys.readouterr().err
    assert main(["plan", "--start", str(image), "--goal", str(image), "--horizon", "3", "--model",
                 str(tmp_path)]) == 2
    assert "not a procvid model folder" in capsys.readouterr().err
    assert main(["plan", "--start", str(image), "--goal", str(image), "--horizon", "3", "--figure", "p.jpg"]) == 2
    assert "the figure is a PNG file" in capsys.readouterr().err


def test_plan_figure_shows_the_frames_and_the_steps(tmp_path):
    """--figure: one row per plan, the start frame, T step boxes, the goal frame (a feature file has none)."""
    from PIL import Image

    from procvid.features import write_entry
    from procvid.forecast.plan_figure import observation_thumbnail, write_plan_figure

    start = tmp_path / "start.png"
    Image.new("RGB", (320, 240), (200, 40, 40)).save(start)
    write_entry(tmp_path, "f", np.eye(4, dtype=np.float32), np.arange(4) * 0.5, {"encoder": "x"})
    thumb = observation_thumbnail(str(start))
    assert thumb.shape == (160, 213, 3) and (thumb[80, 100] == (200, 40, 40)).all()  # short side 160, its colour
    assert observation_thumbnail(f"{tmp_path / 'f.json'}@1") is None
    from helpers import CLIPS

    if CLIPS:  # a real clip at a time past its end: its last frame, short side 160
        frame = observation_thumbnail(f"{CLIPS[0]}@99999")
        assert frame.ndim == 3 and min(frame.shape[:2]) <= 160 and frame.std() > 0
    plan = {"task": "tea", "task_prob": 0.9, "steps": [1, 2, 3], "texts": ["boil", "steep", "pour"],
            "step_probs": [0.8, 0.7, 0.6], "valid": True}
    result = {"start": str(start), "goal": f"{tmp_path / 'f.json'}@1", "horizon": 3, "planner": "learned",
              "decode": "graph", "plans": [plan, {**plan, "steps": [1, 3, 2], "valid": False}]}
    path = write_plan_figure(result, tmp_path / "out" / "plans.png")
    with Image.open(path) as image:  # five columns, two rows
        assert image.format == "PNG" and image.width > 2 * image.height > 0


@pytest.mark.skipif(not (DATA / "niv").exists(), reason="NIV annotations not found (set PROCVID_DATA)")
def test_label_level_benchmark_on_niv(capsys):
    bench = load_tool("bench_plan")
    results = bench.label_level("niv", horizons=(3,))
    sr, acc, iou = results[3]["graph script"]
    assert 0 < sr <= acc <= 100 and acc >= 100 * 2 / 3  # first and last step are given
    assert "niv: label level" in capsys.readouterr().out


def test_set_weight_without_a_state_head_is_one_line():
    from procvid.errors import ProcvidError
    from procvid.train.planner import PlannerModule

    with pytest.raises(ProcvidError, match="set_weight needs model.state_weight"):
        PlannerModule(set_weight=1.0, state_weight=0.0)
