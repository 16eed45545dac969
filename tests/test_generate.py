"""Key-step generation: planner decoding and retrieval, KIG folders (ours and a tiny InstructPix2Pix),
sampling, training (fast_dev_run) and `procvid generate` end to end with the shipped model."""

import itertools
import json
import math

import networkx as nx
import numpy as np
import pytest

from procvid.cli import main
from procvid.generate.planner import Skill, SkillLibrary, decode_order, plan_skill, read_plan_file, retrieve
from procvid.graph.script import END, START
from procvid.paths import CHECKPOINTS_DIR, REPO_ROOT

SHIPPED = CHECKPOINTS_DIR / "procvid-kig"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Small models run fastest single-threaded; extra threads stall when other jobs share the cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _skill(edges, transitions, optional=(), frequency=None, sid="tea", name="Make a cup of tea"):
    steps = {s: f"step {s}" for s in sorted({n for e in edges for n in e} - {START, END})}
    graph = nx.DiGraph(optional=list(optional))
    graph.add_nodes_from((s, {"text": t}) for s, t in steps.items())
    graph.add_edges_from(edges)
    frequency = frequency or {s: 1.0 for s in steps}
    return Skill(sid, name, steps, graph, frequency, transitions)


# 1 and 2 in either order, then 3, then 5 and optional 4
EDGES = [(START, 1), (START, 2), (1, 3), (2, 3), (3, 4), (3, 5), (4, END), (5, END)]


def test_plan_respects_preconditions_and_follows_transitions():
    # START -> 3 is frequent in the counts (noise), but 3 needs 1 and 2 done first
    counts = {(START, 2): 5, (START, 1): 1, (START, 3): 50, (2, 1): 5, (1, 2): 1, (1, 3): 6, (3, 5): 4, (3, 4): 2,
              (5, 4): 2}
    skill = _skill(EDGES, counts, optional=[4], frequency={1: 1, 2: 1, 3: 1, 4: 0.3, 5: 1})
    assert decode_order(skill) == [2, 1, 3, 5]  # optional 4 is rare: left out
    assert decode_order(skill, optional_threshold=0.2) == [2, 1, 3, 5, 4]
    assert plan_skill(skill, max_steps=2) == [(2, "step 2"), (1, "step 1")]


def test_plan_is_the_most_probable_valid_order():
    # greedy would take 1 first (count 3 > 2), but after 2 the next step is near certain, so 2 -> 1 -> 3
    # is the more probable order overall
    edges = [(START, 1), (START, 2), (START, 3), (1, END), (2, END), (3, END)]
    counts = {(START, 1): 3, (START, 2): 2, (1, 2): 1, (1, 3): 1, (2, 1): 9}
    skill = _skill(edges, counts)

    def logp(order, smoothing=0.5):  # the planner's model: counts normalised over the allowed next steps
        total, done, last = 0.0, set(), START
        for s in order:
            allowed = [a for a in skill.steps if a not in done and nx.ancestors(skill.graph, a) - {START} <= done]
            c = [counts.get((last, a), 0) + smoothing for a in allowed]
            total += math.log((counts.get((last, s), 0) + smoothing) / sum(c))
            done.add(s)
            last = s
        return total

    valid = [o for o in itertools.permutations(skill.steps) if list(o) in map(list, nx.all_topological_sorts(
        skill.graph.subgraph(skill.steps)))]
    assert decode_order(skill) == list(max(valid, key=logp)) == [2, 1, 3]


def test_retrieval_by_text_and_library_round_trip(tmp_path):
    tea = _skill(EDGES, {(START, 1): 1})
    pizza = _skill([(START, 1), (1, END)], {}, sid="pizza", name="Make a pizza")
    pizza.steps = {1: "spread red tomato sauce on the dough"}
    pizza.graph.nodes[1]["text"] = pizza.steps[1]
    tea.keyframes = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float16).astype(np.float32)
    library = SkillLibrary([tea, pizza])
    loaded = SkillLibrary.load(library.save(tmp_path / "lib"))
    assert [s.steps for s in loaded.skills] == [tea.steps, pizza.steps]
    assert loaded.skills[0].transitions == {(START, 1): 1}
    assert sorted(p.name for p in (tmp_path / "lib").iterdir()) == ["library.json", "library.safetensors"]
    np.testing.assert_array_equal(loaded.skills[0].keyframes, tea.keyframes)
    assert loaded.skills[1].keyframes is None
    ranked = retrieve(loaded, "bake a tomato pizza", text="clip")
    assert ranked[0]["id"] == "pizza" and ranked[0]["image_score"] is None


