"""Writing stage outputs: one atomic write for every file, and one rule for "this output is current".

An output is current when the stamp recorded for it equals the stamp its stage would record now: a
digest of the content of its inputs, the stage's settings and the stage's code version
(`CODE_VERSIONS`, raised when a stage's outputs change for the same inputs). Feature entries keep
their stamp fields in their own sidecar (procvid.features); every other output's stamp lives in the
manifest of its folder, `.procvid-manifest.jsonl`, one line appended after the output is written, so
a run killed in between simply redoes that output. A rerun of a finished run therefore rewrites
nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

MANIFEST = ".procvid-manifest.jsonl"
CODE_VERSIONS = {"segment": 1, "timeline": 1, "ground": 1, "graph": 1, "generate": 1, "report": 1}


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a file so that a reader (or a rerun after an interruption) never finds half of it."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_save(path: str | os.PathLike, save: Callable[[io.BytesIO], None]) -> Path:
    """atomic_write for writers that take a file object (PIL images, matplotlib figures)."""
    buf = io.BytesIO()
    save(buf)
    return atomic_write(path, buf.getvalue())


def digest(*parts) -> str:
    """A stable digest of JSON-like parts (settings, file digests, code version)."""
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """Digest of a file's content ("" when it is missing)."""
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def stamp(stage: str, inputs: Iterable, settings: dict) -> str:
    """The stamp of an output: its inputs' content (digests or values), settings and code version."""
    return digest(stage, CODE_VERSIONS[stage], list(inputs), settings)


class Manifest:
    """The stamps of the outputs under one folder (read once, appended per written output)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / MANIFEST
        self._stamps: dict[str, str] | None = None

    def _key(self, output: Path) -> str:
        return Path(os.path.relpath(output, self.folder)).as_posix()

    def stamps(self) -> dict[str, str]:
        if self._stamps is None:
            self._stamps = {}
            try:
                lines = self.path.read_text(encoding="utf-8").splitlines()
            except OSError:
                lines = []
            for line in lines:
                try:
                    record = json.loads(line)
                    self._stamps[record["output"]] = record["stamp"]
                except (ValueError, KeyError, TypeError):  # a line cut by a kill: that output is redone
                    continue
        return self._stamps

    def is_current(self, output: str | os.PathLike, stamp: str, *also: str | os.PathLike) -> bool:
        """`output` (and the files `also` written with it) exist and were recorded with `stamp`."""
        output = Path(output)
        return self.stamps().get(self._key(output)) == stamp and all(Path(p).exists() for p in (output, *also))

    def record(self, output: str | os.PathLike, stamp: str) -> None:
        key = self._key(Path(output))
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"output": key, "stamp": stamp}) + "\n")
            f.flush()
        self.stamps()[key] = stamp
