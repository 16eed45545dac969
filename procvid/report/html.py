"""The browsable report of `procvid run`: one static HTML page with relative links to the
timelines, key frames and graph pictures the stages wrote (open OUT/report/index.html)."""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

from procvid.segment.run import SEGMENTS_SUFFIX

STYLE = """
body { font-family: system-ui, sans-serif; margin: 24px; color: #1f2933; background: #fafafa; }
h1 { margin-bottom: 4px; } h2 { border-bottom: 2px solid #d9e2ec; padding-bottom: 4px; margin-top: 36px; }
section.card { background: white; border: 1px solid #d9e2ec; border-radius: 8px; padding: 12px 16px; margin: 16px 0; }
img.timeline, img.graph, img.sheet { max-width: 100%; border: 1px solid #eee; }
.keyframes img { height: 72px; margin: 2px; border: 1px solid #ccc; }
table { border-collapse: collapse; margin: 8px 0; } td, th { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: left; }
.muted { color: #829ab1; }
.missing { color: #b00020; font-weight: bold; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 0 16px; }
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


def _task_section(task_id: str, info: dict, report_dir: Path) -> str:
    g = info["graph"].graph
    rows = [["videos", info["videos"]], ["steps", info["graph"].number_of_nodes() - 2],
            ["edges", info["graph"].number_of_edges()],
            ["optional steps", ", ".join(map(str, g.get("optional", []))) or "none"],
            ["interchangeable pairs", ", ".join(f"{a}↔{b}" for a, b in g.get("interchangeable", [])) or "none"]]
    if info["scores"] is not None:
        s = info["scores"]
        rows.append(["against the true graph", f"P {s.precision:.2f} R {s.recall:.2f} F1 {s.f1:.2f}"])
    return (f"<section class='card task' id='task-{html.escape(task_id)}'><h3>{html.escape(info['name'])} "
            f"<span class='muted'>({html.escape(task_id)})</span></h3>"
            f"<img class='graph' src='{_rel(info['png'], report_dir)}' alt='graph script of {html.escape(task_id)}'>"
            f"{_table(rows, ['graph script', ''])}</section>")


def _video_section(seg_file: Path, report_dir: Path, task_of: dict) -> str:
    doc = json.loads(seg_file.read_text())
    stem = seg_file.name[: -len(SEGMENTS_SUFFIX)]
    timeline = seg_file.with_name(stem + ".timeline.png")
    task = task_of.get(stem)
    thumbs = "".join(
        f"<img src='{_rel(seg_file.parent / s['thumbnail'], report_dir)}' "
        f"title='{s['start']:.1f}-{s['end']:.1f} s'>"
        for s in doc["segments"] if s.get("thumbnail"))
    parts = [f"<section class='card video'><h3>{html.escape(stem)}"
             + (f" <span class='muted'>task {html.escape(task)}</span>" if task else "") + "</h3>",
             f"<p>{len(doc['segments'])} key steps by {html.escape(doc['method'])}; "
             f"{len(doc['timestamps'])} frames embedded with {html.escape(doc.get('encoder') or '?')}</p>"]
    if timeline.exists():
        parts.append(f"<img class='timeline' src='{_rel(timeline, report_dir)}' alt='timeline of {html.escape(stem)}'>")
    if thumbs:
        parts.append(f"<div class='keyframes'>{thumbs}</div>")
    return "".join(parts) + "</section>"


def write_report(out: Path, dataset=None, graphs: dict | None = None, segmentation: dict | None = None,
                 extra_sections: list[str] = ()) -> Path:
    """Write OUT/report/index.html from the stage outputs under OUT."""
    out = Path(out)
    report_dir = out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    task_of = {v.video_id: v.task_id for v in dataset.videos} if dataset else {}
    seg_files = sorted((out / "segments").rglob("*" + SEGMENTS_SUFFIX))
    body = [f"<h1>procvid report</h1><p class='muted'>{len(seg_files)} videos"
            + (f", {len(graphs)} tasks" if graphs else "") + "</p>"]
    if segmentation:
        body.append(_segmentation_summary(segmentation))
    if graphs:
        body.append("<h2>Graph scripts per task</h2><div class='grid'>")
        body += [_task_section(t, info, report_dir) for t, info in graphs.items()]
        body.append("</div>")
    body += list(extra_sections)
    body.append("<h2>Videos</h2>")
    body += [_video_section(f, report_dir, task_of) for f in seg_files]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>procvid report</title>"
            f"<style>{STYLE}</style></head><body>{''.join(body)}<script>{FLAG_MISSING}</script></body></html>")
    path = report_dir / "index.html"
    path.write_text(page)
    return path