def test_shipped_library_retrieves_by_text_and_image():
    from procvid.data.synthetic import render_state, task_spec

    library = SkillLibrary.load(SHIPPED)
    assert {s.id for s in library.skills} == {"salad", "tea", "shelf", "plant", "sandwich", "pizza"}
    start = render_state(task_spec("plant"), [], size=96)
    ranked = retrieve(library, "do the task", start, text="clip")  # an uninformative text: the image decides
    assert ranked[0]["id"] == "plant" and ranked[0]["image_score"] is not None


@pytest.mark.parametrize("content, message", [("not json", "not valid JSON"), ("[]", "non-empty"),
                                              ('["ok", ""]', "non-empty text")])
def test_bad_plan_files(tmp_path, content, message):
    from procvid.errors import ProcvidError

    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(ProcvidError, match=message):
        read_plan_file(path)
    path.write_text(json.dumps({"steps": [{"text": "a"}, {"text": "b"}]}))
    assert read_plan_file(path) == ["a", "b"]


# ----------------------------------------------------------------------------- KIG


@pytest.fixture(scope="module")
def tiny_kig():
    import torch

    from procvid.generate.kig import KeyStepGenerator

    torch.manual_seed(0)
    kig = KeyStepGenerator.create(image_size=16, fold=2, block_out_channels=(16, 32))
    torch.nn.init.normal_(kig.unet.conv_out.weight, std=0.1)  # created zero ("no change"): make seeds matter
    return kig


def test_kig_save_load_round_trip(tiny_kig, tmp_path):
    from procvid.generate.kig import KeyStepGenerator, load_generator

    prev = np.random.default_rng(0).integers(0, 256, (24, 30, 3), dtype=np.uint8)
    out = tiny_kig.generate(prev, "pour hot water into the cup", steps=3, seed=5)
    loaded = load_generator(tiny_kig.save_pretrained(tmp_path / "kig"))
    assert isinstance(loaded, KeyStepGenerator)
    assert json.loads((tmp_path / "kig/model_index.json").read_text())["_class_name"] == "KeyStepPipeline"
    np.testing.assert_array_equal(loaded.generate(prev, "pour hot water into the cup", steps=3, seed=5), out)
    assert not np.array_equal(loaded.generate(prev, "pour hot water into the cup", steps=3, seed=6), out)


def test_kig_folder_with_pickled_weights_is_refused_unread(tiny_kig, tmp_path):
    import torch

    from procvid.errors import ProcvidError
    from procvid.generate.kig import KeyStepGenerator

    class Payload:  # unpickling it would write the marker
        def __reduce__(self):
            return exec, (f"open({str(tmp_path / 'marker')!r}, 'w').close()",)

    folder = tiny_kig.save_pretrained(tmp_path / "kig")
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    state = {k: v for k, v in tiny_kig.unet.state_dict().items()}
    torch.save({**state, "payload": Payload()}, weights.with_suffix(".bin"))
    weights.unlink()
    with pytest.raises(ProcvidError, match="only safetensors weights are read"):
        KeyStepGenerator.from_pretrained(folder)
    assert not (tmp_path / "marker").exists()


def test_kig_one_sampling_step_and_no_image_condition(tiny_kig):
    prev = np.full((16, 16, 3), 200, np.uint8)
    out = tiny_kig.generate_batch(np.stack([prev, prev]), ["a", "b"], steps=1, guidance=2.0, image_guidance=1.0)
    assert out.shape == (2, 16, 16, 3) and out.dtype == np.uint8
    assert tiny_kig.generate(None, "a", steps=1).shape == (16, 16, 3)


def test_train_kig_fast_dev_run(small_world, tmp_path):
    from procvid.generate.kig import load_generator

    main(["train", "kig", "--config", str(REPO_ROOT / "configs/train/kig.yaml"),
          "--config", str(REPO_ROOT / "configs/trainer/debug.yaml"), f"--data.world={small_world}",
          "--data.batch_size", "4", "--model.block_out_channels", "[16, 32]",
          "--model.export_path", str(tmp_path / "kig")])
    kig = load_generator(tmp_path / "kig")
    assert kig.generate(np.zeros((64, 64, 3), np.uint8), "step", steps=1).shape == (32, 32, 3)
    assert len(SkillLibrary.load(tmp_path / "kig").skills) == 6


