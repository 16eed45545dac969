"""The report of a large run (procvid.report.html): above LIST_ALL_UP_TO videos a table per task,
histograms, a sample of full video sections and links, instead of one section per video."""

from __future__ import annotations

import json
import re

import networkx as nx
import pytest

from procvid.report.html import LIST_ALL_UP_TO, SAMPLE, _video_section, write_report
from procvid.segment.files import SegmentedVideo, load_segmented

# task -> (videos, duration of video i, key steps of video i); medians worked out by hand in the tests
TASKS = {"a": (60, lambda i: 10.0 + i, lambda i: i % 5 + 1),
         "b": (50, lambda i: 100.0 + i, lambda i: 2),
         "c": (40, lambda i: 5.0, lambda i: 7),
         None: (3, lambda i: 1000.0, lambda i: 1)}
NAMES = {"a": "make a", "b": "make b", "c": "make c"}


def _doc(duration: float, steps: int) -> dict:
    cut = duration / steps
    return {"format": "procvid-segments", "version": 1, "video": None, "features": None, "encoder": "enc",
            "method": "sbd", "timestamps": [0.0, duration / 2, duration],
            "segments": [{"start": k * cut, "end": (k + 1) * cut, "start_frame": k, "end_frame": k + 1}
                         for k in range(steps)]}


def _write_videos(folder, tasks=TASKS) -> list:
    """Tiny segments files for `tasks`, read back as procvid run reads them."""
    folder.mkdir(parents=True)
    task_of = {}
    for task, (n, duration, steps) in tasks.items():
        for i in range(n):
            stem = f"{task or 'x'}_{i:03d}"
            (folder / f"{stem}.segments.json").write_text(json.dumps(_doc(duration(i), steps(i))))
            task_of[stem] = task
    return load_segmented(folder, task_of.get)


@pytest.fixture
def run(tmp_path):
    """A 153-video run: segments, grounded paths (one empty), mistakes flagged in b, forecasts for c."""
    out = tmp_path / "out"
    videos = _write_videos(out / "segments")
    grounding = {v.stem: {"path": [] if v.stem == "a_000" else [1, 2], "order": "graph", "steps": []}
                 for v in videos if v.task == "a"}
    mistakes = {v.stem: {"flagged": int(v.stem < "b_010"), "flags": [int(v.stem < "b_010")], "steps": []}
                for v in videos if v.task == "b"}
    forecasts = {v.stem: {"video": v.stem, "at": 5.0, "at_end": True, "method": "latent", "task_source": "given",
                          "next": [{"step": 1, "text": "stir", "probability": 0.9}]} for v in videos if v.task == "c"}
    graphs = {t: {"name": name, "graph": nx.path_graph(["start", 1, "end"], create_using=nx.DiGraph), "videos": 3,
                  "source": "annotated step orders", "png": out / "graphs" / f"{t}.png", "scores": None}
              for t, name in NAMES.items()}
    return out, videos, dict(graphs=graphs, grounding=grounding, mistakes=mistakes, forecasts=forecasts)


def _shown(page: str) -> list[str]:
    return re.findall(r"<section class='card video'><h3>([^<\s]+)", page)


def test_large_run_page_has_task_table_sample_and_links(run):
    out, videos, stages = run
    (out / "steps").mkdir()
    (out / "mistakes").mkdir()  # a stage that wrote Parquet shards: its index is linked
    for name in ("mistakes-00000.parquet", "mistakes-index.parquet"):
        (out / "mistakes" / name).write_bytes(b"")
    page = write_report(out, videos, **stages).read_text()

    row = lambda *cells: "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
    assert row("a", "make a", 60, "39.5", 3, 59, 0, 0) in page
    assert row("b", "make b", 50, "124.5", 2, 0, 10, 0) in page
    assert row("c", "make c", 40, "5.0", 7, 0, 0, 40) in page
    assert row("(no task)", "", 3, "1000.0", 1, 0, 0, 0) in page
    assert row("all", "", 153, "46.0", 2, 59, 10, 40) in page
    assert "<th>key steps per video</th>" in page and "<th>video length (s)</th>" in page

    shown = _shown(page)
    assert len(shown) == SAMPLE == 48 and "<h2>Videos</h2>" not in page
    by_task = {t: [s for s in shown if s.startswith(f"{t or 'x'}_")] for t in TASKS}
    # 48 slots dealt over the 4 groups in turn: the 3 task-less videos, 15 of each task
    assert {t: len(s) for t, s in by_task.items()} == {"a": 15, "b": 15, "c": 15, None: 3}
    # evenly spaced over each task's videos in name order (every 4th of a's 60, from the 3rd)
    assert by_task["a"] == [f"a_{i:03d}" for i in range(2, 60, 4)]
    assert f"{SAMPLE} of 153 videos shown" in page
    assert "href='../segments/'" in page and "href='../steps/'" in page
    assert "href='../mistakes/mistakes-index.parquet'" in page and "Parquet shards, one row per video" in page
    assert "../forecast" not in page and "../features" not in page  # folders that do not exist


