"""The browsable report of `procvid run`: one static HTML page with relative links to the
timelines, key frames and graph pictures the stages wrote (open OUT/report/index.html).

Up to LIST_ALL_UP_TO videos it shows every video; above, a summary whose size does not grow with the
run: a table per task, histograms of key steps and length, full sections for a sample of SAMPLE
videos and links to the per-stage folders holding every video's results."""

from __future__ import annotations

import heapq
import html
import os
import statistics
from pathlib import Path

from procvid.outputs import atomic_write, prepare_output_dir

LIST_ALL_UP_TO = 100  # up to this many videos (failures, tasks) the page lists every one; above: a summary
SAMPLE = 48  # above LIST_ALL_UP_TO videos: full sections for at most this many
RESULT_DIRS = ("segments", "steps", "mistakes", "forecast", "features")  # per-video results, linked
FAILURE_DIRS = ("segments", "steps", "forecast")  # the stages whose failures.jsonl the pipeline reports
NO_TASK = "(no task)"


STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2933; background: #fafafa; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #d9e2ec; padding-bottom: 4px; margin-top: 36px; }
section.card { background: white; border: 1px solid #d9e2ec; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
img.timeline, img.graph, img.sheet { max-width: 100%; border: 1px solid #eee; }
ol.grounded { columns: 2; font-size: 14px; }
.keyframes img { height: 72px; margin: 2px; border: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
.muted { color: #829ab1; }
.missing, .alert { color: #b00020; font-weight: bold; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 0 16px; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fill, minmax(640px, 1fr)); gap: 0 16px; }
section.task table { font-size: 13px; }
"""


# A moved or deleted output shows up as a red note instead of a silently broken image.
FLAG_MISSING = """
for (const img of document.images) {
  const flag = () => { const s = document.createElement('span'); s.className = 'missing';
    s.textContent = 'missing image: ' + img.getAttribute('src'); img.replaceWith(s); };
  if (img.complete && img.naturalWidth === 0) flag(); else img.addEventListener('error', flag);
}
"""


def _rel(path: Path, start: Path) -> str:
    return html.escape(Path(os.path.relpath(path, start)).as_posix())


def _table(rows: list[list[str]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _segmentation_summary(segmentation: dict) -> str:
    rows = [[label, s["num_videos"], f"{s['boundary_f1']:.2f}", f"{s['mof']:.1f}", f"{s['f1@10']:.1f}",
             f"{s['f1@25']:.1f}", f"{s['f1@50']:.1f}", f"{s['edit']:.1f}"] for label, s in segmentation.items()]
    header = ["method", "videos", "boundary F1 (±1 s)", "MoF", "F1@10", "F1@25", "F1@50", "Edit"]
    return "<h2>Key-step segmentation against ground truth</h2>" + _table(rows, header)


def _grounding_summary(scores: dict) -> str:
    rows = [[scores["videos"], f"{scores['path_accuracy']:.1f}", f"{scores['exact']:.1f}",
             f"{scores['frame_accuracy']:.1f}"]]
    header = ["videos", "step order accuracy (1 - edit distance)", "exact step paths %", "frame accuracy %"]
    return "<h2>Grounded steps against ground truth</h2>" + _table(rows, header)


def _task_section(task_id: str, info: dict, report_dir: Path) -> str:
    g = info["graph"].graph
    rows = [["built from", f"{info['videos']} videos' {info['source']}"],
            ["steps", info["graph"].number_of_nodes() - 2], ["edges", info["graph"].number_of_edges()],
            ["optional steps", ", ".join(map(str, g.get("optional", []))) or "none"],
            ["interchangeable pairs", ", ".join(f"{a}↔{b}" for a, b in g.get("interchangeable", [])) or "none"]]
    if info["scores"] is not None:
        s = info["scores"]
        rows.append(["against the true graph", f"P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f}"])
    return (f"<section class='card task' id='task-{html.escape(task_id)}'><h3>{html.escape(info['name'])} "
            f"<span class='muted'>({html.escape(task_id)})</span></h3>"
            f"<a href='{_rel(info['png'], report_dir)}'><img class='graph' src='{_rel(info['png'], report_dir)}' "
            f"alt='graph script of {html.escape(task_id)}'></a>"
            f"{_table(rows, ['graph script', ''])}</section>")


def _generation_section(task_id: str, info: dict, report_dir: Path) -> str:
    steps = html.escape(" → ".join(info["steps"]))  # also in the sheet's captions; here for search and copy
    return (f"<section class='card generation'><h3>{html.escape(info['name'])} "
            f"<span class='muted'>({html.escape(task_id)})</span></h3>"
            f"<a href='{_rel(info['html'], report_dir)}'>"
            f"<img class='sheet' src='{_rel(info['contact_sheet'], report_dir)}' "
            f"alt='generated key steps of {html.escape(task_id)}' title='{steps}'></a>"
            f"<p class='muted'>images by {html.escape(str(info.get('kig')))}</p></section>")


def _mistakes_summary(mistakes: dict) -> str:
    """One line counting the flagged steps of the checked videos, by reason."""
    from collections import Counter

    reasons = Counter(s["reason"] for doc in mistakes.values() for s in doc["steps"] if s["flag"])
    videos = sum(1 for doc in mistakes.values() if doc["flagged"])
    detail = ", ".join(f"{n} {reason}" for reason, n in reasons.most_common())
    return (f"<h2>Mistakes</h2><p class='mistakes-summary'>{sum(reasons.values())} flagged step(s) in {videos} of "
            f"{len(mistakes)} checked video(s){': ' + html.escape(detail) if detail else ''} <span class='muted'>"
            "(each grounded step checked online against its task's graph script)</span></p>")


def _flagged_steps(doc: dict) -> str:
    rows = [[s["index"] + 1, s["text"], s["reason"] + (": " + ", ".join(s["names"]) if s["names"] else ""),
             "" if s.get("start") is None else f"{s['start']:.1f}–{s['end']:.1f} s"]
            for s in doc["steps"] if s["flag"]]
    if not rows:
        return "<p class='muted'>no step flagged as a mistake</p>"
    return "<p class='alert'>flagged steps:</p>" + _table(rows, ["#", "step", "reason", "time"])


def _discovery_section(task_id: str, doc: dict, folder: Path, report_dir: Path) -> str:
    rows = []
    for step in doc["steps"]:
        frames = "".join(f"<img src='{_rel(folder / k, report_dir)}'>" for k in step.get("keyframes", []))
        label = html.escape(step.get("name") or step["text"])
        rows.append(f"<tr><td>{label}</td><td>{step['videos']} videos</td><td class='keyframes'>{frames}</td></tr>")
    why = html.escape(doc.get("k_choice", {}).get("why", ""))
    return (f"<section class='card discovery'><h3>{html.escape(task_id)} <span class='muted'>{len(doc['steps'])} "
            f"steps in {len(doc['videos'])} videos; {why}</span></h3><table>{''.join(rows)}</table></section>")


def _video_section(video, report_dir: Path, grounded: dict | None, mistakes: dict | None = None,
                   forecast: dict | None = None) -> str:
    doc = video.doc
    timeline = video.timeline
    thumbs = "".join(
        f"<img src='{_rel(video.folder / s['thumbnail'], report_dir)}' "
        f"title='{s['start']:.1f}-{s['end']:.1f} s'>"
        for s in doc["segments"] if s.get("thumbnail"))
    parts = [f"<section class='card video'><h3>{html.escape(video.stem)}"
             + (f" <span class='muted'>task {html.escape(video.task)}</span>" if video.task else "") + "</h3>",
             f"<p>{len(doc['segments'])} key steps by {html.escape(doc['method'])}; "
             f"{len(doc['timestamps'])} frames embedded with {html.escape(doc.get('encoder') or '?')}</p>"]
    if timeline.exists():
        parts.append(f"<img class='timeline' src='{_rel(timeline, report_dir)}' "
                     f"alt='timeline of {html.escape(video.stem)}'>")
    if forecast is not None:  # under the timeline: the top next steps as bars
        from procvid.forecast.stage import forecast_strip

        parts.append(forecast_strip(forecast))
    if thumbs:
        parts.append(f"<div class='keyframes'>{thumbs}</div>")
    if grounded is not None:
        items = "".join(f"<li>{html.escape(s['text'])} <span class='muted'>{s['start']:.1f}–{s['end']:.1f} s"
                        "</span></li>" for s in grounded["steps"])
        parts.append(f"<p>grounded steps ({html.escape(grounded['order'])} order):</p>"
                     + (f"<ol class='grounded'>{items}</ol>" if items else "<p class='muted'>none</p>"))
    if mistakes is not None:
        parts.append(_flagged_steps(mistakes))
    return "".join(parts) + "</section>"


def _failures_section(failures: dict, out: Path, report_dir: Path) -> str:
    """The failed inputs; above LIST_ALL_UP_TO the first ones (in name order) and links to the stages' lists."""
    head = f"<h2 class='alert'>{len(failures)} input(s) failed</h2>"
    if len(failures) <= LIST_ALL_UP_TO:
        return head + _table([[item, reason] for item, reason in sorted(failures.items())], ["input", "reason"])
    from procvid.batch import FAILURES_FILE

    first = heapq.nsmallest(LIST_ALL_UP_TO, failures.items())  # O(failures), unlike sorting them all
    files = [out / d / FAILURES_FILE for d in FAILURE_DIRS if (out / d / FAILURES_FILE).exists()]
    where = " and ".join(f"<a href='{_rel(f, report_dir)}'>OUT/{html.escape(f.relative_to(out).as_posix())}</a>"
                         for f in files) or "the stages' failures.jsonl files"
    return (head + _table([[item, reason] for item, reason in first], ["input", "reason"])
            + f"<p class='alert'>... and {len(failures) - len(first)} more (see {where})</p>")


def _task_key(task) -> tuple:
    return (task is None, "" if task is None else str(task))  # "(no task)" last


def _duration(video) -> float:
    times = video.doc["timestamps"]
    return float(times[-1]) if len(times) else 0.0


def _median(values: list, fmt: str = ".1f") -> str:
    return format(statistics.median(values), fmt) if values else "–"


def _task_table(videos: list, graphs: dict, grounding: dict, mistakes: dict, forecasts: dict) -> str:
    """One row per task (the LIST_ALL_UP_TO largest; the rest in one row) and a totals row."""
    stats: dict = {}  # task -> [durations, key steps, grounded, flagged, forecasts]
    for v in videos:
        s = stats.setdefault(v.task, [[], [], 0, 0, 0])
        s[0].append(_duration(v))
        s[1].append(len(v.doc["segments"]))
        s[2] += bool((grounding.get(v.stem) or {}).get("path"))
        s[3] += bool((mistakes.get(v.stem) or {}).get("flagged"))
        s[4] += v.stem in forecasts

    def row(label, name, group):
        durations = [d for s in group for d in s[0]]
        steps = [k for s in group for k in s[1]]
        return [label, name, len(durations), _median(durations), _median(steps, "g"),
                *(sum(s[i] for s in group) for i in (2, 3, 4))]

    tasks = sorted(stats, key=_task_key)
    if len(tasks) > LIST_ALL_UP_TO:  # keep the page bounded: the largest tasks, the rest summed up
        shown = set(heapq.nlargest(LIST_ALL_UP_TO, tasks, key=lambda t: len(stats[t][0])))
        rest = [t for t in tasks if t not in shown]
        tasks = [t for t in tasks if t in shown]
    else:
        rest = []
    rows = [row(NO_TASK if t is None else t, "" if t is None else (graphs.get(t) or {}).get("name", ""), [stats[t]])
            for t in tasks]
    if rest:
        rows.append(row(f"{len(rest)} other tasks", "", [stats[t] for t in rest]))
    rows.append(row("all", "", list(stats.values())))
    header = ["task", "name", "videos", "median duration (s)", "median key steps per video",
              "with a grounded step path", "with flagged mistakes", "forecasts made"]
    return "<h2>Videos by task</h2>" + _table(rows, header)


def _nice_width(span: float, bins: int) -> float:
    """The smallest of 1, 2, 5 x 10^k that covers `span` in at most `bins` bins."""
    step = 10.0 ** int(f"{max(span, 1e-9) / bins:e}".split("e")[1])
    for m in (1, 2, 5, 10):
        if span / (m * step) <= bins:
            return m * step
    return 10 * step


def _histogram(values: list, what: str, integers: bool, bins: int = 15) -> str:
    """Counts of `values` in at most about `bins` bins, as a table with bars (O(values), nothing drawn per video)."""
    if not values:
        return ""
    low, high = min(values), max(values)
    width = 1 if integers and high - low < bins else _nice_width(high - low or 1, bins)
    if integers:
        width = max(1, int(round(width)))
    start = (low // width) * width
    counts: dict = {}
    for x in values:
        i = int((x - start) // width)
        counts[i] = counts.get(i, 0) + 1
    most = max(counts.values())
    rows = []
    for i in range(max(counts) + 1):
        a = start + i * width
        if integers:
            label = f"{a:g}" if width == 1 else f"{a:g}–{a + width - 1:g}"
        else:
            label = f"{a:g}–{a + width:g}"
        n = counts.get(i, 0)
        bar = f"display:inline-block;height:10px;background:#486581;width:{round(200 * n / most)}px"
        rows.append(f"<tr><td>{label}</td><td>{n}</td><td><span style='{bar}'></span></td></tr>")
    return (f"<table class='histogram'><tr><th>{html.escape(what)}</th><th>videos</th><th></th></tr>"
            f"{''.join(rows)}</table>")


def _spread(videos: list, n: int = SAMPLE) -> list:
    """At most `n` videos spread over the tasks: slots dealt to the tasks in turn, each task's slots evenly
    spaced over its videos in name order (deterministic). Returned grouped by task, in name order."""
    by_task: dict = {}
    for v in videos:
        by_task.setdefault(v.task, []).append(v)
    groups = [sorted(by_task[t], key=lambda v: v.stem) for t in sorted(by_task, key=_task_key)]
    quota, left = [0] * len(groups), n
    while left and any(q < len(g) for q, g in zip(quota, groups)):
        for i, g in enumerate(groups):
            if left and quota[i] < len(g):
                quota[i] += 1
                left -= 1
    return [g[(2 * j + 1) * len(g) // (2 * q)] for g, q in zip(groups, quota) for j in range(q)]


def _result_links(out: Path, report_dir: Path) -> str:
    """Links to the per-stage output folders under OUT (a Parquet index where a stage wrote shards)."""
    links = []
    for name in RESULT_DIRS:
        folder = out / name
        if not folder.is_dir():
            continue
        index = sorted(folder.glob("*-index.parquet"))
        if index:
            links.append(f"<a href='{_rel(index[0], report_dir)}'>{html.escape(name)}/{html.escape(index[0].name)}</a>"
                         " (Parquet shards, one row per video)")
        else:
            links.append(f"<a href='{_rel(folder, report_dir)}/'>{html.escape(name)}/</a>")
    return ", ".join(links) or "no per-stage folder under OUT"


def _run_overview(videos: list, graphs: dict, grounding: dict, mistakes: dict, forecasts: dict) -> str:
    """The videos of a large run in aggregate: a table per task and histograms."""
    return "".join([_task_table(videos, graphs, grounding, mistakes, forecasts),
                    "<h2>Key steps and length</h2><div class='grid' style='align-items: start'>",
                    _histogram([len(v.doc["segments"]) for v in videos], "key steps per video", integers=True),
                    _histogram([_duration(v) for v in videos], "video length (s)", integers=False), "</div>"])


def _sample_section(out: Path, report_dir: Path, videos: list, grounding: dict, mistakes: dict,
                    forecasts: dict) -> str:
    """Full sections for a sample of a large run's videos, and links to all the per-video results."""
    drawn = [v for v in videos if v.timeline.exists()]
    sample = _spread(drawn or videos)
    how = ("the videos with a timeline drawn" if drawn and len(drawn) <= SAMPLE else "spread over the tasks"
           + (f", among the {len(drawn)} videos with a timeline drawn" if drawn else ""))
    parts = [f"<h2>A sample of videos</h2><p class='sample'>{len(sample)} of {len(videos)} videos shown "
             f"<span class='muted'>({how})</span>; all per-video results are in: {_result_links(out, report_dir)}</p>"]
    parts += [_video_section(v, report_dir, grounding.get(v.stem), mistakes.get(v.stem), forecasts.get(v.stem))
              for v in sample]
    return "".join(parts)


def write_report(out: Path, videos: list, graphs: dict | None = None,
                 segmentation: dict | None = None, grounding: dict | None = None, generation: dict | None = None,
                 grounding_scores: dict | None = None, failures: dict | None = None, skipped: list | None = None,
                 warnings: list | None = None, mistakes: dict | None = None, discovered: dict | None = None,
                 forecasts: dict | None = None) -> Path:
    """Write OUT/report/index.html from the stage outputs under OUT (procvid.pipeline); `failures`:
    input -> reason, for the inputs some stage could not process."""
    out = Path(out)
    report_dir = prepare_output_dir(out / "report")
    grounding = grounding or {}
    body = [f"<h1>procvid report</h1><p class='muted'>{len(videos)} videos"
            + (f", {len(graphs)} tasks" if graphs else "") + "</p>"]
    for line in warnings or []:
        body.append(f"<p class='alert'>warning: {html.escape(line)}</p>")
    if skipped:
        body.append("<h2>Not done in this run</h2>" + _table(
            [[what, why, flag] for what, why, flag in skipped], ["what", "why", "to get it"]))
    if failures:
        body.append(_failures_section(failures, out, report_dir))
    if segmentation:
        body.append(_segmentation_summary(segmentation))
    if grounding_scores:
        body.append(_grounding_summary(grounding_scores))
    if mistakes:
        body.append(_mistakes_summary(mistakes))
    large = len(videos) > LIST_ALL_UP_TO  # then aggregates up here, a sample of videos below
    if large:
        body.append(_run_overview(videos, graphs or {}, grounding, mistakes or {}, forecasts or {}))
    if discovered:
        body.append("<h2>Discovered steps</h2><p class='muted'>Steps the videos of each task share, found "
                    "without labels (procvid discover); each row: a step and its most typical key frames.</p>")
        body += [_discovery_section(t, doc, out / "discover", report_dir) for t, doc in discovered.items()]
    if graphs:
        body.append("<h2>Graph scripts per task</h2><div class='grid'>")
        body += [_task_section(t, info, report_dir) for t, info in graphs.items()]
        body.append("</div>")
    if generation:
        body.append("<h2>Key-step generation examples</h2><p class='muted'>From the first frame of each task's "
                    "first video, a plan decoded from the task's graph script and one generated image per key "
                    "step, each editing the previous one.</p>")
        body.append("<div class='grid2'>")
        body += [_generation_section(t, info, report_dir) for t, info in generation.items()]
        body.append("</div>")
    if not large:
        body.append("<h2>Videos</h2>")
        body += [_video_section(v, report_dir, grounding.get(v.stem), (mistakes or {}).get(v.stem),
                                (forecasts or {}).get(v.stem)) for v in videos]
    else:  # never a row per video: a sample and links to the per-stage folders
        body.append(_sample_section(out, report_dir, videos, grounding, mistakes or {}, forecasts or {}))
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>procvid report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{FLAG_MISSING}</script></body></html>")
    path = report_dir / "index.html"
    try:
        current = path.read_text(encoding="utf-8") == page
    except OSError:
        current = False
    return path if current else atomic_write(path, page)  # a rerun with nothing new rewrites nothing
