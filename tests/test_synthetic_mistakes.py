"""The synthetic world with mistakes (generate_world(mistakes=P), `procvid synth --mistakes P`): the
recorded mistakes are real deviations from the task graphs, the labels and the rendered videos show
them, and a world without the option is exactly the world of before."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from procvid import cli
from procvid.data import synthetic as syn
from procvid.errors import ProcvidError

SMALL = ["--videos", "6", "--min-duration", "8", "--max-duration", "12", "--size", "64", "--difficulty", "0.2"]


def synth(out, *args) -> int:
    return cli.main(["synth", "--out", str(out), *SMALL, *args])


def preconditions(spec, step) -> set:
    return {u for u, v in spec.edges if v == step}


def check_mistake(spec, clean, plan) -> None:
    """The recorded mistake is what the order does, against the task's preconditions."""
    m = plan.mistake
    order = plan.order
    assert order[m.index] == m.step
    if m.kind == "order":  # the step comes before one of its preconditions
        assert preconditions(spec, m.step) & set(order[m.index + 1:])
        assert sorted(order) == sorted(clean.order)
    elif m.kind == "skip":  # a required step left out; the tagged step needs it
        assert m.skipped not in order and m.skipped in clean.order and m.skipped not in spec.optional
        assert m.skipped in preconditions(spec, m.step)
        assert m.step not in order[:m.index]  # the first step that needs it
        assert all(m.skipped not in preconditions(spec, s) for s in order[:m.index])
    else:  # a second performance of a step
        assert m.kind == "repeat" and order[:m.index].count(m.step) == 1
        assert sorted(order) == sorted(clean.order + [m.step])
    # every other step keeps its preconditions satisfied as in a valid video
    rest = [s for i, s in enumerate(order) if i != m.index or m.kind != "repeat"]
    assert set(rest) <= set(clean.order)


def test_plans_with_mistakes_deviate_as_recorded_and_others_are_unchanged():
    specs = syn.task_specs()
    kinds = {}
    for i in range(300):
        spec = specs[i % len(specs)]
        clean = syn.plan_video(spec, i, seed=9)
        assert clean.mistake is None
        plan = syn.plan_video(spec, i, seed=9, mistakes=0.5)
        if plan.mistake is None:
            assert plan == clean  # no mistake drawn: exactly the plan of a world without the option
            continue
        check_mistake(spec, clean, plan)
        kinds[plan.mistake.kind] = kinds.get(plan.mistake.kind, 0) + 1
        # per-frame labels: the step runs of the labels are the order, mistake included
        labels = plan.labels()
        runs = [int(x) for j, x in enumerate(labels) if x and (j == 0 or labels[j - 1] != x)]
        assert runs == plan.order
    assert set(kinds) == set(syn.MISTAKE_KINDS) and 80 < sum(kinds.values()) < 220, kinds
    assert all(syn.plan_video(specs[0], i, 9, mistakes=1.0).mistake for i in range(0, 60, 6))


def _seed_with(kinds: set) -> int:
    """A seed whose first 6 videos (one per task) hold a `place` mistake of each kind in `kinds`."""
    specs = syn.task_specs()
    for seed in range(200):
        found = set()
        for i in range(6):
            plan = syn.plan_video(specs[i], i, seed, 10.0, 8.0, 12.0, 1.0)
            m, spec = plan.mistake, specs[i]
            if m.kind in kinds and spec.action(m.step).kind == "place" and not _covered(spec, plan.order, m):
                found.add(m.kind)
        if found == kinds:
            return seed
    raise AssertionError("no seed found")


def _covered(spec, order, m) -> bool:
    """Whether something drawn above the mistaken step's object is there by then (it could hide it)."""
    z = [o.name for o in spec.objects]
    mine = z.index(spec.action(m.step).obj)
    return any(z.index(spec.action(s).obj) > mine for s in order[:m.index + 1])


def _patch(frames, action, size, radius=2) -> np.ndarray:
    x, y = (int(round(v * size)) for v in action.value)
    return frames[:, y - radius:y + radius + 1, x - radius:x + radius + 1].astype(np.float32).mean(axis=(1, 2))


