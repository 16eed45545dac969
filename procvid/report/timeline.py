"""Timeline figure of one segmented video: key-frame thumbnails, a self-similarity strip with the
detected (and ground-truth) boundaries, and the segments as bars, all on one time axis.

The strip is the band of the self-similarity matrix around its diagonal, laid out along time:
row l, column t is cos(x_t, x_{t+l}). Within a step the band stays bright; a boundary shows as a
dark wedge that opens at the boundary frame.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from procvid.outputs import atomic_save

MAX_LAG = 24  # rows of the similarity strip (frames)
THUMB_INCHES = 0.85  # thumbnail height


def similarity_strip(X: np.ndarray, max_lag: int = MAX_LAG) -> np.ndarray:
    """[L, T] with S[l-1, t] = cos(x_t, x_{t+l}) for l = 1..L (NaN past the end)."""
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    T = len(X)
    lags = max(1, min(max_lag, T - 1))
    S = np.full((lags, T), np.nan)
    for lag in range(1, lags + 1):
        S[lag - 1, : T - lag] = np.einsum("td,td->t", X[:-lag], X[lag:])
    return S


def _image(thumb):
    if isinstance(thumb, (str, os.PathLike)):
        from PIL import Image

        with Image.open(thumb) as im:
            return np.asarray(im.convert("RGB"))
    return np.asarray(thumb)


def draw_timeline(path: str | os.PathLike, X: np.ndarray, timestamps: np.ndarray, segments, gt=None,
                  thumbnails=None, title: str | None = None, grounded=None, marks=None) -> Path:
    """Write the figure (PNG) for ``segments`` (procvid.segment.Segment list) of embeddings ``X``.

    ``gt``: optional (start, end, label) ground-truth steps in seconds. ``grounded``: optional
    (start, end, label) steps named by grounding, coloured per step like ``gt``. ``thumbnails``:
    optional key-frame images (arrays or image files), one per segment; as many as fit without
    overlapping are shown, longest segments first. ``marks``: optional (start, end, reason) flagged
    steps (procvid.mistakes), drawn as red spans with a red marker and the reason on the bars.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    t = np.asarray(timestamps, dtype=np.float64)
    step = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    t_end = t[-1] + step
    strip = similarity_strip(np.asarray(X, dtype=np.float32))
    rows = [1.2] * (thumbnails is not None) + [1.4, 0.45 * (1 + bool(gt) + bool(grounded))]
    width = 14.0
    fig, axes = plt.subplots(len(rows), 1, figsize=(width, sum(rows) + 0.6), sharex=True,
                             gridspec_kw={"height_ratios": rows}, squeeze=False)
    axes = axes[:, 0]
    ax_thumb = axes[0] if thumbnails is not None else None
    ax_sim, ax_bar = axes[-2], axes[-1]

    im = ax_sim.imshow(strip, aspect="auto", interpolation="nearest", cmap="viridis",
                       extent=[t[0], t_end, len(strip) * step, 0.0])
    ax_sim.set_ylabel("lag (s)")
    fig.colorbar(im, ax=list(axes), pad=0.01, fraction=0.02, label="cosine similarity")
    pred_b = [s.start for s in segments[1:]]
    gt = sorted(gt or [])
    gt_b = sorted({x for s, e, _ in gt for x in (s, e) if t[0] < x < t_end})
    for b in pred_b:
        ax_sim.axvline(b, color="red", lw=1.2)
    for b in gt_b:
        ax_sim.axvline(b, color="white", lw=1.0, ls="--")

    cmap = plt.get_cmap("tab20")
    for i, s in enumerate(segments):
        ax_bar.broken_barh([(s.start, s.end - s.start)], (0.1, 0.8), color=cmap(i % 20), ec="black", lw=0.5)
        ax_bar.plot([t[s.keyframe]], [0.5], marker="v", color="black", ms=4)
    grounded = sorted(grounded or [])
    steps = sorted({str(label) for _, _, label in gt + grounded})
    bar_rows = [("detected", None)] + [(n, spans) for n, spans in (("grounded", grounded), ("truth", gt)) if spans]
    for row, (_, spans) in enumerate(bar_rows[1:], start=1):
        y = -float(row)  # rows go down from "detected"
        for s, e, label in spans:
            ax_bar.broken_barh([(s, e - s)], (y + 0.1, 0.8), color=cmap(steps.index(str(label)) % 20), ec="black",
                               lw=0.5)
            ax_bar.text((s + e) / 2, y + 0.5, str(label), ha="center", va="center", fontsize=7, clip_on=True)
    for s, e, reason in marks or []:  # flagged steps: over every bar row, the reason above the top one
        ax_bar.axvspan(s, e, color="red", alpha=0.18, lw=0)
        ax_bar.plot([(s + e) / 2], [0.93], marker="v", color="red", ms=7, clip_on=False)
        ax_bar.text((s + e) / 2, 1.02, str(reason), color="red", ha="center", va="bottom", fontsize=7,
                    clip_on=False)
    ax_bar.set_yticks([0.5 - row for row in range(len(bar_rows))], [name for name, _ in bar_rows])
    ax_bar.set_ylim(1.0 - len(bar_rows), 1.0)
    ax_bar.set_xlabel("time (s)")
    ax_bar.set_xlim(t[0], t_end)

    if ax_thumb is not None:
        ax_thumb.set_ylim(0, 1)
        ax_thumb.axis("off")
        images = [_image(th) for th in thumbnails]
        # Longest segments first, each thumbnail only where it does not overlap one already placed.
        seconds_per_inch = (t_end - t[0]) / (width * 0.8)
        placed: list[tuple[float, float]] = []
        for i in sorted(range(len(segments)), key=lambda i: segments[i].start - segments[i].end):
            x = t[segments[i].keyframe]
            half = 0.5 * THUMB_INCHES * images[i].shape[1] / images[i].shape[0] * seconds_per_inch
            if all(abs(x - y) >= half + h for y, h in placed):
                placed.append((x, half))
                box = OffsetImage(images[i], zoom=THUMB_INCHES * fig.dpi / images[i].shape[0])
                ax_thumb.add_artist(AnnotationBbox(box, (x, 0.5), frameon=False))
    legend = f"red: detected boundaries{', white dashed: ground truth' if gt_b else ''}; v: key frames"
    if marks:
        legend += f"; red spans: {len(marks)} flagged step{'s' * (len(marks) != 1)}"
    fig.suptitle(f"{title or ''}\n{legend}".strip(), fontsize=10)
    try:
        return atomic_save(path, lambda f: fig.savefig(f, dpi=fig.dpi, format="png"))
    finally:
        plt.close(fig)


