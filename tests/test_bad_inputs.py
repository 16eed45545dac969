"""Bad inputs to every subcommand, one table (CASES): each case is a user mistake or a hostile input and
says how procvid must answer it.

Rules every case is checked against (`test_bad_input`):
- exit code 2 for a user mistake: exactly one non-empty line on stderr, naming the file or option and
  the reason (each of the case's `says` substrings is in that line);
- exit code 1 for a batch where only some inputs failed: the failures are recorded in
  OUT/failures.jsonl and stderr holds only logging lines, one WARNING line per failed input (the
  `says` substrings appear among them);
- exit code 0 only for the few security cases whose hostile input is legal once neutralised (a task
  id like `../../x` is sanitised; a symlink inside OUT is replaced, not written through): stderr then
  holds nothing but logging lines (INFO / WARNING);
- never a traceback ("Traceback" not in stderr);
- no file changes outside OUT: (path, size, mtime) of every file under the case's folder (minus OUT),
  the shared world, the shared features/segments and the repo's checkpoints/ and configs/ are the
  same before and after, and no file or folder appears there. The command runs with its working
  directory in the case's folder, so stray writes (logs, caches) are caught too.

Most cases run in-process (`procvid.cli.main`, stderr through capfd, which also sees what C libraries
write); cases where stray library output could appear (torch.load / open_clip weights, Lightning,
diffusers) run the CLI in a subprocess. Cases that need a mount (a read-only folder, a full disk)
mount a tmpfs when running as root and skip cleanly otherwise.

Classes: security, options (sampling and other option values), output (output folders), annotation
(annotation rows and segment files), graph (graph scripts and task files), model (model folders),
config (run presets and training configs), input (videos, lists, images, texts).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from helpers import VIDEOS
from procvid.cli import main
from procvid.paths import REPO_ROOT

ENC = "procvid-test-tiny:random"
CLIP = VIDEOS / "carphone_pristine.mp4"  # 4 s, 176x144
CLIP2 = VIDEOS / "tree.avi"  # 4.5 s, 320x240
FAST = f"--encoder {ENC} --no-progress"  # embed options: the tiny random encoder, no bars
TASKS = [{"id": "tea", "name": "Make tea", "steps": [{"id": 1, "text": "boil water"}, {"id": 2, "text": "add tea"},
                                                     {"id": 3, "text": "pour into cup"}]}]


# ---------------------------------------------------------------------------------------------- the table

@dataclass(frozen=True)
class Case:
    id: str
    cls: str
    argv: str  # a shell-like template; {placeholders} from the context (see `ctx`)
    says: tuple[str, ...] = ()  # substrings of the error line (templated)
    rc: int | tuple[int, ...] = 2
    prep: Callable[[dict], dict | None] | None = None  # builds inputs under c["tmp"]; may add placeholders
    after: Callable[[dict, int, str], None] | None = None  # extra checks (c, exit code, stderr)
    sub: bool = False  # run the CLI in a subprocess
    failures: str = "failures.jsonl"  # where an exit-1 batch records its failures, relative to OUT


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def random_bytes(n: int = 4096) -> bytes:
    import random

    return random.Random(n).randbytes(n)


class _Payload:
    """Unpickling this writes a marker file: procvid must never do it."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pwned')",)


def pickled_payload(c: dict, name: str) -> dict:
    import torch

    torch.save({"format": "procvid-script", "state_dict": {}, "x": _Payload(c["tmp"] / "marker")}, c["tmp"] / name)
    return {}


def no_marker(c, rc, err):
    assert not (c["tmp"] / "marker").exists(), "the pickled payload ran"


def no_weights_only_hint(c, rc, err):
    assert "weights_only=False" not in err


def tasks_file(c: dict, tasks=TASKS, name="tasks.json") -> dict:
    write(c["tmp"] / name, json.dumps(tasks))
    return {}


def world_copy(c: dict) -> Path:
    """The shared world's layout (no videos, no labels) in the case's folder, to edit."""
    dest = c["tmp"] / "w"
    shutil.copytree(c["world"], dest, ignore=shutil.ignore_patterns("videos", "labels"))
    return dest


