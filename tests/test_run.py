"""procvid run: the pipeline end to end on a small synthetic world, its resume, and the report
as a browser shows it (headless Chromium)."""

import json
import os

import pytest

from helpers import file_stamps, load_tool
from procvid.cli import main

# the shipped KIG, fewer key steps than the default preset's 5: one example per task stays
GENERATE_STEPS = 2


@pytest.fixture(scope="module")
def screenshot_report():
    """tools/screenshot_report.py, a script, loaded by its file path."""
    return load_tool("screenshot_report")


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    from procvid.paths import REPO_ROOT

    path = tmp_path_factory.mktemp("preset") / "run.yaml"  # the synthetic-world preset, fewer key steps
    synthetic = (REPO_ROOT / "configs" / "run" / "synthetic.yaml").read_text()
    path.write_text(synthetic.replace("generate_steps: 5", f"generate_steps: {GENERATE_STEPS}"))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from procvid.data.synthetic import generate_world

    w = tmp_path_factory.mktemp("world")
    generate_world(w, num_videos=6, seed=21, size=64, min_duration=20, max_duration=25, progress=False)
    return w


def run_argv(world, out, preset):
    return ["run", str(world / "videos"), "--annotations", str(world), "--out", str(out), "--config", str(preset),
            "--no-progress"]


