"""procvid run: the pipeline end to end on a small synthetic world, its resume, and the report
as a browser shows it (headless Chromium)."""

import os
import sys

import pytest

from procvid.cli import main
from procvid.paths import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "tools"))
import screenshot_report  # noqa: E402


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from procvid.data.synthetic import generate_world

    w = tmp_path_factory.mktemp("world")
    generate_world(w, num_videos=6, seed=21, size=64, min_duration=20, max_duration=25, progress=False)
    return w


@pytest.fixture(scope="module")
def run_out(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["run", str(world / "videos"), "--annotations", str(world), "--out", str(out), "--no-progress"]) == 0
    return out


def test_run_writes_every_stage(run_out):
    assert len(list((run_out / "features").glob("*.safetensors"))) == 6
    assert len(list((run_out / "segments").glob("*.segments.json"))) == 6
    assert len(list((run_out / "segments").glob("*.timeline.png"))) == 6
    assert len(list((run_out / "graphs").glob("*.png"))) == 6
    page = (run_out / "report" / "index.html").read_text()
    assert page.count("class='timeline'") == 6 and page.count("class='graph'") == 6


def test_rerun_reuses_outputs(world, run_out, capsys):
    before = {p: p.stat().st_mtime_ns for p in (run_out / "segments").glob("*.segments.json")}
    assert main(["run", str(world / "videos"), "--annotations", str(world), "--out", str(run_out),
                 "--no-progress"]) == 0
    assert before == {p: p.stat().st_mtime_ns for p in (run_out / "segments").glob("*.segments.json")}


def test_bad_preset_is_one_line(tmp_path, world, capsys):
    preset = tmp_path / "bad.yaml"
    preset.write_text("methd: uvd\n")
    assert main(["run", str(world / "videos"), "--out", str(tmp_path), "--config", str(preset)]) == 2
    assert "unknown settings" in capsys.readouterr().err


def test_report_in_headless_chromium(run_out, tmp_path):
    if screenshot_report.chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI: .ci/run installs it")
        pytest.skip("chromium not installed (apt-get install chromium)")
    png = tmp_path / "shot.png"
    counts = screenshot_report.content(screenshot_report.render(run_out / "report" / "index.html", png))
    assert counts["timelines"] == 6 and counts["graphs"] == 6 and counts["keyframes"] >= 6
    assert counts["missing"] == 0
    assert png.stat().st_size > 50_000  # a real rendering, not a blank page


def test_local_open_clip_weights_run_through_the_same_code(world, tmp_path):
    """`--encoder NAME:/path/weights.bin` (how real pretrained weights are used) on stand-in weights."""
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
    assert main(["run", str(world / "videos"), "--out", str(out), "--encoder", spec, "--no-progress"]) == 0
    meta = json.loads(next((out / "features").glob("*.json")).read_text())
    assert meta["encoder"].startswith("open_clip:procvid-test-tiny:open_clip_pytorch_model.bin@")
    loaded = load_encoder(spec).model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in model.state_dict().items())