def edit_annotation(row: str, drop_columns: bool = False):
    """A world copy whose first annotation CSV gets `row` as its second row ({csv}: that file)."""
    def prep(c):
        csv = sorted((world_copy(c) / "annotations").glob("*.csv"))[0]
        lines = csv.read_text().splitlines()
        if drop_columns:
            lines = [",".join(line.split(",")[:2]) for line in lines]
        else:
            lines.insert(1, row)
        csv.write_text("\n".join(lines) + "\n")
        return {"csv": csv}
    return prep


def gt_folder(row: str):
    """A folder with one CrossTask CSV for the shared segmented video, holding `row` ({csv})."""
    def prep(c):
        csv = write(c["tmp"] / "gt" / f"tea_{c['stem']}.csv", f"1,0.5,2.0\n{row}\n3,9.0,12.0\n")
        return {"csv": csv}
    return prep


def graph_file(doc) -> Callable:
    def prep(c):
        write(c["tmp"] / "g.json", doc if isinstance(doc, str) else json.dumps(doc))
    return prep


def node_link(nodes, edges) -> dict:
    return {"directed": True, "multigraph": False, "graph": {},
            "nodes": [{"id": n} for n in nodes], "edges": [{"source": u, "target": v} for u, v in edges]}


def symlink_in_out(rel: str, target_is_dir: bool = False):
    """OUT/<rel> is a symlink to a file (or folder) outside OUT ({target})."""
    def prep(c):
        target = c["tmp"] / ("elsewhere" if target_is_dir else "precious.txt")
        if target_is_dir:
            target.mkdir()
        else:
            write(target, "precious\n")
        link = c["out"] / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target, target_is_directory=target_is_dir)
        return {"target": target}
    return prep


def symlink_not_written_through(rel: str):
    def after(c, rc, err):
        target, link = c["tmp"] / "precious.txt", c["out"] / rel
        assert target.read_text() == "precious\n"
        if rc != 2:  # accepted: then the link was replaced by a file of our own
            assert not link.is_symlink() and link.is_file()
    return after


def folder_stays_empty(c, rc, err):
    assert not any((c["tmp"] / "elsewhere").iterdir())


def traversal_run(c):
    tasks_file(c, [{**TASKS[0], "id": "../../x"}])
    shutil.copytree(c["shared"] / "feat", c["out"] / "features")  # embedding reused: the case is about names


def outputs_inside_out(c, rc, err):
    for p in [*c["out"].rglob("*")]:
        assert p.resolve().is_relative_to(c["out"].resolve()), p
    assert (c["out"] / "graphs").is_dir() and any((c["out"] / "graphs").glob("*.json"))
    assert not (c["tmp"] / "x.json").exists() and not (c["tmp"] / "x").exists()
    assert not (c["tmp"].parent / "x").exists() and not (c["tmp"].parent / "x.json").exists()
    generated = [p for p in (c["out"] / "generate").iterdir() if p.is_dir()]
    assert generated and all(p.name not in (".", "..") and (p / "plan.json").is_file() for p in generated)


def mount_tmpfs(c: dict, where: Path, options: str) -> None:
    """Mount a tmpfs (root only); the case is skipped where that is not possible."""
    if os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    c["mounts"].append(where)


def readonly_out(c):
    mount_tmpfs(c, c["tmp"] / "ro", "ro,size=1m")


def full_disk(c):
    mount_tmpfs(c, c["out"], "size=64k")
    with open(c["out"] / "filler", "wb", buffering=0) as f:  # leave no byte free
        try:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
        except OSError:
            pass


