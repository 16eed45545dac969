"""How procvid's cost grows with the number of videos: `procvid embed`, `procvid segment` and
`procvid run --no-generate` on 20, 80, 240 and 1,000 short synthetic videos (10-20 s, seed 5), with
the local engine and with `--engine ray`, each command in its own process (startup included).

Per size, engine and stage it prints: seconds, seconds per video and per video-hour, the peak
memory (the largest process, from the kernel's rusage of the finished command, and the whole process
tree, sampled every 0.2 s from /proc: Ray's workers are in the tree when Ray starts locally) and the
files written. Then it fits seconds = fixed + per_video x videos over the sizes measured (least
squares; one size: no fixed part) and extrapolates to 10,000 and 1,000,000 videos on one machine
like this one and per added machine (per-video work divided among the machines, as Ray would spread
it, the fixed part kept: an extrapolation, not a measurement).

`--layouts files,shards` measures both output layouts side by side: a file pair per video, or the
corpus-scale layout (procvid.shards: Parquet shards with an index, key frames only on request);
the files column shows what each writes.

Each world is generated once (ensure_world) under datasets/synth/scale<N>_seed5. Output folders are
temporary; a stage starts from nothing, except segment, which reads the features embed wrote.

    python tools/bench_scale.py --sizes 20,80
    python tools/bench_scale.py --sizes 240,1000 --engines local --layouts files,shards --stages embed,segment,run
    python tools/bench_scale.py --sizes 80 --engines local,ray --stages embed --repeats 3
    RAY_ADDRESS=127.0.0.1:6380 python tools/bench_scale.py --sizes 80 --engines ray --stages embed
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

STAGES = ("embed", "segment", "run")


def world(n: int, seed: int) -> Path:
    from procvid.data.synthetic import ensure_world

    return ensure_world(ROOT / "datasets" / "synth" / f"scale{n}_seed{seed}", n, seed, min_duration=10,
                        max_duration=20, progress=False)


def video_hours(world_dir: Path) -> float:
    with open(world_dir / "videos.csv") as f:
        return sum(float(row["duration"]) for row in csv.DictReader(f)) / 3600


def _tree_rss(root: int) -> int:
    """Resident bytes of `root` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, todo, page = 0, [root], os.sysconf("SC_PAGE_SIZE")
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def timed(cmd: list[str], env: dict) -> dict:
    """Run one command; its seconds, largest process's peak RSS and the tree's sampled peak."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.wait(0.2):
            peak[0] = max(peak[0], _tree_rss(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    stop.set()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}")
    return {"seconds": seconds, "max_rss_mb": usage.ru_maxrss / 1024, "tree_mb": peak[0] / 2**20,
            "output": output}


def files_in(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def commands(stage: str, world_dir: Path, out: Path, engine: str, layout: str = "files") -> tuple[list[str], Path]:
    procvid = [sys.executable, "-m", "procvid.cli"]
    videos = str(world_dir / "videos")
    common = ["--engine", engine, "--layout", layout, "--no-progress"]
    if stage == "embed":
        return [*procvid, "embed", videos, "--out", str(out / "features"), "--encoder", "video", *common], \
            out / "features"
    if stage == "segment":  # from the features embed wrote (current: not recomputed)
        return [*procvid, "segment", videos, "--features", str(out / "features"), "--out", str(out / "segments"),
                "--encoder", "video", *common], out / "segments"
    return [*procvid, "run", videos, "--annotations", str(world_dir), "--config", "synthetic", "--no-generate",
            "--out", str(out / "run"), *common], out / "run"


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed seconds, seconds per video) by least squares; one size, or a fit that noise made
    non-increasing (a loaded machine): all of the largest size's time per video (an upper bound)."""
    n, t = max(points)
    if len({n for n, _ in points}) < 2:
        return 0.0, t / n
    mean_n = statistics.fmean(n for n, _ in points)
    mean_t = statistics.fmean(t for _, t in points)
    slope = sum((n - mean_n) * (t - mean_t) for n, t in points) / sum((n - mean_n) ** 2 for n, _ in points)
    if slope <= 0:
        return 0.0, t / n
    return max(0.0, mean_t - slope * mean_n), slope


