"""Outputs of `procvid generate`: plan.json, one PNG per key step, a contact sheet and an HTML page.

Images are written at the model's resolution; the contact sheet and the page show them enlarged
(`DISPLAY` px, smooth upsampling in the sheet, browser scaling on the page).
"""

from __future__ import annotations

import html
import json
import textwrap
from pathlib import Path

import numpy as np

from procvid.outputs import atomic_save, atomic_write, ensure_dir

DISPLAY = 160  # px per tile in the contact sheet and on the page
CAPTION_LINES = 4


def load_image(path: str | Path) -> np.ndarray:
    """An image file as uint8 RGB [H, W, 3]; clear errors for missing or unreadable files."""
    from PIL import Image, UnidentifiedImageError

    from procvid.errors import ProcvidError

    path = Path(path)
    if path.is_dir():
        raise ProcvidError(f"start image {path} is a folder, not an image file")
    if not path.is_file():
        raise ProcvidError(f"start image {path} not found")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))  # a writable copy
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise ProcvidError(f"start image {path} is not a readable image ({e.__class__.__name__})") from None


def _save_png(image: np.ndarray, path: Path) -> str:
    from PIL import Image

    atomic_save(path, lambda f: Image.fromarray(image).save(f, format="PNG"))
    return path.name


def contact_sheet(start: np.ndarray, images: list[np.ndarray], texts: list[str], path: Path, title: str) -> Path:
    """One row: the start image, then each key-step image with its number and text below."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=11)
    bold = ImageFont.load_default(size=13)
    pad, line = 8, 13
    tiles = [(start, "start", "")] + [(img, f"{i}.", t) for i, (img, t) in enumerate(zip(images, texts), 1)]
    top = pad + 18
    height = top + DISPLAY + pad + line * (CAPTION_LINES + 1) + pad
    sheet = Image.new("RGB", (pad + len(tiles) * (DISPLAY + pad), height), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((pad, pad), title, fill="black", font=bold)
    for i, (img, label, text) in enumerate(tiles):
        x = pad + i * (DISPLAY + pad)
        sheet.paste(Image.fromarray(img).resize((DISPLAY, DISPLAY), Image.Resampling.BICUBIC), (x, top))
        lines = [label] + textwrap.wrap(text, 26, max_lines=CAPTION_LINES, placeholder=" ...")
        for j, s in enumerate(lines):
            draw.text((x, top + DISPLAY + 4 + j * line), s, fill="black", font=font)
    return atomic_save(path, lambda f: sheet.save(f, format="PNG"))


def write_outputs(out_dir: str | Path, plan: dict, start: np.ndarray, images: list[np.ndarray],
                  settings: dict) -> dict:
    """start.png, step_NN.png, contact_sheet.png, index.html and (last: it marks the folder
    complete) plan.json in `out_dir`, each written atomically."""
    out = ensure_dir(out_dir)
    texts = [s["text"] for s in plan["steps"]]
    start_file = _save_png(start, out / "start.png")
    for step, img in zip(plan["steps"], images):
        step["image"] = _save_png(img, out / f"step_{step['index']:02d}.png")
    record = {**plan, "start_image": start_file, "settings": settings}
    title = plan["skill"]["name"] or "key steps"
    sheet = contact_sheet(start, images, texts, out / "contact_sheet.png", title)
    page = atomic_write(out / "index.html", _html(record, title))
    atomic_write(out / "plan.json", json.dumps(record, indent=2) + "\n")
    return {"plan": out / "plan.json", "contact_sheet": sheet, "html": page,
            "images": [out / s["image"] for s in plan["steps"]]}


def _html(record: dict, title: str) -> str:
    def tile(src, caption):
        return (f'<figure><img src="{html.escape(src)}" width="{DISPLAY}" height="{DISPLAY}" alt="">'
                f"<figcaption>{caption}</figcaption></figure>")

    tiles = [tile(record["start_image"], "<b>start</b>")]
    tiles += [tile(s["image"], f"<b>{s['index']}.</b> {html.escape(s['text'])}") for s in record["steps"]]
    retrieved = "".join(f"<li>{html.escape(r['name'])} ({html.escape(str(r['id']))}): p = {r['probability']:.3f}"
                        f", text {r['text_score']:.3f}"
                        + ("" if r.get("image_score") is None else f", image {r['image_score']:.3f}") + "</li>"
                        for r in record.get("retrieved", []))
    settings = html.escape(", ".join(f"{k} {v}" for k, v in record["settings"].items()))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 24px; }}
.row {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; width: {DISPLAY}px; }}
img {{ border: 1px solid #ccc; }}
figcaption {{ font-size: 13px; margin-top: 4px; }}
.meta {{ color: #555; font-size: 13px; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<div class="row">{"".join(tiles)}</div>
{f"<h2>Retrieved skills</h2><ol>{retrieved}</ol>" if retrieved else ""}
<p class="meta">{settings}</p>
</body></html>
"""
