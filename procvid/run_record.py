"""The record of a finished `procvid run` (OUT/.procvid-run.json), so a rerun that changes nothing
costs a few stat calls per video.

A finished run (no failed input) records the stamp of everything it read and of everything it wrote.
A rerun whose inputs (the files' sizes and times, the settings, the code's stage versions, the shipped
models) and outputs (every file under OUT) are unchanged gets the recorded summary back without
loading a model or reading a video's outputs. Anything else (a changed setting, a deleted timeline, an
input that failed) goes through the stages, each of which redoes only what is not current
(procvid.outputs).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from procvid.outputs import CODE_VERSIONS, LOCK, atomic_write, digest

log = logging.getLogger(__name__)

RUN_RECORD = ".procvid-run.json"


def _files(path) -> list:
    """(path, size, mtime) of a file or of every file under a folder."""
    path = Path(path).resolve()
    if path.is_file():
        st = path.stat()
        return [(str(path), st.st_size, st.st_mtime_ns)]
    out = []
    for root, dirs, names in os.walk(path):
        dirs.sort()
        for name in sorted(names):
            st = os.stat(os.path.join(root, name))
            out.append((os.path.join(root, name), st.st_size, st.st_mtime_ns))
    return out


def run_key(paths: list, settings: dict, *extra) -> str | None:
    """The stamp of a run's inputs (files or folders; None entries ignored), settings and shipped
    models; None when an input is not a file or folder (a dataset by name): the stages decide then."""
    from procvid.paths import CHECKPOINTS_DIR

    named = [p for p in paths if p is not None]
    if not all(Path(p).exists() for p in named):
        return None
    models = [f for f in _files(CHECKPOINTS_DIR) if not f[0].endswith(".md")] if CHECKPOINTS_DIR.is_dir() else []
    return digest("run", CODE_VERSIONS, settings, *extra, [_files(p) for p in named], models)


def _outputs_digest(out: Path) -> str:
    return digest([f for f in _files(out) if Path(f[0]).name not in (RUN_RECORD, LOCK)])


def load_finished(out: str | os.PathLike, key: str | None) -> dict | None:
    """The recorded result of the finished run in `out` with this key, when nothing under `out` changed."""
    out = Path(out)
    if key is None:
        return None
    try:
        record = json.loads((out / RUN_RECORD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("key") != key or record.get("outputs") != _outputs_digest(out):
        return None
    log.info("nothing changed since the finished run recorded in %s", out / RUN_RECORD)
    return record["result"]


def save(out: str | os.PathLike, key: str | None, result: dict | None) -> None:
    """Record a finished run's result (plain JSON); None (a run with failures) removes the record."""
    out = Path(out)
    if key is None or result is None:
        (out / RUN_RECORD).unlink(missing_ok=True)
        return
    try:
        text = json.dumps({"key": key, "outputs": _outputs_digest(out), "result": result}, default=float)
    except (TypeError, ValueError):  # scores that are not plain JSON: no record, the stages decide
        return
    atomic_write(out / RUN_RECORD, text)
