"""`procvid plan --figure FILE.png`: the plans as a picture, one row per plan: the start observation, the
T steps in order (text and probability), the goal observation. A plan is easier to check against the two
frames than against JSON."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from procvid.forecast.plan import parse_source


def observation_thumbnail(source: str, short_side: int = 160) -> np.ndarray | None:
    """The frame a source shows (an image, or a video's frame at t); None for feature files (no pixels)."""
    path, t, kind = parse_source(source)
    if kind == "features":
        return None
    if kind == "image":
        from PIL import Image

        image = Image.open(path).convert("RGB")
        scale = short_side / max(1, min(image.size))
        if scale < 1:
            image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
        return np.asarray(image)
    from procvid.video import frames_at, probe

    # the goal is observed just before t: show the last frame before the end of a video given at its end
    when = min(t, max(0.0, probe(path).duration - 1e-3))
    return frames_at(path, [when], short_side=short_side)[0]


def write_plan_figure(result: dict, path) -> Path:
    """Draw `result` (plan_observations' dict) to `path` (PNG, written atomically)."""
    from matplotlib.figure import Figure

    from procvid.outputs import atomic_save

    plans = result["plans"]
    horizon = result["horizon"]
    thumbs = [observation_thumbnail(result["start"]), observation_thumbnail(result["goal"])]
    cols = horizon + 2
    fig = Figure(figsize=(1.9 * cols, 1.9 * max(1, len(plans)) + 0.4))
    axes = fig.subplots(max(1, len(plans)), cols, squeeze=False)
    for rank, (row, plan) in enumerate(zip(axes, plans), 1):
        for ax in row:
            ax.set_axis_off()
        for ax, thumb, label, source in ((row[0], thumbs[0], "start", result["start"]),
                                          (row[-1], thumbs[1], "goal", result["goal"])):
            if thumb is None:
                ax.text(0.5, 0.5, "features\n(no frame)", ha="center", va="center", fontsize=8, color="#555")
            else:
                ax.imshow(thumb)
            if rank == 1:  # the same two frames in every row: named once
                ax.set_title(f"{label}\n{Path(source).name}", fontsize=7)
        probs = plan.get("step_probs") or [None] * len(plan["steps"])
        for k, (ax, step, text, p) in enumerate(zip(row[1:-1], plan["steps"], plan["texts"], probs), 1):
            body = "\n".join(textwrap.wrap(str(text), 22)[:5])
            ax.text(0.5, 0.5, f"{k}. [{step}]\n{body}" + ("" if p is None else f"\np={p:.2f}"), ha="center",
                    va="center", fontsize=7.5, wrap=True,
                    bbox=dict(boxstyle="round,pad=0.5", facecolor="white" if plan["valid"] else "#fde2e2",
                              edgecolor="#33558b"))
        task = f"plan {rank}: task {plan['task']}" + ("" if plan.get("task_prob") is None
                                                        else f" (p={plan['task_prob']:.2f})")
        row[0].text(-0.05, 0.5, task, transform=row[0].transAxes, rotation=90, ha="right", va="center", fontsize=8)
    fig.suptitle(f"{result['planner']} planner, T = {horizon}" + ("" if not result.get("decode")
                                                                  else f", {result['decode']} decoding"),
                 fontsize=9)
    fig.tight_layout()
    return atomic_save(path, lambda f: fig.savefig(f, dpi=110, format="png"))