def test_library_from_graph_build_output(small_world, tmp_path):
    assert main(["graph", "build", "--data", str(small_world), "--formats", "json", "--out", str(tmp_path)]) == 0
    library = SkillLibrary.load(tmp_path)
    assert len(library.skills) == 6 and not library.has_images()
    tea = next(s for s in library.skills if s.id == "tea")
    order = [sid for sid, _ in plan_skill(tea)]
    assert order[0] == 1 and all(nx.ancestors(tea.graph, s) - {START} <= set(order[:i]) for i, s in enumerate(order))


def test_real_instruct_pix2pix_folder_through_generate(tiny_instruct_pix2pix, tmp_path):
    from procvid.generate.kig import DiffusersGenerator, load_generator

    folder = tiny_instruct_pix2pix
    kig = load_generator(folder)
    assert isinstance(kig, DiffusersGenerator) and kig.is_pix2pix
    prev = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    out = kig.generate(prev, "put the cup on the saucer", steps=2, seed=1)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(kig.generate(prev, "put the cup on the saucer", steps=2, seed=1), out)

    plan = tmp_path / "steps.json"
    plan.write_text(json.dumps(["put the cup on the saucer", "pour hot water"]))
    start = tmp_path / "start.png"
    from PIL import Image

    Image.fromarray(prev).save(start)
    assert main(["generate", "--image", str(start), "--plan", str(plan), "--kig", str(folder), "--out",
                 str(tmp_path / "out"), "--sampler-steps", "2"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").glob("step_*.png")) == ["step_01.png", "step_02.png"]


def test_stable_diffusion_folder_runs_as_img2img(tiny_stable_diffusion, tmp_path):
    """A text-to-image Stable Diffusion folder edits the previous image through img2img."""
    from procvid.generate.kig import DiffusersGenerator, load_generator

    kig = load_generator(tiny_stable_diffusion)
    assert isinstance(kig, DiffusersGenerator) and not kig.is_pix2pix
    assert type(kig.pipe).__name__ == "StableDiffusionImg2ImgPipeline"
    prev = np.random.default_rng(0).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    out = kig.generate(prev, "pour hot water", steps=4, seed=1)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(kig.generate(prev, "pour hot water", steps=4, seed=1), out)
    other = kig.generate(np.zeros_like(prev), "pour hot water", steps=4, seed=1)
    assert not np.array_equal(other, out)  # the previous image conditions the result


# ----------------------------------------------------------------------------- CLI


@pytest.fixture(scope="module")
def start_png(tmp_path_factory):
    from PIL import Image

    from procvid.data.synthetic import render_state, task_spec

    path = tmp_path_factory.mktemp("start") / "tea.png"
    Image.fromarray(render_state(task_spec("tea"), [], size=96)).save(path)
    return path


def test_generate_cli_with_shipped_model(start_png, tmp_path):
    out = tmp_path / "out"
    assert main(["generate", "--image", str(start_png), "--skill", "make a cup of tea", "--steps", "2",
                 "--sampler-steps", "3", "--text-encoder", "clip", "--out", str(out)]) == 0
    plan = json.loads((out / "plan.json").read_text())
    assert plan["skill"]["id"] == "tea" and len(plan["steps"]) == 2
    assert plan["steps"][0]["text"] == "place the white cup on the grey saucer"  # the only step with no preconditions
    for name in ["start.png", "step_01.png", "step_02.png", "contact_sheet.png", "index.html"]:
        assert (out / name).is_file(), name
    assert 'src="step_02.png"' in (out / "index.html").read_text()


@pytest.mark.parametrize("args, message", [
    (["--image", "missing.png", "--skill", "tea"], "not found"),
    (["--skill", "   "], "--skill is empty"),
    (["--plan", "missing.json"], "cannot read plan file"),
])
def test_generate_cli_errors(start_png, tmp_path, capsys, args, message):
    if "--image" not in args:
        args = ["--image", str(start_png), *args]
    assert main(["generate", *args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_generate_cli_unreadable_image(tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    assert main(["generate", "--image", str(bad), "--skill", "tea", "--out", str(tmp_path / "out")]) == 2
    assert "not a readable image" in capsys.readouterr().err
