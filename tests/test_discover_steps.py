"""The STEPs-style learned discovery method (procvid.discover.steps, procvid.train.discover): the
cues of the multi-cue loss on constructed videos, a short training run that makes the `steps` method
find known steps, and `procvid train discover` with fast_dev_run exporting a loadable model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from procvid.discover import BACKGROUND, get_discoverer
from procvid.paths import REPO_ROOT
from test_discover import ORDERS, constructed as _constructed


def constructed(**kw):
    """tests/test_discover.py's videos (three steps in three orders, idle gaps as background), with
    steps and gaps long enough for a temporal network's receptive field (7 frames here)."""
    return _constructed(**{"frames": 12, "gap_frames": 6, **kw})

DEBUG_CFG = str(REPO_ROOT / "configs/trainer/debug.yaml")
CFG = str(REPO_ROOT / "configs/train/discover.yaml")


def test_cross_video_positives_are_the_same_step_and_cycle_consistent():
    from procvid.train.discover import pad, positives

    videos, truth = constructed(orders=[(0, 1, 2), (2, 0, 1)], noise=0.0, gap=False)
    x, mask = pad([v.X for v in videos])
    z = torch.nn.functional.normalize(torch.randn(*x.shape[:2], 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    pos, keep = positives(z, x, mask, window=0, cycle=100, bootstrap=0.0)  # input features alone choose
    T = x.shape[1]
    labels = np.full(2 * T, -2)
    for b, tr in enumerate(truth):
        labels[b * T: b * T + len(tr)] = tr
    rows, cols = np.nonzero(pos.numpy())
    assert (rows // T != cols // T).all()  # window 0: cross-video partners only
    assert (labels[rows] == labels[cols]).all()  # of the same step
    assert keep.any(1)[mask.reshape(-1)].all()  # every real frame found a partner in the other video
    assert not pos[:, ~mask.reshape(-1)].any()  # never padding
    # temporal proximity: the frames within `window` in the same video, never the frame itself; a
    # partner brings its neighbours within `window` too
    wide, _ = positives(z, x, mask, window=1, cycle=100, bootstrap=0.0)
    assert wide[0, 1] and not wide[0, 0] and not wide[0, 2]
    assert (wide.sum(1) > pos.sum(1))[mask.reshape(-1)].all()
    # a strict cycle drops partners whose way back lands far away: identical frames of a step
    # send every anchor to the same partner, whose nearest frame back is the step's first frame only
    strict, _ = positives(z, x, mask, window=0, cycle=0, bootstrap=0.0)
    assert 0 < strict.sum() < pos.sum()


def _train(videos, steps=40, seed=0):
    from procvid.discover.steps import TemporalEmbedder
    from procvid.train.discover import multi_cue_loss, pad

    torch.manual_seed(seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: extra threads only wait on each other on a loaded machine
    net = TemporalEmbedder(videos[0].X.shape[1], dim=8, hidden=32, layers=2, dropout=0.0)  # 7 frames
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    x, mask = pad([v.X for v in videos])
    losses = []
    for step in range(steps):
        loss, _ = multi_cue_loss(net(x, mask), x, mask, bootstrap=0.5 * min(1, step / 20))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    torch.set_num_threads(threads)
    return net.eval(), losses


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(model folder, losses) of a short training run on the constructed videos (shared: it is the slow part)."""
    videos, _ = constructed()
    net, losses = _train(videos)
    folder = tmp_path_factory.mktemp("steps") / "m"
    net.save_pretrained(folder, "constructed", encoder="constructed")
    return folder, losses


@pytest.mark.parametrize("k", [3, None])
def test_steps_method_finds_the_three_shared_steps_after_training(trained, k):
    folder, losses = trained
    videos, truth = constructed()
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    result = get_discoverer("steps", model=str(folder)).discover(videos, num_steps=k)
    assert result.num_steps == 3 and result.method == "steps"
    mapping = {}
    for pred, true in zip(result.frame_labels(videos), truth):
        for p, t in zip(pred, true):
            if t == BACKGROUND:
                assert p == BACKGROUND
            else:
                assert mapping.setdefault(int(t), int(p)) == p
    assert sorted(mapping.values()) == [0, 1, 2]
    inverse = {v: k for k, v in mapping.items()}
    assert [[inverse[s] for s in p] for p in result.paths(videos)] == [list(o) for o in ORDERS]
    # prototypes live in the input space (key frames, names): each is its step's direction
    assert result.prototypes.shape == (3, videos[0].X.shape[1])
    assert all(int(np.argmax(result.prototypes[mapping[t]])) == t for t in range(3))


def test_steps_method_rejects_features_of_another_size(tmp_path):
    from procvid.errors import ProcvidError

    videos, _ = constructed()
    net, _ = _train(videos, steps=1)
    net.save_pretrained(tmp_path / "m", "constructed", encoder="constructed")
    wide, _ = constructed(dim=24)
    with pytest.raises(ProcvidError, match="16-d features"):
        get_discoverer("steps", model=str(tmp_path / "m")).discover(wide, 3)
    with pytest.raises(ProcvidError, match="no such model folder"):
        get_discoverer("steps", model=str(tmp_path / "missing")).discover(videos, 3)


def test_train_discover_fast_dev_run_exports_a_model_the_method_loads(tmp_path):
    from procvid.cli import main
    from procvid.features import write_entry

    for task in ("tea", "salad"):
        videos, _ = constructed(seed=len(task))
        for v in videos:
            write_entry(tmp_path / "features", f"{task}_{v.stem}", v.X, np.arange(len(v.X)) / 2.0,
                        {"encoder": "constructed"})
    out = tmp_path / "model"
    main(["train", "discover", "--config", CFG, "--config", DEBUG_CFG, "--data.world", "null",
          "--data.features", str(tmp_path / "features"), "--model.export_dir", str(out)])
    import json

    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "discover-temporal" and config["encoder"] == "constructed"
    assert config["architecture"]["in_dim"] == 16
    result = get_discoverer("steps", model=str(out)).discover(videos, 3)
    assert result.num_steps == 3


def test_discover_command_with_the_steps_method_and_a_model(trained, tmp_path, capsys):
    from procvid.cli import main
    from test_discover import _write_inputs

    folder, _ = trained
    videos, _ = constructed()
    _write_inputs(tmp_path, videos)
    out = tmp_path / "out"
    assert main(["discover", str(tmp_path / "seg"), "--out", str(out), "--no-progress", "--method", "steps",
                 "--model", str(folder), "--num-steps", "3"]) == 0
    import json

    doc = json.loads((out / "t.discovery.json").read_text())
    assert doc["method"] == "steps" and doc["params"]["model"] == str(folder) and doc["num_steps"] == 3
    assert all(len(p) == 3 for p in doc["paths"].values())
    assert (out / "graphs").is_dir()
    # a model for a method that takes none is one line, before any work
    assert main(["discover", str(tmp_path / "seg"), "--out", str(tmp_path / "o2"), "--model", str(folder)]) == 2
    assert "has no parameter 'model'" in capsys.readouterr().err
