"""Boundary detectors on constructed embeddings whose boundaries are known."""

import json

import numpy as np
import pytest

from procvid.errors import ProcvidError
from procvid.registry import DETECTORS
from procvid.segment import Detector, Segment, get_detector

LENGTHS = [25, 40, 18, 33, 30, 22]
TRUE_BOUNDARIES = np.cumsum(LENGTHS)[:-1]  # first frame of segments 2..K
NAMES = ["uvd", "novelty", "kcpd", "uniform"]


def _unit(X):
    return X / np.linalg.norm(X, axis=-1, keepdims=True)


def piecewise_constant(lengths=LENGTHS, dim=512, noise=0.1, seed=0):
    """One random unit vector per step plus small per-frame noise."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(len(lengths), dim)))
    X = np.repeat(centres, lengths, axis=0) + noise * rng.normal(size=(sum(lengths), dim)) / np.sqrt(dim)
    return _unit(X)


def turning_phases(
    lengths=LENGTHS, dim=512, noise=0.1, seed=0, angle=np.deg2rad(120), turn=np.deg2rad(135)
):
    """UVD's setting: within a step the embedding rotates steadily (by ``angle``) towards the
    step's end state, so neighbouring frames are close; at a boundary the direction of motion
    turns by ``turn``, so the distance to the next subgoal peaks at the boundary."""
    rng = np.random.default_rng(seed)
    at = _unit(rng.normal(size=dim))
    heading = None  # unit tangent at the end of the previous step
    frames = []
    for n in lengths:
        r = rng.normal(size=dim)
        r -= (r @ at) * at
        if heading is not None:
            r -= (r @ heading) * heading
        r = _unit(r)
        u = r if heading is None else np.cos(turn) * heading + np.sin(turn) * r
        theta = (np.arange(n) + 1) / n * angle
        frames.append(np.cos(theta)[:, None] * at + np.sin(theta)[:, None] * u)
        heading = -np.sin(angle) * at + np.cos(angle) * u
        at = frames[-1][-1]
    X = np.concatenate(frames)
    return _unit(X + noise * rng.normal(size=X.shape) / np.sqrt(dim))


def starts(segments):
    return np.array([s.start_frame for s in segments[1:]], dtype=int)


def assert_tiling(segments, timestamps):
    T = len(timestamps)
    step = np.median(np.diff(timestamps))
    assert segments[0].start_frame == 0 and segments[-1].end_frame == T
    assert segments[0].score == 1.0
    for a, b in zip(segments, segments[1:]):
        assert a.end_frame == b.start_frame and a.end == b.start
    for s in segments:
        assert s.start_frame < s.end_frame
        assert s.start == timestamps[s.start_frame]
        expected_end = timestamps[s.end_frame] if s.end_frame < T else timestamps[-1] + step
        assert s.end == pytest.approx(expected_end)
        assert s.start_frame <= s.keyframe < s.end_frame
        assert np.isfinite(s.score)


@pytest.mark.parametrize("name", ["novelty", "kcpd"])
@pytest.mark.parametrize("known_k", [False, True])
def test_piecewise_constant_boundaries_recovered_within_one_frame(name, known_k):
    X = piecewise_constant()
    t = np.arange(len(X), dtype=float)
    segs = get_detector(name).detect(X, t, num_segments=len(LENGTHS) if known_k else None)
    assert len(segs) == len(LENGTHS)
    assert np.abs(starts(segs) - TRUE_BOUNDARIES).max() <= 1
    assert_tiling(segs, t)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("known_k", [False, True])
def test_uvd_recovers_subgoals_of_steadily_progressing_steps_within_one_frame(seed, known_k):
    X = turning_phases(seed=seed)
    t = np.arange(len(X), dtype=float)
    segs = get_detector("uvd").detect(X, t, num_segments=len(LENGTHS) if known_k else None)
    assert len(segs) == len(LENGTHS)
    assert np.abs(starts(segs) - TRUE_BOUNDARIES).max() <= 1
    assert_tiling(segs, t)
    # Each subgoal's score is the fall of the distance-to-goal over the following step: large here.
    assert min(s.score for s in segs[1:]) > 0.5


def _uvd_on_whole_prefixes(X, interval, sigma, min_shift):
    """UVD without the windowing shortcut: the full distance curve of every prefix."""
    from procvid.segment.base import smooth

    goal, bounds = len(X) - 1, []
    while True:
        curve = smooth(np.linalg.norm(X[:goal] - X[goal], axis=1), sigma)
        maxima = [p for p in range(1, goal - 1) if curve[p - 1] < curve[p] > curve[p + 1]]
        valid = [
            p for p in maxima
            if goal - p >= interval and p + 1 >= interval and curve[p] - curve[p:].min() >= min_shift
        ]
        if not valid:
            return bounds[::-1]
        goal = valid[-1]
        bounds.append(goal + 1)


@pytest.mark.parametrize(
    "sigma, interval, min_shift", [(0.0, 1, 0.0), (1.0, 3, 0.0), (2.5, 5, 0.05), (1.0, 2, 0.2)]
)
def test_uvd_windowed_search_equals_the_whole_prefix_computation(sigma, interval, min_shift):
    from procvid.segment.uvd import decompose

    X = piecewise_constant(lengths=[40, 60, 30, 70], dim=32, noise=2.0, seed=3)
    expected = _uvd_on_whole_prefixes(X, interval, sigma, min_shift)
    assert len(expected) > 3
    assert decompose(X.astype(np.float32), interval, sigma, min_shift)[0].tolist() == expected


def test_uvd_on_step_like_embeddings_finds_every_step_a_little_early():
    # Documented bias: with plateaus the latest maximum lies a few smoothing widths before the jump.
    X = piecewise_constant(noise=0.5)
    segs = get_detector("uvd").detect(X, np.arange(len(X), dtype=float))
    err = starts(segs) - TRUE_BOUNDARIES
    assert len(segs) == len(LENGTHS)
    assert (err <= 0).all() and (err >= -8).all()


def test_uniform_splits_equal_parts_and_uses_segment_length_when_k_unknown():
    X = piecewise_constant(lengths=[20] * 6)
    t = np.arange(120) * 0.5  # 2 fps, 60 s
    assert starts(get_detector("uniform").detect(X, t, num_segments=6)).tolist() == [20, 40, 60, 80, 100]
    segs = get_detector("uniform", segment_s=15.0).detect(X, t)
    assert [s.end - s.start for s in segs] == [15.0] * 4
    assert all(s.score == 0.0 for s in segs[1:])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("k", [1, 2, 6, 11])
def test_known_k_returns_exactly_k_tiling_segments(name, k):
    X = piecewise_constant()
    t = 3.0 + np.arange(len(X)) * 0.5  # offset start, 2 fps
    segs = get_detector(name).detect(X, t, num_segments=k)
    assert len(segs) == k
    assert_tiling(segs, t)


@pytest.mark.parametrize("name", NAMES)
def test_known_k_up_to_one_frame_per_segment_on_a_signal_without_structure(name):
    X = _unit(np.ones((12, 8)) + 1e-3 * np.random.default_rng(0).normal(size=(12, 8)))
    t = np.arange(12, dtype=float)
    for k in (4, 12):
        segs = get_detector(name).detect(X, t, num_segments=k)
        assert len(segs) == k
        assert_tiling(segs, t)


@pytest.mark.parametrize("name", ["uvd", "novelty", "kcpd"])
def test_unknown_k_on_a_constant_signal_gives_one_segment(name):
    X = piecewise_constant(lengths=[200], noise=0.1)
    t = np.arange(200, dtype=float)
    segs = get_detector(name).detect(X, t)
    assert len(segs) == 1
    assert_tiling(segs, t)


@pytest.mark.parametrize("name", ["novelty", "kcpd"])
def test_time_parameters_are_seconds_so_the_sampling_rate_does_not_matter(name):
    # The same 1 fps video sampled at 2 fps: boundaries land on the same times.
    X1 = piecewise_constant()
    X2 = np.repeat(X1, 2, axis=0)
    t1 = np.arange(len(X1), dtype=float)
    t2 = np.arange(len(X2)) * 0.5
    b1 = [s.start for s in get_detector(name).detect(X1, t1)[1:]]
    b2 = [s.start for s in get_detector(name).detect(X2, t2)[1:]]
    assert np.allclose(b1, b2, atol=1.0)


def test_kcpd_pools_long_inputs_and_stays_on_the_pooled_grid():
    X = piecewise_constant(lengths=[60, 90, 60, 90])
    t = np.arange(len(X), dtype=float)
    segs = get_detector("kcpd", max_frames=100).detect(X, t)  # 300 frames -> bins of 3
    assert np.abs(starts(segs) - np.array([60, 150, 210])).max() <= 2
    assert all(s.start_frame % 3 == 0 for s in segs)


def test_keyframe_is_the_frame_nearest_the_segment_mean():
    X = piecewise_constant(lengths=[5, 5], dim=16, noise=0.0)
    X[2] = _unit(X[2] + 0.5)  # an outlier cannot be the keyframe
    X[7] = _unit(X[7] + 0.5)
    segs = get_detector("uniform").detect(X, np.arange(10.0), num_segments=2)
    for s in segs:
        rows = X[s.start_frame : s.end_frame]
        mean = rows.mean(axis=0)
        assert s.keyframe == s.start_frame + int(np.argmax(rows @ mean))
        assert s.keyframe not in (2, 7)


@pytest.mark.parametrize("name", ["uvd", "novelty"])
def test_one_hour_at_one_fps_is_segmented_whole(name):
    """A long input (one hour at 1 fps, 120 true steps) is segmented end to end; its speed is measured
    by tools/bench_segment_speed.py, not here."""
    X = piecewise_constant(lengths=[30] * 120, noise=1.0).astype(np.float32)
    t = np.arange(len(X), dtype=float)
    segs = get_detector(name).detect(X, t)
    assert 60 <= len(segs) <= 240
    assert segs[0].start_frame == 0 and segs[-1].end_frame == len(X)
    assert all(a.end_frame == b.start_frame for a, b in zip(segs, segs[1:]))


@pytest.mark.parametrize(
    "X, t, k, message",
    [
        (np.ones(10), np.arange(10.0), None, "2-D"),
        (np.ones((1, 4)), np.arange(1.0), None, "at least 2 frames"),
        (np.full((5, 4), np.nan), np.arange(5.0), None, "NaN"),
        (np.zeros((5, 4)), np.arange(5.0), None, "all zeros"),
        (np.ones((5, 4)), np.arange(4.0), None, "shape (5,)"),
        (np.ones((5, 4)), np.array([0.0, 1, 1, 2, 3]), None, "strictly increasing"),
        (np.ones((5, 4)), np.array([0.0, 1, np.nan, 2, 3]), None, "NaN"),
        (np.ones((5, 4)), np.arange(5.0), 6, "between 1 and"),
        (np.ones((5, 4)), np.arange(5.0), 0, "between 1 and"),
        (np.ones((5, 4)), np.arange(5.0), 2.5, "integer"),
    ],
)
@pytest.mark.parametrize("name", NAMES)
def test_user_mistakes_raise_one_line_procvid_errors(name, X, t, k, message):
    with pytest.raises(ProcvidError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        get_detector(name).detect(X, t, num_segments=k)
    assert "\n" not in str(e.value)


def test_registry_names_parameters_and_json_round_trip():
    assert set(NAMES) <= set(DETECTORS.names())
    with pytest.raises(ProcvidError, match="unknown detector"):
        get_detector("nope")
    with pytest.raises(ProcvidError, match="unknown parameter"):
        get_detector("uvd", window_s=3)
    with pytest.raises(ProcvidError, match=">= 0"):
        get_detector("novelty", window_s=-1)
    for name in NAMES:
        det = get_detector(name)
        assert isinstance(det, Detector) and det.name == name
        d = json.loads(json.dumps(det.to_dict()))
        assert d["name"] == name
        assert get_detector(**d) == det
        assert type(det).from_dict(d) == det
    assert Detector.from_dict({"name": "uvd", "min_shift": 0.2}) == get_detector("uvd", min_shift=0.2)


def test_segment_json_round_trip():
    X = piecewise_constant()
    segs = get_detector("novelty").detect(X, np.arange(len(X), dtype=float))
    segs[0].label = "crack eggs"
    back = [Segment.from_dict(d) for d in json.loads(json.dumps([s.to_dict() for s in segs]))]
    assert back == segs
    assert "label" not in segs[1].to_dict()
    with pytest.raises(ProcvidError, match="invalid segment"):
        Segment.from_dict({"start": 0.0})
