"""Render a procvid HTML report in headless Chromium: a PNG screenshot and a check of its content.

    python tools/screenshot_report.py demo_out/report/index.html --png demo_out/report/screenshot.png

Prints how many timelines, graph pictures and key-frame images the page shows and whether any
image failed to load (the report marks those with class "missing"). Exit code 1 on problems.
Needs Debian's `chromium` package.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000", "--run-all-compositor-stages-before-draw"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def render(page: Path, png: Path, width: int = 1400, height: int = 3600) -> str:
    """Write a screenshot of `page` to `png` and return the page's DOM after scripts ran."""
    exe = chromium()
    if exe is None:
        raise RuntimeError("chromium not found (apt-get install chromium)")
    url = page.resolve().as_uri()
    with tempfile.TemporaryDirectory() as profile:
        common = [exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}"]
        subprocess.run([*common, f"--screenshot={png}", url], check=True, capture_output=True, timeout=120)
        dom = subprocess.run([*common, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    return dom.stdout


def content(dom: str) -> dict[str, int]:
    return {
        "timelines": len(re.findall(r"class=\"timeline\"", dom)),
        "graphs": len(re.findall(r"class=\"graph\"", dom)),
        "keyframes": len(re.findall(r"<img src=\"[^\"]*keyframes/", dom)),
        "generated": len(re.findall(r"class=\"sheet\"", dom)),
        "missing": len(re.findall(r"class=\"missing\"", dom)),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("page", type=Path)
    ap.add_argument("--png", type=Path, help="screenshot path (default: next to the page)")
    args = ap.parse_args(argv)
    png = args.png or args.page.with_name("screenshot.png")
    counts = content(render(args.page, png))
    print(f"screenshot: {png}")
    print(", ".join(f"{k} {v}" for k, v in counts.items()))
    ok = counts["timelines"] and counts["graphs"] and not counts["missing"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