# Which timelines a run draws (`procvid run --timelines`): drawing one costs about half a second,
# more than embedding and segmenting a short video together, and nobody looks at a thousand of them.
TIMELINE_CHOICES = ("auto", "all", "sample", "none")
TIMELINE_SAMPLE = 48  # auto: every timeline up to this many videos, else a sample of this many


def pick_timelines(videos: list, which: str = "auto", sample: int = TIMELINE_SAMPLE) -> list:
    """The videos whose timeline is drawn: ``all``, ``none``, or a ``sample`` of `sample` videos
    spread over the tasks (in turn, each task's videos in name order, so every task shows); ``auto``
    is all of them up to `sample` videos, else the sample."""
    if which not in TIMELINE_CHOICES:
        from procvid.errors import ProcvidError

        raise ProcvidError(f"timelines: {which!r} is not one of {', '.join(TIMELINE_CHOICES)}")
    if which == "none":
        return []
    if which == "all" or len(videos) <= sample:
        return list(videos)
    by_task: dict = {}
    for v in sorted(videos, key=lambda v: v.stem):
        by_task.setdefault(str(v.task), []).append(v)
    queues, picked = list(by_task.values()), []
    while len(picked) < sample:
        for q in queues:
            if q and len(picked) < sample:
                picked.append(q.pop(0))
    return sorted(picked, key=lambda v: v.stem)


def _draw_job(job: dict) -> None:
    """Draw one timeline from plain values (runs in a worker process)."""
    from procvid.features import load_features
    from procvid.segment.base import Segment

    X, t, _ = load_features(job["features"])
    draw_timeline(job["path"], X, t, [Segment.from_dict(r) for r in job["segments"]], gt=job["gt"],
                  thumbnails=job["thumbnails"], grounded=job["grounded"], title=job["title"], marks=job["marks"])


def draw_timelines(videos: list, grounding: dict | None = None, progress: bool = True, marks: dict | None = None,
                   workers: int = 1) -> int:
    """The timeline stage: ``<stem>.timeline.png`` beside each video's segments file (detections,
    grounded steps, ground truth, and the steps ``marks`` flags: stem -> (start, end, reason) list,
    procvid.mistakes.batch.timeline_marks), for procvid.segment.files.SegmentedVideo items (see
    `pick_timelines` for which ones a run draws); a timeline whose inputs did not change is not
    redrawn. With ``workers`` > 1 they are drawn in that many processes (matplotlib draws in one
    thread at a time). Returns how many were drawn."""
    from tqdm import tqdm

    from procvid.outputs import Manifest, digest, stamp

    grounding, marks = grounding or {}, marks or {}
    manifests: dict[Path, Manifest] = {}
    todo = []
    for v in videos:
        doc, flagged = grounding.get(v.stem), marks.get(v.stem)
        manifest = manifests.setdefault(v.folder, Manifest(v.folder))
        key = stamp("timeline", [digest(v.doc), digest(doc), v.truth, v.task]
                    + ([digest(flagged)] if flagged else []), {})
        if manifest.is_current(v.timeline, key):
            continue
        records = v.doc["segments"]
        thumbs = [v.folder / r["thumbnail"] for r in records] if all("thumbnail" in r for r in records) \
            else None
        todo.append((manifest, key, {
            "path": v.timeline, "features": v.doc["features"], "segments": records, "gt": v.truth,
            "thumbnails": thumbs, "marks": flagged,
            "grounded": [(s["start"], s["end"], s["step"]) for s in doc["steps"]] if doc else None,
            "title": f"{v.stem}: {v.doc['method']}, {len(records)} segments" + (f"; task {v.task}" if v.task else "")}))
    bar = tqdm(total=len(todo), desc="timelines", unit="video", disable=not progress or not todo, dynamic_ncols=True)
    try:
        if workers > 1 and len(todo) >= 4:  # below that, starting the processes costs more than it saves
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: the caller may hold threads (torch, decoding) that a fork would copy mid-flight
            with ProcessPoolExecutor(min(workers, len(todo)), mp_context=multiprocessing.get_context("spawn")) as pool:
                for (manifest, key, job), _ in zip(todo, pool.map(_draw_job, [job for _, _, job in todo])):
                    manifest.record(job["path"], key)
                    bar.update()
        else:
            for manifest, key, job in todo:
                _draw_job(job)
                manifest.record(job["path"], key)
                bar.update()
    finally:
        bar.close()
    return len(todo)
