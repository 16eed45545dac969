"""kcpd's "trend" cost (a straight line per segment) on constructed sequences with known change points,
and its exactness against brute force."""

import itertools
import json

import numpy as np
import pytest

from procvid.defaults import detector_params
from procvid.errors import ProcvidError
from procvid.segment import get_detector
from procvid.segment.baselines import _TrendCost, principal_scores, trend_change_points

PHASES = [("idle", 12), ("step", 20), ("idle", 6), ("step", 26), ("idle", 8), ("step", 18), ("idle", 10)]
TRUE_BOUNDARIES = np.cumsum([n for _, n in PHASES])[:-1]


def idle_and_steps(phases=PHASES, dim=64, noise=0.01, seed=0, move=0.15):
    """Like the synthetic world: the scene stands still in idle gaps and changes steadily during a step
    (a straight path to the next state, ``move`` away at right angles, so the rows stay near unit length
    and the path stays nearly straight after normalisation), with per-frame noise; unit rows."""
    rng = np.random.default_rng(seed)
    at = rng.normal(size=dim)
    at /= np.linalg.norm(at)
    frames = []
    for kind, n in phases:
        if kind == "idle":
            frames.append(np.repeat(at[None], n, axis=0))
            continue
        d = rng.normal(size=dim)
        d -= (d @ at) * at
        to = at + move * d / np.linalg.norm(d)
        to /= np.linalg.norm(to)
        frames.append(at + np.outer((np.arange(n) + 1) / n, to - at))
        at = to
    X = np.concatenate(frames) + noise * rng.normal(size=(sum(n for _, n in phases), dim)) / np.sqrt(dim)
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def line_rss(Y):
    """Least-squares residual of a line through each column of Y against the row index (reference)."""
    A = np.stack([np.ones(len(Y)), np.arange(len(Y), dtype=float)], axis=1)
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]
    return float(((Y - A @ coef) ** 2).sum())


def partition_cost(Y, bounds):
    edges = [0, *bounds, len(Y)]
    return sum(line_rss(Y[a:b]) for a, b in zip(edges[:-1], edges[1:]))


def starts(segments):
    return np.array([s.start_frame for s in segments[1:]], dtype=int)


def test_trend_cost_is_the_residual_of_a_least_squares_line():
    Y = np.random.default_rng(1).normal(size=(30, 3)).cumsum(axis=0)
    cost = _TrendCost(Y)
    for b in (2, 7, 30):
        a = np.arange(b)
        assert np.allclose(cost(a, b), [line_rss(Y[i:b]) for i in a], atol=1e-8)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_known_k_and_penalised_partitions_are_exact_optima(seed):
    rng = np.random.default_rng(seed)
    Y = rng.normal(size=(14, 2)).cumsum(axis=0)
    min_size = 2
    valid = lambda b: all(d >= min_size for d in np.diff([0, *b, len(Y)]))  # noqa: E731
    for k in (2, 3, 4):
        got = trend_change_points(Y, min_size, k, penalty=0.0)
        assert len(got) == k - 1 and valid(got)
        best = min(partition_cost(Y, c) for c in itertools.combinations(range(1, len(Y)), k - 1) if valid(c))
        assert partition_cost(Y, got) == pytest.approx(best, abs=1e-8)
    # Penalised (PELT with pruning) against every valid partition, at the penalty it derives itself.
    bend = Y[4:] - 2 * Y[2:-2] + Y[:-4]
    for penalty in (0.05, 0.5, 5.0):
        pen = penalty * np.median((bend**2).sum(axis=1)) / 6 * np.log(len(Y))
        got = trend_change_points(Y, min_size, None, penalty)
        assert valid(got)
        best = min(partition_cost(Y, c) + pen * len(c)
                   for r in range(len(Y) // min_size) for c in itertools.combinations(range(1, len(Y)), r) if valid(c))
        assert partition_cost(Y, got) + pen * len(got) == pytest.approx(best, abs=1e-8)


@pytest.mark.parametrize("known_k", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_trend_finds_where_each_step_starts_and_ends_within_one_frame(known_k, seed):
    X = idle_and_steps(seed=seed)
    t = np.arange(len(X)) * 0.5  # 2 fps
    det = get_detector("kcpd", cost="trend", min_segment_s=2.0, merge=0.0)
    segs = det.detect(X, t, num_segments=len(PHASES) if known_k else None)
    assert len(segs) == len(PHASES)
    assert np.abs(starts(segs) - TRUE_BOUNDARIES).max() <= 1
    assert segs[0].start_frame == 0 and segs[-1].end_frame == len(X)


def test_mean_cost_cuts_a_step_along_its_ramp_where_trend_does_not():
    # Why the cost exists: with K given, the constant-mean fit spends its cuts inside the ramps.
    X = idle_and_steps(seed=0)
    t = np.arange(len(X)) * 0.5
    mean = get_detector("kcpd", min_segment_s=2.0, merge=0.0).detect(X, t, num_segments=len(PHASES))
    trend = get_detector("kcpd", cost="trend", min_segment_s=2.0, merge=0.0).detect(X, t, num_segments=len(PHASES))
    assert np.abs(starts(mean) - TRUE_BOUNDARIES).max() > 3
    assert np.abs(starts(trend) - TRUE_BOUNDARIES).max() <= 1


def test_principal_scores_are_the_centred_svd_scores():
    rng = np.random.default_rng(0)
    for shape in ((40, 12), (12, 40)):  # both Gram matrices
        Z = rng.normal(size=shape)
        U, S, _ = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
        P = principal_scores(Z, 5)
        assert P.shape == (shape[0], 5)
        assert np.allclose(np.abs(P), np.abs(U[:, :5] * S[:5]), atol=1e-8)  # up to each column's sign
    assert principal_scores(rng.normal(size=(3, 8)), 16).shape == (3, 3)


def test_tuned_preset_for_the_real_encoder_uses_trend_and_round_trips():
    det = get_detector("kcpd", **detector_params("kcpd", "efficientnet-lite0"))
    assert det.cost == "trend"
    assert get_detector(**json.loads(json.dumps(det.to_dict()))) == det
    rng = np.random.default_rng(0)
    for T in (2, 3, 5, 9):  # short inputs: one segment or a valid tiling, never an error
        X = rng.normal(size=(T, 32))
        segs = det.detect(X, np.arange(T) * 0.5)
        assert segs[0].start_frame == 0 and segs[-1].end_frame == T
        assert len(det.detect(X, np.arange(T) * 0.5, num_segments=T)) == T


def test_trend_on_long_inputs_stays_on_the_pooled_grid():
    X = idle_and_steps([(k, 4 * n) for k, n in PHASES])  # 400 frames -> bins of 4 with max_frames 100
    t = np.arange(len(X)) * 0.5
    segs = get_detector("kcpd", cost="trend", min_segment_s=2.0, merge=0.0, max_frames=100).detect(X, t)
    assert all(s.start_frame % 4 == 0 for s in segs)
    assert np.abs(starts(segs) - 4 * TRUE_BOUNDARIES).max() <= 4


@pytest.mark.parametrize("params, message", [({"cost": "median"}, "cost must be one of mean, trend"),
                                             ({"components": 0}, "components must be a whole number"),
                                             ({"cost": 1}, "should be a str")])
def test_bad_cost_settings_are_one_line_errors(params, message):
    with pytest.raises(ProcvidError, match=message) as e:
        get_detector("kcpd", **params)
    assert "\n" not in str(e.value)
