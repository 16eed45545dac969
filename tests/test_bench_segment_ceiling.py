"""The supervised references of tools/bench_segment_ceiling.py: windows, stacking and peak scoring."""

from types import SimpleNamespace

import numpy as np
import pytest

from helpers import load_tool


@pytest.fixture(scope="module")
def ceiling():
    """tools/bench_segment_ceiling.py, a script, loaded by its file path (with its sibling bench_segment)."""
    return load_tool("bench_segment_ceiling", deps=("bench_segment",))


def test_windows_stay_inside_each_video(ceiling):
    np.testing.assert_array_equal(ceiling.neighbours(3, 2), [[0, 0, 0, 1, 2], [0, 0, 1, 2, 2], [0, 1, 2, 2, 2]])
    a = np.arange(3, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # video 1: rows 0..2
    b = 10 + np.arange(2, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # video 2: rows 3..4
    stacked = ceiling.Stacked([a, b], window=1)
    assert stacked.n == 5
    x = stacked(np.array([2, 3]))  # the last frame of video 1, the first of video 2
    np.testing.assert_array_equal(x.numpy(), [[1, 1, 2, 2, 2, 2], [10, 10, 10, 10, 11, 11]])


def test_pixel_windows_become_channels(ceiling):
    frames = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    x = ceiling.Stacked([frames], window=1)(np.array([1]))
    assert tuple(x.shape) == (1, 9, 8, 8)
    np.testing.assert_allclose(x[0, 3:6].numpy(), frames[1].transpose(2, 0, 1) / 255.0 - 0.5, atol=1e-6)


def test_peaks_above_threshold_are_scored_at_one_second(ceiling):
    t = np.arange(20) * 0.5
    video = SimpleNamespace(t=t, gt=[(2.0, 6.0, 1)])  # boundaries at 2 s and 6 s
    prob = np.zeros(20)
    prob[[4, 13]] = 0.9  # 2.0 s (right) and 6.5 s (within 1 s of 6 s)
    prob[8] = 0.3  # below the threshold
    assert ceiling.peaks_f1([video], [prob], 0.5) == (1.0, 1.0, 1.0)
    p, r, f1 = ceiling.peaks_f1([video], [prob], 0.2)
    assert (p, r) == (pytest.approx(2 / 3), 1.0)


def test_loading_a_tool_leaves_the_import_path_alone(ceiling):
    import sys

    from helpers import TOOLS

    assert ceiling.prepare is not None  # its sibling's names are bound
    assert str(TOOLS) not in sys.path and "bench_segment" not in sys.modules
