"""SBD: the online surprise rule on given error curves, the predictor's causal receptive field, a
predictor trained briefly on piecewise-smooth sequences, checkpoint errors, and `procvid train sbd`."""

import json

import numpy as np
import pytest
import torch

from procvid import features
from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.paths import REPO_ROOT
from procvid.segment import get_detector
from procvid.segment.sbd import NextEmbeddingPredictor, surprise_boundaries

SBD_CFG = str(REPO_ROOT / "configs/train/sbd.yaml")
DEBUG_CFG = str(REPO_ROOT / "configs/trainer/debug.yaml")
LENGTHS = [20, 14, 25, 9, 18]
TRUE_BOUNDARIES = np.cumsum(LENGTHS)[:-1]


def steady_turns(lengths=LENGTHS, dim=16, seed=0, noise=0.002):
    """Unit embeddings that rotate steadily inside each segment, each segment in a new random
    direction and at its own speed: predictable from the past except at the boundaries."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=dim)
    x /= np.linalg.norm(x)
    frames = []
    for n in lengths:
        u = rng.normal(size=dim)
        u -= (u @ x) * x
        u /= np.linalg.norm(u)
        speed = rng.uniform(0.25, 0.4)  # radians per frame
        for i in range(1, n + 1):
            frames.append(np.cos(speed * i) * x + np.sin(speed * i) * u)
        x = frames[-1]
    X = np.asarray(frames) + noise * rng.normal(size=(len(frames), dim))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def trained_checkpoint(tmp_path_factory):
    """A predictor trained for 200 steps on fresh steady-turn sequences (a few seconds on a CPU)."""
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is much faster on busy cores
    net = NextEmbeddingPredictor(dim=16, window=4, width=32, layers=2, heads=2)
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3)
    for step in range(200):
        seqs = torch.from_numpy(np.stack([steady_turns([12, 12], seed=1000 * step + i) for i in range(32)]))
        loss = (1 - (net(seqs[:, :-1]) * seqs[:, 1:]).sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return net.save_pretrained(tmp_path_factory.mktemp("sbd"), "steady turns", encoder="test-encoder",
                               sampling={"fps": 1.0})


def test_rule_finds_jumps_above_the_segment_level_and_respects_min_length():
    rng = np.random.default_rng(0)
    errors = 0.01 + 0.002 * rng.standard_normal(100)
    errors[[30, 33, 60, 98]] = 0.2  # 33: too close to 30; 98: too close to the end
    b, s = surprise_boundaries(errors, gap=5, settle=1, threshold=3.0, min_jump=0.05, min_spread=0.001)
    assert b.tolist() == [30, 60]
    assert (s > 3.0).all()


def test_rule_uses_statistics_since_the_last_boundary():
    # A noisy first segment, a calm second one: a bump that is ordinary noise in the first
    # segment stands out once the statistics restart at the boundary.
    rng = np.random.default_rng(1)
    errors = np.concatenate([0.1 + 0.02 * rng.uniform(-1, 1, 50), 0.01 + 0.001 * rng.standard_normal(50)])
    errors[50] = 0.6
    errors[80] = 0.1
    b, _ = surprise_boundaries(errors, gap=5, settle=1, threshold=3.0, min_jump=0.05, min_spread=0.001)
    assert b.tolist() == [50, 80]
    # min_jump: the same bump is ignored if it must rise 0.2 above the segment's mean
    b, _ = surprise_boundaries(errors, gap=5, settle=1, threshold=3.0, min_jump=0.2, min_spread=0.001)
    assert b.tolist() == [50]


def test_rule_leaves_the_transient_after_a_boundary_out_of_the_statistics():
    errors = np.full(60, 0.01)
    errors[20] = 0.5
    errors[21:24] = 0.3  # the context still holds the previous segment
    errors[40] = 0.1
    kw = dict(gap=3, threshold=3.0, min_jump=0.05, min_spread=0.005)
    assert surprise_boundaries(errors, settle=3, **kw)[0].tolist() == [20, 40]
    assert surprise_boundaries(errors, settle=0, **kw)[0].tolist() == [20]  # the transient hides the bump


def test_rule_moves_a_boundary_to_the_peak_of_a_building_change():
    errors = np.full(60, 0.01)
    errors[20:24] = [0.1, 0.2, 0.5, 0.15]  # a change that builds up over four frames
    errors[45] = 0.4
    kw = dict(gap=3, settle=1, threshold=3.0, min_jump=0.05, min_spread=0.005)
    assert surprise_boundaries(errors, peak=0, **kw)[0].tolist() == [20, 45]  # where it starts
    assert surprise_boundaries(errors, peak=2, **kw)[0].tolist() == [22, 45]  # where it is steepest
    assert surprise_boundaries(errors, peak=1, **kw)[0].tolist() == [21, 45]  # looks only `peak` ahead
    # The search stops `gap` frames before the end: no segment shorter than the minimum there.
    errors = np.full(30, 0.01)
    errors[[24, 28]] = [0.3, 0.9]  # 28 is closer than gap to the end
    assert surprise_boundaries(errors, peak=4, **kw)[0].tolist() == [24]


def test_prediction_sees_exactly_its_receptive_field():
    torch.manual_seed(0)
    net = NextEmbeddingPredictor(dim=8, window=3, width=16, layers=2, heads=2).eval()
    for p in net.parameters():
        torch.nn.init.normal_(p, std=0.3)
    X = torch.nn.functional.normalize(torch.randn(40, 8), dim=-1)
    context = 2 * (3 - 1)  # layers * (window - 1)
    with torch.no_grad():
        full = net(X[None])[0]
        for t in (0, 3, 4, 25, 39):
            lo = max(0, t - context)
            assert torch.allclose(net(X[None, lo : t + 1])[0, -1], full[t], atol=1e-6)
        # one frame less of context changes the prediction: the field is not larger than needed
        assert not torch.allclose(net(X[None, 26 - context : 26])[0, -1], full[25], atol=1e-6)
        X2 = X.clone()
        X2[30:] = torch.nn.functional.normalize(torch.randn(10, 8), dim=-1)
        assert torch.allclose(net(X2[None])[0, :30], full[:30], atol=1e-6)  # causal


@pytest.mark.parametrize("seed", [100, 101, 102])
def test_trained_predictor_finds_direction_changes(trained_checkpoint, seed):
    X = steady_turns(seed=seed)
    t = np.arange(len(X), dtype=float)
    det = get_detector("sbd", checkpoint=str(trained_checkpoint), threshold=3.0, min_segment_s=4.0, min_jump=0.03,
                       min_spread=0.005)
    segs = det.detect(X, t)
    starts = np.array([s.start_frame for s in segs[1:]])
    assert len(starts) == len(TRUE_BOUNDARIES)
    assert np.abs(starts - TRUE_BOUNDARIES).max() <= 1
    known = det.detect(X, t, num_segments=len(LENGTHS))
    assert np.abs(np.array([s.start_frame for s in known[1:]]) - TRUE_BOUNDARIES).max() <= 1
    assert det.encoder == "test-encoder"


def test_predictor_error_is_low_inside_segments(trained_checkpoint):
    model = NextEmbeddingPredictor.from_pretrained(trained_checkpoint)
    X = torch.from_numpy(steady_turns(seed=7))
    with torch.no_grad():
        e = model.errors(X).numpy()
    inside = np.setdiff1d(np.arange(5, len(X)), np.concatenate([TRUE_BOUNDARIES + d for d in range(4)]))
    copy = 1 - (X[1:] * X[:-1]).sum(-1).numpy()
    assert e[TRUE_BOUNDARIES].min() > 5 * np.median(e[inside])
    assert np.median(e[inside]) < 0.3 * np.median(copy)  # it extrapolates the motion


def test_missing_checkpoint_and_wrong_dimension_are_clear_errors(tmp_path, trained_checkpoint):
    X, t = steady_turns(), np.arange(86.0)
    with pytest.raises(ProcvidError, match="checkpoint not found"):
        get_detector("sbd", checkpoint=str(tmp_path / "none")).detect(X, t)
    with pytest.raises(ProcvidError, match="features have 32 dims but the predictor expects 16"):
        get_detector("sbd", checkpoint=str(trained_checkpoint)).detect(np.tile(X, 2), t)
    # the weights file inside the folder names the folder; weights without our config are refused
    det = get_detector("sbd", checkpoint=str(trained_checkpoint / "model.safetensors"))
    assert det.encoder == "test-encoder" and det.input_dim == 16
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "model.safetensors").write_bytes((trained_checkpoint / "model.safetensors").read_bytes())
    with pytest.raises(ProcvidError, match="not a procvid model folder"):
        get_detector("sbd", checkpoint=str(lonely)).detect(X, t)


def test_train_sbd_fast_dev_run_exports_a_loadable_checkpoint(tmp_path):
    for v in range(4):
        X = steady_turns([15, 20, 15], dim=12, seed=v)
        features.write_entry(tmp_path / "feats", f"v{v}.mp4", X, np.arange(len(X)) * 0.5,
                             {"encoder": "enc-x", "source": f"v{v}.mp4"})
    out = tmp_path / "ck"
    main(["train", "sbd", "--config", SBD_CFG, "--config", DEBUG_CFG, "--data.world", "null", "--trainer.callbacks", "null",
          f"--data.features={tmp_path / 'feats'}", "--data.batch_size", "4", f"--model.export_dir={out}"])
    config = json.loads((out / "config.json").read_text())
    assert config["encoder"] == "enc-x" and config["architecture"]["dim"] == 12
    assert config["kind"] == "sbd-predictor" and config["domain"] == f"the footage of the features in {tmp_path / 'feats'}"
    X = steady_turns([15, 20, 15], dim=12, seed=9)
    assert len(get_detector("sbd", checkpoint=str(out)).detect(X, np.arange(50.0), num_segments=3)) == 3


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_trimmed_loss_leaves_the_largest_errors_out():
    """The training loss (training_step, as Lightning calls it) on a chunk whose frame-to-frame errors
    are known: a stand-in predictor that copies the last frame makes error k = 1 - cos(turn k)."""
    from procvid.train.sbd import SBDModule

    errors = np.array([0.3, 0.01, 1.9, 0.02, 0.03, 1.5])  # two boundary-like outliers
    angles = np.concatenate([[0.0], np.cumsum(np.arccos(1 - errors))])
    chunk = torch.tensor(np.stack([np.cos(angles), np.sin(angles)], axis=1), dtype=torch.float32)[None]

    def loss(trim):
        module = SBDModule(trim=trim)
        module.net = torch.nn.Identity()
        return module.training_step((chunk,), 0).item()

    assert loss(0.5) == pytest.approx(0.02, abs=1e-5)  # the 3 smallest of 6
    assert loss(1.0) == pytest.approx(errors.mean(), abs=1e-5)
    assert loss(0.01) == pytest.approx(0.01, abs=1e-5)  # at least one error kept