def human(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="20,80,240,1000", help="numbers of videos, comma-separated")
    ap.add_argument("--engines", default="local,ray", help="local, ray or both")
    ap.add_argument("--layouts", default="files", help="files, shards or both (procvid --layout)")
    ap.add_argument("--stages", default=",".join(STAGES), help="embed, segment, run (comma-separated)")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each command (the median is shown)")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--machines", default="2,10,100", help="machines for the per-machine extrapolation")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    layouts = args.layouts.split(",")
    stages = [s for s in STAGES if s in args.stages.split(",")]
    if "segment" in stages and "embed" not in stages:
        raise SystemExit("segment reads what embed wrote: --stages must include embed")
    env = {**os.environ, "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT)}
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start"
          + (f", RAY_ADDRESS={env['RAY_ADDRESS']}" if env.get("RAY_ADDRESS") else ""))
    rows = []
    for n in sizes:
        w = world(n, args.seed)
        hours = video_hours(w)
        for repeat in range(args.repeats):
            # side by side: each repeat runs every engine and layout in turn
            for engine, layout in [(e, lay) for e in engines for lay in layouts]:
                out = Path(tempfile.mkdtemp(prefix=f"bench_scale_{n}_{engine}_{layout}_"))
                try:
                    for stage in stages:
                        cmd, written = commands(stage, w, out, engine, layout)
                        r = timed(cmd, env)
                        rows.append({"n": n, "hours": hours, "engine": engine, "layout": layout, "stage": stage,
                                     "repeat": repeat, "files": files_in(written), **r})
                        print(f"  {n:5d} videos {engine:5s} {layout:6s} {stage:7s} repeat {repeat}: "
                              f"{r['seconds']:.1f} s", flush=True)
                finally:
                    shutil.rmtree(out, ignore_errors=True)
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end; medians over {args.repeats} repeat(s)")
    print(f"{'videos':>6} {'video-h':>7} {'engine':6} {'layout':6} {'stage':7} {'s':>7} {'s/video':>7} "
          f"{'s/video-h':>9} {'max RSS MB':>10} {'tree MB':>8} {'files':>6}")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["n"], r["engine"], r["layout"], r["stage"]), []).append(r)
    medians = {}
    for (n, engine, layout, stage), rs in groups.items():
        t = statistics.median(r["seconds"] for r in rs)
        medians[(n, engine, layout, stage)] = t
        r = rs[0]
        print(f"{n:6d} {r['hours']:7.2f} {engine:6} {layout:6} {stage:7} {t:7.1f} {t / n:7.3f} "
              f"{t / r['hours']:9.0f} {max(x['max_rss_mb'] for x in rs):10.0f} {max(x['tree_mb'] for x in rs):8.0f} "
              f"{r['files']:6d}")
    comparisons = {"ray / local": [("ray", lay, "local", lay) for lay in layouts if {"ray", "local"} <= set(engines)],
                   "shards / files": [(e, "shards", e, "files") for e in engines if {"shards", "files"} <= set(layouts)]}
    for name, pairs in comparisons.items():
        if pairs:
            print(f"\n{name} (median seconds):")
        for a, la, b, lb in pairs:
            for stage in stages:
                ratios = [f"{n} videos {medians[(n, a, la, stage)] / medians[(n, b, lb, stage)]:.2f}x" for n in sizes]
                print(f"  {a}/{la} vs {b}/{lb} {stage:7s} " + "  ".join(ratios))
    machines = [int(m) for m in args.machines.split(",")]
    mean_hours = statistics.fmean(groups[k][0]["hours"] / k[0] for k in groups)  # video-hours per video
    print(f"\nextrapolation (fit over {sizes}; {mean_hours * 3600:.0f} s per video on average; per added machine: "
          "the per-video part divided among machines, the fixed part kept; a fit over few sizes on a loaded "
          "machine is rough):")
    for engine, layout in [(e, lay) for e in engines for lay in layouts]:
        for stage in stages:
            fixed, per = fit([(n, medians[(n, engine, layout, stage)]) for n in sizes])
            line = f"  {engine:5s} {layout:6s} {stage:7s} fixed {fixed:5.1f} s + {per:.3f} s/video:"
            for total in (10_000, 1_000_000):
                line += f"  {total:>9,} videos: {human(fixed + per * total)} on 1 machine"
                line += "".join(f", {human(fixed + per * total / m)} on {m}" for m in machines)
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
