"""Step discovery (procvid.discover): methods on constructed features with known answers, the
procedure-learning metrics on edge cases, and `procvid discover` end to end on constructed files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from procvid.discover import BACKGROUND, VideoUnits, get_discoverer
from procvid.metrics.procedure import pooled_scores, procedure_scores, step_scores

ORDERS = [(0, 1, 2), (1, 0, 2), (0, 2, 1)]  # three videos, the three steps in different orders


def constructed(orders=ORDERS, dim=16, frames=6, noise=0.02, seed=0, gap=True, gap_frames=3):
    """Videos whose steps are well-separated directions; an idle (background) direction between steps."""
    rng = np.random.default_rng(seed)
    dirs = np.eye(dim)[:4]  # steps 0..2, background 3
    videos, truth = [], []
    for i, order in enumerate(orders):
        blocks, units, labels, at = [], [], [], 0
        for j, s in enumerate(order):
            if gap and j:
                blocks.append(np.repeat(dirs[[3]], gap_frames, 0))
                units.append((at, at + gap_frames))
                labels += [BACKGROUND] * gap_frames
                at += gap_frames
            n = frames + i  # lengths differ by video
            blocks.append(np.repeat(dirs[[s]], n, 0))
            units.append((at, at + n))
            labels += [s] * n
            at += n
        X = np.vstack(blocks) + noise * rng.standard_normal((at, dim))
        videos.append(VideoUnits(f"t_{i}", X.astype(np.float32), units))
        truth.append(np.array(labels))
    return videos, truth


@pytest.mark.parametrize("method", ["order-kmeans", "agglomerative"])
@pytest.mark.parametrize("k", [3, None])
def test_methods_find_the_three_shared_steps_in_each_order(method, k):
    videos, truth = constructed()
    result = get_discoverer(method).discover(videos, num_steps=k)
    assert result.num_steps == 3
    if k is None:
        assert result.k_choice["rule"] == "silhouette" and "why" in result.k_choice
    # each true step maps to one discovered step, the same in every video; gaps are background
    frames = result.frame_labels(videos)
    mapping = {}
    for pred, true in zip(frames, truth):
        for p, t in zip(pred, true):
            if t == BACKGROUND:
                assert p == BACKGROUND
            else:
                assert mapping.setdefault(int(t), int(p)) == p
    assert sorted(mapping.values()) == [0, 1, 2]
    paths = result.paths(videos)
    assert [[{v: k for k, v in mapping.items()}[s] for s in p] for p in paths] == [list(o) for o in ORDERS]
    assert procedure_scores(frames, truth).f1 == pytest.approx(1.0)
    assert np.allclose(np.linalg.norm(result.prototypes, axis=1), 1.0)


def test_once_per_video_prior_keeps_one_run_per_step():
    """A step shown twice, apart, in one video keeps one run; the other becomes background or another step."""
    videos, _ = constructed(orders=[(0, 1, 2), (0, 1, 2), (0, 1, 2, 0)], gap=False)
    result = get_discoverer("order-kmeans").discover(videos, 3)
    for path in result.paths(videos):
        assert len(path) == len(set(path))


def test_metrics_edge_cases():
    true = np.array([-1, 0, 0, 1, 1, -1])
    # perfect, with arbitrary predicted ids
    assert step_scores(np.array([-1, 5, 5, 7, 7, -1]), true) == [(1.0, 1.0, 1.0), (1.0, 1.0, 1.0)]
    # no predicted step at all: everything background -> the steps score 0
    s = procedure_scores([np.full(6, -1)], [true])
    assert (s.precision, s.recall, s.iou, s.f1) == (0.0, 0.0, 0.0, 0.0)
    # all background in the truth: nothing to recall, the video is left out
    s = procedure_scores([np.array([0, 0, 1, 1, 2, 2])], [np.full(6, -1)])
    assert s.videos == 0 and s.f1 == 0.0
    # more predicted than true steps: the extra ones match nothing; step 0 is split in two
    rows = step_scores(np.array([-1, 0, 3, 1, 1, -1]), true)
    assert rows[0] == (1.0, 0.5, 0.5) and rows[1] == (1.0, 1.0, 1.0)
    s = procedure_scores([np.array([-1, 0, 3, 1, 1, -1])], [true])
    assert s.precision == 1.0 and s.recall == 0.75 and s.f1 == pytest.approx(2 * 0.75 / 1.75)
    # pooled: one matching over both videos' frames
    assert pooled_scores([true, true], [true, true]).f1 == 1.0
    with pytest.raises(ValueError):
        step_scores(np.zeros(3), np.zeros(4))


def _write_inputs(root, videos):
    from procvid.features import write_entry

    (root / "seg").mkdir(parents=True)
    for v in videos:
        t = np.arange(len(v.X)) * 0.5
        sidecar = write_entry(root / "features", v.stem, v.X, t, {"encoder": "constructed"})
        segments = [{"start": t[a], "end": t[b - 1] + 0.5, "start_frame": a, "end_frame": b, "score": 1.0,
                     "keyframe": a} for a, b in v.units]
        (root / "seg" / f"{v.stem}.segments.json").write_text(json.dumps(
            {"format": "procvid-segments", "version": 1, "features": str(sidecar), "timestamps": t.tolist(),
             "segments": segments}))


def test_discover_command_end_to_end(tmp_path, capsys):
    from procvid.cli import main
    from procvid.discover.stage import read_prototypes
    from procvid.graph.export import read_json

    videos, _ = constructed()
    other, _ = constructed(orders=[(2, 1, 0), (2, 1, 0)], seed=1)
    for v in other:
        v.stem = v.stem.replace("t_", "u_")
    _write_inputs(tmp_path, videos + other)
    (tmp_path / "task_of.csv").write_text("stem,task\n" + "".join(f"{v.stem},{v.stem[0]}\n" for v in videos + other))
    out = tmp_path / "out"
    assert main(["discover", str(tmp_path / "seg"), "--out", str(out), "--no-progress", "--task-of",
                 str(tmp_path / "task_of.csv")]) == 0
    doc = json.loads((out / "t.discovery.json").read_text())
    assert doc["num_steps"] == 3 and doc["k_choice"]["rule"] == "silhouette" and doc["k_choice"]["why"]
    assert sorted(doc["paths"]) == ["t_0", "t_1", "t_2"]
    assert all(len(p) == 3 for p in doc["paths"].values())
    assert all(len(s["members"]) == 3 for s in doc["steps"])  # each step in every video
    assert read_prototypes(out / "t.prototypes.safetensors").shape == (3, 16)
    graph = read_json(out / "graphs" / "t.json")
    assert {n for n in graph.nodes if n not in ("START", "END")} == {0, 1, 2}
    u = json.loads((out / "u.discovery.json").read_text())
    assert list(map(len, u["paths"].values())) == [3, 3]
    assert "t: 3 steps in 3 videos" in capsys.readouterr().out
    # a rerun rewrites nothing
    before = (out / "t.discovery.json").stat().st_mtime_ns
    assert main(["discover", str(tmp_path / "seg"), "--out", str(out), "--no-progress", "--task-of",
                 str(tmp_path / "task_of.csv"), "--num-steps", "auto"]) == 0
    assert (out / "t.discovery.json").stat().st_mtime_ns == before
    # K given; the other method; a bad K is one line and exit 2
    assert main(["discover", str(tmp_path / "seg"), "--out", str(tmp_path / "o2"), "--no-progress",
                 "--num-steps", "3", "--method", "agglomerative"]) == 0
    assert json.loads((tmp_path / "o2" / "t.discovery.json").read_text())["k_choice"]["rule"] == "given"
    assert main(["discover", str(tmp_path / "seg"), "--out", str(tmp_path / "o3"), "--num-steps", "zero"]) == 2