def kig_copy(corrupt_unet: bool):
    def prep(c):
        dest = c["tmp"] / "kig"
        shutil.copytree(c["kig"], dest)
        if corrupt_unet:
            (dest / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(random_bytes(65536))
        png(c)
    return prep


def png(c):
    from PIL import Image

    Image.new("RGB", (32, 32), (200, 120, 40)).save(c["tmp"] / "start.png")


def empty_dir(c):
    (c["tmp"] / "empty").mkdir()


def yaml_file(text: str, name: str = "bad.yaml"):
    def prep(c):
        write(c["tmp"] / name, text)
    return prep


def segments_doc(c, segments, name=None) -> Path:
    doc = json.loads(c["segfile"].read_text())
    doc["segments"] = segments
    return write(c["tmp"] / "pred" / (name or c["segfile"].name), json.dumps(doc))


def pred_reversed(c):
    seg = dict(json.loads(c["segfile"].read_text())["segments"][0])
    seg["start"], seg["end"] = seg["end"] + 1.0, seg["start"]
    return {"pred": segments_doc(c, [seg])}


def truncated_segments(c):
    text = c["segfile"].read_text()
    return {"trunc": write(c["tmp"] / "seg" / c["segfile"].name, text[: len(text) // 2])}


def failures_name(name: str):
    def after(c, rc, err):
        records = [json.loads(line) for line in (c["out"] / "failures.jsonl").read_text().splitlines()]
        assert any(name in r["item"] for r in records), records
    return after


def video_list(c):
    write(c["tmp"] / "list.txt", f"{CLIP}\n{c['tmp'] / 'gone.mp4'}\n")


def junk_video(name: str, data: bytes):
    def prep(c):
        write(c["tmp"] / name, data)
    return prep


EMBED = "embed {clip} --out {out} " + FAST
SEGMENT = "segment {feat} --out {out} --no-progress --keyframes none"
PREDICT = "graph predict --graph {tmp}/g.json --prefix 1"
RUN = "run {wclip} --out {out} --encoder " + ENC + " --method uniform --no-generate --no-progress"

CASES = [
    # --- security
    Case("sec-pickled-model", "security", "graph predict --model {tmp}/evil.pt --prefix 1",
         ("evil.pt", "not a procvid model folder"), prep=lambda c: pickled_payload(c, "evil.pt"), after=no_marker),
    Case("sec-task-id-traversal", "security",
         "run {wclip} --out {out} --steps {tmp}/tasks.json --task ../../x --config synthetic --encoder " + ENC +
         " --method uniform --no-progress", rc=0, prep=traversal_run, after=outputs_inside_out),
    Case("sec-symlinked-failures", "security", "embed {clip} {tmp}/junk.mp4 --out {out} " + FAST + " --num-frames 2",
         ("failures.jsonl", "symlink"), rc=(1, 2),
         prep=lambda c: (junk_video("junk.mp4", random_bytes())(c), symlink_in_out("failures.jsonl")(c))[1],
         after=symlink_not_written_through("failures.jsonl")),
    Case("sec-symlinked-report", "security", RUN, ("index.html", "symlink"), rc=(0, 2),
         prep=lambda c: (shutil.copytree(c["shared"] / "feat", c["out"] / "features"),
                         symlink_in_out("report/index.html")(c))[1],
         after=symlink_not_written_through("report/index.html")),
    Case("sec-symlinked-graphs", "security", RUN, ("graphs", "symlink"),
         prep=symlink_in_out("graphs", target_is_dir=True), after=folder_stays_empty),
    Case("sec-random-weights-vitb32", "security", "embed {clip} --out {out} --encoder ViT-B-32:{tmp}/x.bin "
         "--num-frames 2 --no-progress", ("x.bin", "not a checkpoint"), prep=junk_video("x.bin", random_bytes()),
         after=no_weights_only_hint, sub=True),
    Case("sec-random-weights-tiny", "security", "embed {clip} --out {out} --encoder procvid-test-tiny:{tmp}/x.bin "
         "--num-frames 2 --no-progress", ("x.bin", "not a checkpoint"), prep=junk_video("x.bin", random_bytes()),
         after=no_weights_only_hint),
    Case("sec-pickled-weights", "security", "embed {clip} --out {out} --encoder procvid-test-tiny:{tmp}/evil.pt "
         "--num-frames 2 --no-progress", ("evil.pt", "loads safely"), prep=lambda c: pickled_payload(c, "evil.pt"),
         after=lambda c, rc, err: (no_marker(c, rc, err), no_weights_only_hint(c, rc, err))),

    # --- sampling and other option values
    Case("opt-fps-zero", "options", EMBED + " --fps 0", ("--fps", "positive")),
    Case("opt-fps-negative", "options", EMBED + " --fps -1", ("--fps", "positive")),
    Case("opt-fps-text", "options", EMBED + " --fps abc", ("--fps", "abc")),
    Case("opt-num-frames-zero", "options", EMBED + " --num-frames 0", ("--num-frames", "positive")),
    Case("opt-every-zero", "options", EMBED + " --every 0", ("--every", "positive")),
    Case("opt-workers-zero", "options", EMBED + " --workers 0", ("--workers", "positive")),
    Case("opt-batch-size-zero", "options", EMBED + " --batch-size 0", ("--batch-size", "positive")),
    Case("opt-shard-out-of-range", "options", EMBED + " --shard 5/2", ("--shard", "5/2", "I < N")),
    Case("opt-num-segments-zero", "options", SEGMENT + " --method uniform --num-segments 0",
         ("--num-segments", "positive")),
    Case("opt-param-not-a-number", "options", SEGMENT + " --method sbd --param min_segment_s=abc",
         ("min_segment_s", "abc")),
    Case("opt-param-unknown", "options", SEGMENT + " --method uniform --param nosuch=1",
         ("nosuch", "unknown parameter")),
    Case("opt-method-unknown", "options", SEGMENT + " --method nosuch", ("nosuch", "unknown detector")),
    Case("opt-engine-unknown", "options", EMBED + " --engine nosuch", ("--engine", "nosuch")),
    Case("opt-precision-unknown", "options", EMBED + " --precision fp8", ("--precision", "fp8")),
    Case("opt-eval-encoder-fps-zero", "options", "eval encoder --world {tmp}/w --encoder " + ENC + " --fps 0",
         ("--fps", "positive")),
    Case("opt-run-fps-zero", "options", RUN + " --fps 0", ("--fps", "positive")),
    Case("opt-generate-steps-zero", "options", "generate --image {tmp}/start.png --skill tea --steps 0 --out {out}",
         ("--steps", "at least 1"), prep=png),
    Case("opt-generate-sampler-steps-zero", "options",
         "generate --image {tmp}/start.png --skill tea --sampler-steps 0 --out {out}",
         ("--sampler-steps", "at least 1"), prep=png),
    Case("opt-synth-videos-zero", "options", "synth --out {out} --videos 0", ("--videos", "positive")),
    Case("opt-demo-videos-zero", "options", "demo --out {out} --videos 0 --no-progress", ("--videos", "positive")),
    Case("opt-list-unknown", "options", "list nosuch", ("nosuch", "invalid choice")),
    Case("opt-predict-top-zero", "options", "graph predict --graph {world}/graphs/tea.json --top 0",
         ("--top", "at least 1")),

    # --- output folders
    Case("out-is-a-file", "output", "embed {clip} --out {tmp}/file.txt " + FAST, ("file.txt", "not a folder"),
         prep=lambda c: write(c["tmp"] / "file.txt", "keep me\n") and None),
    Case("out-demo-is-a-file", "output", "demo --out {tmp}/file.txt --no-progress", ("file.txt", "not a folder"),
         prep=lambda c: write(c["tmp"] / "file.txt", "keep me\n") and None),
    Case("out-under-proc", "output", "embed {clip} --out /proc/x " + FAST, ("/proc/x", "cannot create")),
    Case("out-read-only-new", "output", "embed {clip} --out {tmp}/ro/out " + FAST, ("ro/out", "ead-only"),
         prep=readonly_out),
    Case("out-read-only-existing", "output", "graph build --data {world} --out {tmp}/ro --formats json",
         ("ro", "ead-only"), prep=readonly_out),
    Case("out-full-disk", "output", "embed {clip} {clip2} --out {out} " + FAST, ("{out}/", "No space left"), rc=(1, 2),
         prep=full_disk),

    # --- annotation rows (CrossTask CSVs) and segment files
    Case("ann-gt-negative-time", "annotation", "eval segment --pred {seg} --gt {tmp}/gt", ("{csv}", "-1"),
         prep=gt_folder("2,-1.0,4.0")),
    Case("ann-gt-end-before-start", "annotation", "eval segment --pred {seg} --gt {tmp}/gt", ("{csv}", "6-4"),
         prep=gt_folder("2,6.0,4.0")),
    Case("ann-gt-not-a-number", "annotation", "eval segment --pred {seg} --gt {tmp}/gt", ("{csv}", "abc"),
         prep=gt_folder("2,abc,4.0")),
    Case("ann-gt-missing-column", "annotation", "eval segment --pred {seg} --gt {tmp}/gt", ("{csv}", "step,start,end"),
         prep=gt_folder("2,4.0")),
    Case("ann-build-negative-time", "annotation", "graph build --data {tmp}/w --out {out} --formats json",
         ("{csv}", "-1"), prep=edit_annotation("2,-1.0,0.5")),
    Case("ann-build-end-before-start", "annotation", "graph build --data {tmp}/w --out {out} --formats json",
         ("{csv}", "6-4"), prep=edit_annotation("2,6.0,4.0")),
    Case("ann-build-not-a-number", "annotation", "graph build --data {tmp}/w --out {out} --formats json",
         ("{csv}", "abc"), prep=edit_annotation("2,abc,4.0")),
    Case("ann-build-missing-column", "annotation", "graph build --data {tmp}/w --out {out} --formats json",
         ("{csv}", "step,start,end"), prep=edit_annotation("", drop_columns=True)),
    Case("ann-pred-end-before-start", "annotation", "eval segment --pred {tmp}/pred --gt {world}", ("{pred}", "start"),
         prep=pred_reversed),
    Case("ann-ground-truncated-segments", "annotation", "ground {trunc} --steps {world}/tasks.json --out {out} "
         "--encoder " + ENC + " --no-progress", ("{trunc}", "cannot read"), prep=truncated_segments),

    # --- graph scripts and task files
    Case("graph-cyclic", "graph", PREDICT, ("g.json", "cycle"),
         prep=graph_file(node_link(["START", 1, 2, "END"], [("START", 1), (1, 2), (2, 1), (2, "END")]))),
    Case("graph-unknown-node", "graph", PREDICT, ("g.json", "7"),
         prep=graph_file(node_link(["START", 1, "END"], [("START", 1), (1, 7), (1, "END")]))),
    Case("graph-not-a-graph", "graph", PREDICT, ("g.json", "not a node-link graph"),
         prep=graph_file({"tasks": [1, 2, 3]})),
    Case("graph-missing-file", "graph", "graph predict --graph {tmp}/nope.json --prefix 1",
         ("nope.json", "No such file")),
    Case("graph-order-graph-without-graph", "graph", "ground {segfile} --steps {tmp}/tasks.json --order graph "
         "--out {out} --encoder " + ENC + " --no-progress", ("order graph", "tea", "--graph"), prep=tasks_file),
    Case("graph-task-without-steps", "graph", "ground {segfile} --steps {tmp}/tasks.json --out {out} --encoder "
         + ENC + " --no-progress", ("tasks.json", "no steps"),
         prep=lambda c: tasks_file(c, [{**TASKS[0], "steps": []}])),
    Case("graph-tasks-json-malformed", "graph", "ground {segfile} --steps {tmp}/tasks.json --out {out} --encoder "
         + ENC + " --no-progress", ("tasks.json", "invalid JSON"),
         prep=yaml_file('[{"id": "tea", "steps": [', "tasks.json")),
    Case("graph-run-tasks-json-malformed", "graph", RUN + " --steps {tmp}/tasks.json",
         ("tasks.json", "expected a tasks.json"),
         prep=yaml_file('[{"id": "tea"}]', "tasks.json")),

    # --- model folders
    Case("model-kig-no-model-index", "model", "generate --image {tmp}/start.png --skill tea --kig {tmp}/empty "
         "--out {out} --no-progress", ("empty", "model_index.json"), prep=lambda c: (empty_dir(c), png(c))[0]),
    Case("model-kig-corrupt-unet", "model", "generate --image {tmp}/start.png --skill tea --kig {tmp}/kig "
         "--out {out} --no-progress", ("unet", "cannot load"), prep=kig_copy(corrupt_unet=True)),
    Case("model-sbd-checkpoint-missing", "model", SEGMENT + " --method sbd --param checkpoint=/nonexistent",
         ("/nonexistent", "not found")),
    Case("model-video-encoder-empty-dir", "model", "embed {clip} --out {out} --encoder video:{tmp}/empty "
         "--no-progress", ("empty", "not a procvid model folder"), prep=empty_dir),
    Case("model-script-empty-dir", "model", "graph predict --model {tmp}/empty --prefix 1",
         ("empty", "not a procvid model folder"), prep=empty_dir),

    # --- config values
    Case("cfg-run-fps-text", "config", RUN + " --config {tmp}/bad.yaml", ("bad.yaml", "fps", "fast"),
         prep=yaml_file('fps: "fast"\n')),
    Case("cfg-run-unknown-key", "config", RUN + " --config {tmp}/bad.yaml", ("bad.yaml", "fsp"),
         prep=yaml_file("fsp: 2\n")),
    Case("cfg-run-yaml-syntax", "config", RUN + " --config {tmp}/bad.yaml", ("bad.yaml", "not valid YAML"),
         prep=yaml_file("fps: [2\nmethod: uvd\n")),
    Case("cfg-run-missing", "config", RUN + " --config {tmp}/missing.yaml", ("missing.yaml", "No such file")),
    Case("cfg-run-not-a-mapping", "config", RUN + " --config {tmp}/bad.yaml", ("bad.yaml", "mapping"),
         prep=yaml_file("- fps: 2\n- method: uvd\n")),
    Case("cfg-demo-missing", "config", "demo --out {out} --config {tmp}/missing.yaml --no-progress",
         ("missing.yaml", "No such file")),
    Case("cfg-train-missing", "config", "train clip --config {tmp}/missing.yaml", ("missing.yaml", "No such file")),
    Case("cfg-train-yaml-syntax", "config", "train clip --config {tmp}/bad.yaml", ("bad.yaml", "YAML"),
         prep=yaml_file("trainer: {max_steps: 3\n")),
    Case("cfg-train-unknown-option", "config", "train clip --trainer.max_stepz 3", ("max_stepz", "unrecognized")),
    Case("cfg-train-unknown-model", "config", "train nosuchmodel", ("nosuchmodel", "unknown model")),

    # --- inputs
    Case("in-missing-path", "input", "embed {tmp}/nope.mp4 --out {out} " + FAST, ("nope.mp4", "no such file")),
    Case("in-empty-folder", "input", "embed {tmp}/empty --out {out} " + FAST, ("empty", "no video"), prep=empty_dir),
    Case("in-list-missing-entry", "input", "embed {tmp}/list.txt --out {out} " + FAST + " --num-frames 2",
         ("gone.mp4", "No such file"), rc=1, prep=video_list, after=failures_name("gone.mp4")),
    Case("in-zero-byte-video", "input", "embed {clip} {tmp}/zero.mp4 --out {out} " + FAST + " --num-frames 2",
         ("zero.mp4", "empty"), rc=1, prep=junk_video("zero.mp4", b""), after=failures_name("zero.mp4")),
    Case("in-random-bytes-video", "input", "embed {clip} {clip2} {tmp}/junk.mp4 --out {out} " + FAST
         + " --num-frames 2", ("junk.mp4", "cannot open"), rc=1, prep=junk_video("junk.mp4", random_bytes()),
         after=failures_name("junk.mp4")),
    Case("in-image-is-a-folder", "input", "generate --image {tmp}/empty --skill tea --out {out}",
         ("empty", "is a folder"),
         prep=empty_dir),
    Case("in-image-missing", "input", "generate --image {tmp}/nope.png --skill tea --out {out}",
         ("nope.png", "not found")),
    Case("in-image-is-text", "input", "generate --image {tmp}/start.png --skill tea --out {out}",
         ("start.png", "not a readable image"), prep=junk_video("start.png", "not an image\n")),
    Case("in-skill-empty", "input", "generate --image {tmp}/start.png --skill '' --out {out}", ("--skill",),
         prep=png),
    Case("in-segment-missing-features", "input", "segment {tmp}/nope.json --out {out} --no-progress",
         ("nope.json", "no such file")),
    Case("opt-mistakes-unknown-setting", "options", "mistakes --data {world} --method precondition --set nope=1 "
         "--out {out}", ("--set", "nope=1")),
    Case("opt-mistakes-setting-value", "options", "mistakes --data {world} --method probability --set "
         "threshold=low --out {out}", ("threshold", "low")),
    Case("graph-mistakes-graphs-not-node-link", "graph", "mistakes --data {world} --method precondition --graphs "
         "{tmp}/g --out {out}", ("bad.json", "node-link"), prep=yaml_file("{}", "g/bad.json")),
]


# ---------------------------------------------------------------------------------------------- running

@pytest.fixture(scope="module")
def shared(small_world, tmp_path_factory):
    """One world video embedded with the tiny random encoder and cut into uniform segments."""
    root = tmp_path_factory.mktemp("bad_inputs_shared")
    video = sorted((small_world / "videos").glob("tea_*.mp4"))[0]
    assert main(["segment", str(video), "--out", str(root / "seg"), "--features", str(root / "feat"),
                 "--method", "uniform", "--encoder", ENC, "--keyframes", "none", "--no-progress"]) == 0
    return root, video


@contextlib.contextmanager
def cli_warnings():
    """Python warnings shown on stderr as the console script shows them (Python's default filters),
    not recorded by pytest, and shown again even where an earlier case already raised them."""
    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))

    with warnings.catch_warnings():
        warnings.resetwarnings()
        for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
            warnings.simplefilter("ignore", category)
        warnings.showwarning = show
        yield


def snapshot(roots: list[Path], skip: list[Path]) -> dict:
    stamps = {}
    for root in roots:
        for p in [root, *root.rglob("*")]:
            if any(p == s or s in p.parents for s in skip):
                continue
            st = p.lstat()
            stamps[str(p)] = None if p.is_dir() and not p.is_symlink() else (st.st_size, st.st_mtime_ns)
    return stamps


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(case, shared, small_world, tmp_path, monkeypatch, capfd):
    seg_root, video = shared
    stem = video.stem
    c = {"tmp": tmp_path, "out": tmp_path / "out", "world": small_world, "videos": VIDEOS, "clip": CLIP,
         "clip2": CLIP2, "wclip": video, "stem": stem, "shared": seg_root, "seg": seg_root / "seg",
         "segfile": seg_root / "seg" / f"{stem}.segments.json", "feat": seg_root / "feat" / f"{stem}.json",
         "kig": REPO_ROOT / "checkpoints" / "procvid-kig", "mounts": []}
    try:
        if case.prep:
            c.update(case.prep(c) or {})
        argv = shlex.split(case.argv.format(**c))
        roots = [tmp_path, small_world, seg_root, REPO_ROOT / "checkpoints", REPO_ROOT / "configs"]
        before = snapshot(roots, [c["out"]])
        if case.sub:
            done = subprocess.run([sys.executable, "-m", "procvid.cli", *argv], cwd=tmp_path, capture_output=True,
                                  text=True, timeout=300, env={**os.environ, "TQDM_DISABLE": "1"})
            rc, err = done.returncode, done.stderr
        else:
            monkeypatch.chdir(tmp_path)
            capfd.readouterr()
            with cli_warnings():
                rc = main(argv)
            err = capfd.readouterr().err
        after = snapshot(roots, [c["out"]])
        print(f"[{case.id}] exit {rc}; stderr:\n{err}")  # shown with -s or on failure
        check(case, c, rc, err)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k, -1) != after.get(k, -1))
        assert not changed, f"changed outside --out: {changed}"
        if case.after:
            case.after(c, rc, err)
    finally:
        for where in reversed(c["mounts"]):
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def check(case: Case, c: dict, rc: int, err: str) -> None:
    allowed = case.rc if isinstance(case.rc, tuple) else (case.rc,)
    assert rc in allowed, f"exit code {rc}, expected {case.rc}; stderr:\n{err}"
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    says = [s.format(**c) for s in case.says]
    if rc == 2:
        assert len(lines) == 1, f"expected one line on stderr, got {len(lines)}:\n{err}"
        for s in says:
            assert s in lines[0], f"{s!r} not in {lines[0]!r}"
    elif rc == 1:
        assert lines and all(line.startswith("WARNING") for line in lines), err
        assert (c["out"] / case.failures).is_file(), f"no {case.failures} in OUT"
        for s in says:
            assert any(s in line for line in lines), f"{s!r} not in stderr:\n{err}"
    else:
        assert all(line.startswith(("INFO", "WARNING")) for line in lines), err


def test_the_table_covers_every_class_and_command():
    counts = Counter(case.cls for case in CASES)
    assert len(CASES) >= 60 and len({case.id for case in CASES}) == len(CASES)
    assert set(counts) == {"security", "options", "output", "annotation", "graph", "model", "config", "input"}
    commands = {shlex.split(case.argv)[0] for case in CASES}
    assert commands == {"demo", "run", "synth", "embed", "segment", "ground", "train", "graph", "eval", "generate",
                        "list", "mistakes"}