def test_world_with_mistakes_records_them_and_its_videos_show_them(tmp_path):
    seed = _seed_with({"order", "repeat"})
    out = tmp_path / "w"
    assert synth(out, "--seed", str(seed), "--mistakes", "1", "--workers", "1") == 0
    world = json.loads((out / "world.json").read_text())
    assert world["mistakes"] == 1.0
    listed = json.loads((out / "mistakes.json").read_text())["videos"]
    assert len(listed) == 6

    from procvid.data import load_dataset

    dataset = load_dataset(str(out))
    specs = {s.id: s for s in syn.task_specs()}
    checked = set()
    for v in dataset.videos:
        m = listed[v.video_id]
        assert v.meta["mistake"] == m["kind"]
        tagged = [i for i, s in enumerate(v.segments) if s.errors]
        assert tagged == [m["index"]] and v.segments[m["index"]].errors == (syn.MISTAKE_TAGS[m["kind"]],)
        assert v.segments[m["index"]].step_id == m["step"]
        if m["kind"] == "skip":
            assert v.meta["missing_steps"] == [m["skipped"]] and m["skipped"] not in v.path
        # the per-frame labels on disk play the recorded order
        labels = np.load(out / "labels" / f"{v.video_id}.npy")
        runs = [int(x) for j, x in enumerate(labels) if x and (j == 0 or labels[j - 1] != x)]
        assert runs == v.path
        spec = specs[v.task_id]
        action = spec.action(m["step"])
        if m["kind"] in ("order", "repeat") and action.kind == "place":
            # pixels at the object's place: an early step puts the object there during it (it was absent
            # before); a repeated place carries it in again, so the place empties at the repeat's start
            with av.open(str(out / "videos" / f"{v.video_id}.mp4")) as container:
                frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
            fps = v.meta["fps"]
            seg = v.segments[m["index"]]
            start, end = round(seg.start * fps), round(seg.end * fps)
            prev_end = round(v.segments[m["index"] - 1].end * fps) if m["index"] else 0
            patch = _patch(frames, action, frames.shape[1])
            before = np.median(patch[prev_end:start], axis=0)
            if m["kind"] == "order":
                after = np.median(patch[end:end + max(1, round(0.5 * fps))], axis=0)
                assert np.abs(after - before).max() > 25, (v.video_id, before, after)
            else:
                early = np.median(patch[start:start + max(1, (end - start) // 5)], axis=0)
                assert np.abs(early - before).max() > 25, (v.video_id, before, early)
            checked.add(m["kind"])
    assert checked == {"order", "repeat"}


def test_default_world_is_unchanged_by_the_option(tmp_path):
    """mistakes=0 writes byte for byte the world of before (no mistakes.json, same world.json)."""
    a, b = tmp_path / "a", tmp_path / "b"
    assert synth(a, "--seed", "5", "--videos", "2", "--workers", "1") == 0
    assert synth(b, "--seed", "5", "--videos", "2", "--workers", "1", "--mistakes", "0") == 0
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert not (a / "mistakes.json").exists() and "mistakes" not in json.loads((a / "world.json").read_text())
    for rel in files:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


@pytest.mark.parametrize("args, message", [(["--mistakes", "1.5"], "mistake probability"),
                                           (["--mistakes", "0.5", "--version", "2"], "version 1")])
def test_bad_mistake_options_are_user_errors(tmp_path, capsys, args, message):
    assert synth(tmp_path / "x", *args) != 0
    assert message in capsys.readouterr().err
    with pytest.raises(ProcvidError):
        syn.generate_world(tmp_path / "y", num_videos=1, mistakes=-0.1)


# ---------------------------------------------------------------------------- tools/bench_mistake.py part (c)


@pytest.fixture(scope="module")
def bench():
    from helpers import load_tool

    return load_tool("bench_mistake")


def test_bench_scores_grounded_steps_against_the_true_ones_up_to_the_mistake(bench):
    from procvid.data.procedures import StepSegment, VideoAnnotation

    v = VideoAnnotation("tea_0001", "tea", [StepSegment(1, 0, 4), StepSegment(3, 5, 8),
                                            StepSegment(2, 9, 12, ("Order Error",)), StepSegment(4, 13, 16)],
                        meta={"mistake": "order"})
    # the true path: cut after the mistake (index 2), the flags of the steps before it kept
    assert bench.synth_items(v, [0, 1, 1, 1]) == ([0, 0, 1], [0, 1, 1], [None, None, "order"])
    # grounded: step 1 found, step 3 missed, step 2 matched by overlap, a grounded 4 before the cut matches no
    # true step (a correct step, its flag a false alarm), the one after the cut is not scored
    spans = [(1, 0.5, 4.5), (4, 5.0, 7.0), (2, 8.5, 12.5), (4, 13.0, 16.0)]
    labels, flags, kinds = bench.synth_items(v, [0, 1, 1, 0], spans)
    assert labels == [0, 0, 1, 0] and flags == [0, 0, 1, 1] and kinds == [None, None, "order", None]
    clean = VideoAnnotation("tea_0002", "tea", [StepSegment(1, 0, 4), StepSegment(2, 5, 8)], meta={"mistake": "none"})
    # a grounded 2 where step 1 happened overlaps no true 2: the true 2 counts as missed (not flagged)
    assert bench.synth_items(clean, [1, 0], [(2, 0.0, 3.0), (1, 1.0, 4.0)]) == ([0, 0, 0], [0, 0, 1], [None] * 3)


def test_bench_grounding_grid_folders_and_inputs(bench, tmp_path):
    from procvid.data.procedures import StepSegment, VideoAnnotation

    folders = {bench.synth_steps_folder("w", g) for g in bench.GROUND_GRID}
    assert len(folders) == len(bench.GROUND_GRID)  # every setting its own outputs
    assert bench.synth_steps_folder("w", ("segments", "any", 80.0, 0.0, None)) == "w_steps_any_d80_c0"  # as before
    assert bench.synth_steps_folder("w", ("frames", "any", 80.0, 1.0, 0.5)) == "w_steps_frames_any_d80_c1_r0.5"

    class World:
        videos = [VideoAnnotation("tea_0001", "tea", [StepSegment(1, 0, 4)])]

    seg, = bench.synth_inputs(World, "segments", tmp_path / "s", tmp_path / "f")
    frames, = bench.synth_inputs(World, "frames", tmp_path / "s", tmp_path / "f")
    assert (seg.stem, seg.source, seg.task) == ("tea_0001", tmp_path / "s" / "tea_0001.segments.json", "tea")
    assert frames.source == tmp_path / "f" / "tea_0001.json"  # the feature sidecar: every frame a unit
    with pytest.raises(ValueError):
        bench.synth_inputs(World, "clips", tmp_path / "s", tmp_path / "f")


def test_bench_grounds_on_the_default_encoders_features_over_the_video_segments(bench, tmp_path, capsys):
    """`--tune --encoder default`: the same grid on the per-frame encoder's features; segments stay the sbd
    segments of the `video` features (the same 2 fps frames), and the outputs are those of its own folders."""
    from procvid.encoders import load_encoder
    from procvid.features import load_features
    from procvid.ground import ground_video

    world = tmp_path / "w"
    assert synth(world, "--mistakes", "0.5", "--seed", "13") == 0  # present: synth_prepare does not regenerate
    grid = [("segments", "any", 80.0, 0.0, None), ("frames", "any", 80.0, 1.0, 1.0)]
    dataset, grounded, _ = bench.synth_prepare(world, 13, grounding=grid, encoder="default")
    encoder = load_encoder("default")
    assert bench.synth_steps_folder(world, grid[0], "default") == f"{world}_steps_default_any_d80_c0"
    for setting in grid:
        assert (tmp_path / bench.synth_steps_folder(world, setting, "default")).is_dir()
        assert set(grounded[setting]) == {v.video_id for v in dataset.videos}
    for v in dataset.videos:
        Xd, td, meta = load_features(tmp_path / "w_features_default" / f"{v.video_id}.safetensors")
        _, tv, _ = load_features(tmp_path / "w_features_video" / f"{v.video_id}.safetensors")
        assert meta["encoder"] == encoder.id and np.allclose(td, tv)  # the frames the segments were cut on
        doc = grounded[grid[0]][v.video_id]
        assert doc["encoder"] == encoder.id and doc["features"].startswith(str(tmp_path / "w_features_default"))
        segments = json.loads((tmp_path / "w_segments_sbd" / f"{v.video_id}.segments.json").read_text())
        units = [(s["start_frame"], s["end_frame"]) for s in segments["segments"]]
        texts = encoder.encode_texts(list(dataset.tasks[v.task_id].texts().values()))
        expected = ground_video(Xd, td, texts, list(dataset.tasks[v.task_id].steps), units, "any", None, 80.0, 0.0)
        assert doc["path"] == expected.path
        assert grounded[grid[1]][v.video_id]["encoder"] == encoder.id
    with pytest.raises(ValueError):
        bench.synth_prepare(world, 13, grounding=grid, encoder="ViT-B-32")
    with pytest.raises(SystemExit):  # the held-out worlds are scored with the `video` choice only
        bench.main(["--part", "c", "--encoder", "default"])
    assert "--encoder: only with --tune" in capsys.readouterr().err