@pytest.fixture(scope="module")
def run_out(world, preset, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(run_argv(world, out, preset)) == 0
    return out


@pytest.mark.slow
def test_run_writes_every_stage(world, run_out):
    import json

    assert len(list((run_out / "features").glob("*.safetensors"))) == 6
    assert len(list((run_out / "segments").glob("*.segments.json"))) == 6
    assert len(list((run_out / "segments").glob("*.timeline.png"))) == 6
    assert len(list((run_out / "graphs").glob("*.png"))) == 6
    steps = sorted((run_out / "steps").glob("*.steps.json"))
    assert len(steps) == 6
    tasks = {t["id"]: t for t in json.loads((world / "tasks.json").read_text())}
    for f in steps:  # grounded paths name steps of the video's own task, each at most once
        doc = json.loads(f.read_text())
        assert doc["task"] == f.name.split("_")[0] and doc["order"] == "graph"
        assert set(doc["path"]) <= {s["id"] for s in tasks[doc["task"]]["steps"]}
        assert len(doc["path"]) == len(set(doc["path"])) > 0
    sheets = sorted((run_out / "generate").glob("*/contact_sheet.png"))
    assert {p.parent.name for p in sheets} == {f.name.split("_")[0] for f in steps}
    for sheet in sheets:
        plan = json.loads((sheet.parent / "plan.json").read_text())
        assert 1 <= len(plan["steps"]) <= GENERATE_STEPS and plan["settings"]["max_steps"] == GENERATE_STEPS
        assert all((sheet.parent / s["image"]).exists() for s in plan["steps"])
    page = (run_out / "report" / "index.html").read_text()
    assert page.count("class='timeline'") == 6 and page.count("class='graph'") == 6
    assert page.count("class='sheet'") == len(sheets) and page.count("class='grounded'") == 6
    assert "Grounded steps against ground truth" in page
    checked = sorted((run_out / "mistakes").glob("*.mistakes.json"))  # every grounded path checked online
    assert len(checked) == 6 and (run_out / "mistakes" / "predictions.json").exists()
    assert "class='mistakes-summary'" in page and page.count("flagged step") >= 1
    forecasts = sorted((run_out / "forecast").glob("*.forecast.json"))  # what comes next, at each video's end
    assert len(forecasts) == 6 and page.count("class='forecast'") == 6
    for f in forecasts:
        doc = json.loads(f.read_text())
        assert doc["method"] == "latent" and doc["at_end"] and len(doc["next"]) == 3
        assert doc["task"] == f.name.split("_")[0] and doc["task_source"] == "given"


@pytest.mark.slow
def test_at_forecasts_what_comes_next_after_that_time(world, preset, run_out, tmp_path, capsys):
    import shutil

    out = tmp_path / "o"
    shutil.copytree(run_out, out)
    assert main([*run_argv(world, out, preset)[:-1], "--at", "5", "--no-progress"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "what comes next" in line]
    assert len(lines) == 6 and all("what comes next at 5.0 s:" in line for line in lines)
    doc = json.loads(next((out / "forecast").glob("*.forecast.json")).read_text())
    assert doc["at"] == 5.0 and not doc["at_end"]
    assert "what comes next at 5.0 s" in (out / "report" / "index.html").read_text()


@pytest.mark.slow
def test_rerun_of_a_finished_run_rewrites_nothing(world, preset, run_out):
    before = file_stamps(run_out)
    for stage in ("features", "segments", "steps", "graphs", "generate", "report"):
        assert any(name.startswith(stage + "/") for name in before), f"no {stage} outputs"
    assert any(name.endswith(".timeline.png") for name in before)
    assert main(run_argv(world, run_out, preset)) == 0
    after = file_stamps(run_out)
    assert sorted(after) == sorted(before)  # no file added or removed
    assert [name for name in before if after[name] != before[name]] == []  # none rewritten


@pytest.mark.slow
def test_steps_without_annotations_build_graphs_from_grounded_paths(world, run_out, tmp_path):
    """--steps: no ground truth; grounding names the steps and the graph scripts come from its paths.
    Features and segments are reused from the annotated run (same encoder and detector)."""
    import shutil

    out = tmp_path / "o"
    shutil.copytree(run_out / "features", out / "features")
    assert main(["run", str(world / "videos"), "--steps", str(world / "tasks.json"), "--out", str(out),
                 "--config", "synthetic", "--no-generate", "--no-progress"]) == 0
    assert len(list((out / "steps").glob("*.steps.json"))) == 6
    assert len(list((out / "graphs").glob("*.json"))) == 6
    assert not (out / "generate").exists()
    page = (out / "report" / "index.html").read_text()
    assert "grounded step paths" in page and "against ground truth" not in page


def test_videos_of_the_same_name_in_sub_folders_stay_apart(world, tmp_path, capsys):
    """Recordings kept as <recording>/<camera>.mp4 share file names: every stage keeps the sub-folder in
    the video's stem, so neither overwrites the other (steps, mistakes, forecasts mirror the folders)."""
    import shutil

    first, second = sorted((world / "videos").glob("*.mp4"))[:2]
    task = first.stem.split("_", 1)[0]
    for folder, video in (("a", first), ("b", second)):
        (tmp_path / "in" / folder).mkdir(parents=True)
        shutil.copy(video, tmp_path / "in" / folder / "clip.mp4")
    out = tmp_path / "o"
    assert main(["run", str(tmp_path / "in"), "--steps", str(world / "tasks.json"), "--task", task, "--out", str(out),
                 "--config", "synthetic", "--no-generate", "--no-progress"]) == 0
    for stage, suffix in (("steps", ".steps.json"), ("mistakes", ".mistakes.json"), ("forecast", ".forecast.json")):
        assert sorted(p.relative_to(out / stage).as_posix() for p in (out / stage).rglob("*" + suffix)) == \
               [f"a/clip{suffix}", f"b/clip{suffix}"], stage
    assert set(json.loads((out / "mistakes" / "predictions.json").read_text())) == {"a/clip", "b/clip"}
    printed = capsys.readouterr().out
    assert "a/clip [" in printed and "b/clip [" in printed  # a "what comes next" line each
    steps = [json.loads((out / "steps" / f / "clip.steps.json").read_text()) for f in "ab"]
    assert steps[0]["source"] != steps[1]["source"]


@pytest.mark.parametrize("args, message", [
    (["--task", "tea"], "--task needs --steps"),
    (["--steps", "x.json", "--annotations", "y"], "not both"),
    (["--steps", "{world}/tasks.json", "--task", "nosuch"], "unknown task 'nosuch'"),
])
def test_run_option_errors(world, tmp_path, capsys, args, message):
    args = [a.replace("{world}", str(world)) for a in args]
    video = sorted((world / "videos").glob("*.mp4"))[0]  # one video: the last case embeds it first (below)
    assert main(["run", str(video), "--out", str(tmp_path / "o"), "--config", "synthetic", "--no-progress",
                 *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_task_is_refused_before_any_video_is_processed(world, tmp_path):
    out = tmp_path / "o"
    video = sorted((world / "videos").glob("*.mp4"))[0]
    assert main(["run", str(video), "--steps", str(world / "tasks.json"), "--task", "nosuch", "--out", str(out),
                 "--config", "synthetic", "--no-progress"]) == 2
    assert not (out / "features").exists() and not (out / "segments").exists()


def test_bad_preset_is_one_line(tmp_path, world, capsys):
    preset = tmp_path / "bad.yaml"
    preset.write_text("methd: uvd\n")
    assert main(["run", str(world / "videos"), "--out", str(tmp_path), "--config", str(preset)]) == 2
    assert "unknown settings" in capsys.readouterr().err


@pytest.mark.slow
def test_report_in_headless_chromium(run_out, screenshot_report, tmp_path):
    if screenshot_report.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI: .ci/run installs it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    png = tmp_path / "shot.png"
    counts = screenshot_report.content(screenshot_report.render(run_out / "report" / "index.html", png))
    assert counts["timelines"] == 6 and counts["graphs"] == 6 and counts["keyframes"] >= 6
    assert counts["generated"] >= 1 and counts["missing"] == 0
    assert png.stat().st_size > 50_000  # a real rendering, not a blank page


@pytest.mark.slow
def test_local_weights_run_through_the_same_code(world, preset, tiny_instruct_pix2pix, tmp_path):
    """`--encoder NAME:/path/weights.bin` and `--kig /path/to/instruct-pix2pix` (how real pretrained
    weights are used) on stand-in weights saved to local files."""
    import json

    import open_clip
    import torch

    from procvid.encoders import load_encoder
    from procvid.encoders.open_clip_encoder import register_model_configs

    register_model_configs()
    model = open_clip.create_model("procvid-test-tiny")
    weights = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(model.state_dict(), weights)
    spec = f"procvid-test-tiny:{weights}"
    out = tmp_path / "o"
    assert main(["run", str(world / "videos"), "--out", str(out), "--encoder", spec, "--method", "uvd",
                 "--steps", str(world / "tasks.json"), "--kig", str(tiny_instruct_pix2pix), "--config", str(preset),
                 "--no-progress"]) == 0
    meta = json.loads(next((out / "features").glob("*.json")).read_text())
    assert meta["encoder"].startswith("open_clip:procvid-test-tiny:open_clip_pytorch_model.bin@")
    steps = json.loads(next((out / "steps").glob("*.steps.json")).read_text())
    assert steps["encoder"] == meta["encoder"]  # step texts through the same weights' text tower
    plan = json.loads(next((out / "generate").glob("*/plan.json")).read_text())
    assert plan["settings"]["kig"] == str(tiny_instruct_pix2pix)
    assert all((out / "generate" / plan["skill"]["id"] / s["image"]).exists() for s in plan["steps"])
    forecast = json.loads(next((out / "forecast").glob("*.forecast.json")).read_text())
    assert forecast["method"] == "graph-walk"  # the shipped forecaster is for the `video` encoder's features
    loaded = load_encoder(spec).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())


@pytest.mark.slow
def test_unlabeled_videos_get_discovered_steps_and_graph_scripts(world, run_out, tmp_path):
    """Neither --annotations nor --steps: the steps each task's videos share are discovered (tasks
    from the <task>_ name prefix), with label-free graph scripts, and the report shows them."""
    import shutil

    out = tmp_path / "o"
    shutil.copytree(run_out / "features", out / "features")
    assert main(["run", str(world / "videos"), "--out", str(out), "--config", "synthetic", "--no-generate",
                 "--no-progress"]) == 0
    tasks = {p.name.split("_", 1)[0] for p in (world / "videos").glob("*.mp4")}
    found = sorted(p.name.split(".")[0] for p in (out / "discover").glob("*.discovery.json"))
    assert found == sorted(tasks)
    assert len(list((out / "discover" / "graphs").glob("*.json"))) == len(tasks)
    doc = json.loads((out / "discover" / f"{found[0]}.discovery.json").read_text())
    assert doc["steps"] and all(s["keyframes"] for s in doc["steps"])
    page = (out / "report" / "index.html").read_text()
    assert "Discovered steps" in page and "discovered step paths" in page
    assert not list((out / "steps").glob("*.steps.json"))