def test_sample_is_deterministic_and_prefers_drawn_timelines(run, tmp_path):
    out, videos, stages = run
    first = _shown(write_report(out, videos, **stages).read_text())
    again = _shown(write_report(tmp_path / "elsewhere", list(reversed(videos)), **stages).read_text())
    assert first == again

    drawn = [v for v in videos if v.stem.endswith("7")][:10]
    for v in drawn:
        v.timeline.write_bytes(b"")  # a timeline file drawn by `procvid run` (timelines: sample)
    page = write_report(out, videos, **stages).read_text()
    assert sorted(_shown(page)) == sorted(v.stem for v in drawn)
    assert "10 of 153 videos shown" in page


def test_rerun_rewrites_nothing(run):
    out, videos, stages = run
    path = write_report(out, videos, **stages)
    before = path.stat().st_mtime_ns
    write_report(out, videos, **stages)
    assert path.stat().st_mtime_ns == before


def test_page_size_does_not_grow_with_the_run(tmp_path):
    def page_for(copies: int) -> str:
        videos = [SegmentedVideo(f"{t}_{k:06d}", tmp_path / "segments" / f"{t}_{k:06d}.segments.json",
                                 _doc(30.0 + k % 90, 3 + k % 9), t) for t in "abc" for k in range(copies)]
        return write_report(tmp_path / f"out{copies}", videos).read_text()

    small, large = page_for(60), page_for(3000)
    assert len(_shown(large)) == SAMPLE
    assert len(large) < 1.2 * len(small)


@pytest.mark.parametrize("n", [10, LIST_ALL_UP_TO])
def test_small_run_lists_every_video_as_before(tmp_path, n):
    out = tmp_path / "out"
    videos = _write_videos(out / "segments", {"a": (n, lambda i: 20.0, lambda i: 4)})
    page = write_report(out, videos).read_text()
    assert len(_shown(page)) == n and "Videos by task" not in page and "A sample of videos" not in page
    report_dir = out / "report"
    assert "<h2>Videos</h2>" + "".join(_video_section(v, report_dir, None) for v in videos) in page


def test_one_more_video_switches_to_the_summary(tmp_path):
    out = tmp_path / "out"
    videos = _write_videos(out / "segments", {"a": (LIST_ALL_UP_TO + 1, lambda i: 20.0, lambda i: 4)})
    page = write_report(out, videos).read_text()
    assert "Videos by task" in page and len(_shown(page)) == SAMPLE


def test_failures_are_truncated_above_the_limit(tmp_path):
    out = tmp_path / "out"
    (out / "segments").mkdir(parents=True)
    (out / "segments" / "failures.jsonl").write_text("")
    failures = {f"bad_{i:04d}.mp4": f"reason {i}" for i in reversed(range(250))}
    page = write_report(out, [], failures=failures).read_text()
    assert "250 input(s) failed" in page
    rows = re.findall(r"<tr><td>(bad_\d+\.mp4)</td>", page)
    assert rows == [f"bad_{i:04d}.mp4" for i in range(LIST_ALL_UP_TO)]  # the first ones, in name order
    assert "... and 150 more (see <a href='../segments/failures.jsonl'>OUT/segments/failures.jsonl</a>)" in page

    failures = {f"bad_{i:04d}.mp4": "r" for i in range(LIST_ALL_UP_TO)}
    page = write_report(tmp_path / "out2", [], failures=failures).read_text()
    assert len(re.findall(r"<tr><td>bad_", page)) == LIST_ALL_UP_TO and "more (see" not in page
