"""Writing stage outputs: one atomic write for every file, one rule for "this output is current",
and the guards every output folder gets.

An output is current when the stamp recorded for it equals the stamp its stage would record now: a
digest of the content of its inputs, the stage's settings and the stage's code version
(`CODE_VERSIONS`, raised when a stage's outputs change for the same inputs). Feature entries keep
their stamp fields in their own sidecar (procvid.features); every other output's stamp lives in the
manifest of its folder, `.procvid-manifest.jsonl`, one line appended after the output is written, so
a run killed in between simply redoes that output. A rerun of a finished run therefore rewrites
nothing.

Guards (`prepare_output_dir`, called by every stage for its folder): the folder is created or must be
a writable folder; one procvid process at a time writes into it (an exclusive lock, `.procvid.lock`;
a second one stops with a clear message); temporary files a killed run left are removed. Writes
never go through a symlink inside an output folder: files are replaced, not followed, sub-folders
that are symlinks are refused, and appends open with O_NOFOLLOW.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from procvid.errors import ProcvidError

_UMASK = os.umask(0)
os.umask(_UMASK)
_FILE_MODE = 0o666 & ~_UMASK
MANIFEST = ".procvid-manifest.jsonl"
LOCK = ".procvid.lock"
_held: dict[Path, int] = {}  # output folders this process holds the lock of -> lock file descriptor


def refuse_symlink(path: str | os.PathLike) -> Path:
    """`path` itself, unless it is a symlink (inside an output folder those are refused, never followed)."""
    path = Path(path)
    if path.is_symlink():
        raise ProcvidError(f"{path}: is a symlink inside the output folder; procvid does not write through "
                           "symlinks (remove it)")
    return path


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create a folder inside an output folder (see refuse_symlink)."""
    path = refuse_symlink(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ProcvidError(f"{path}: exists and is not a folder") from None
    except OSError as e:
        raise ProcvidError(f"{path}: cannot create folder ({e.strerror})") from None
    return path


def prepare_output_dir(path: str | os.PathLike) -> Path:
    """Create (or check) a stage's output folder, take its lock and remove stale temporary files."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ProcvidError(f"{path}: exists and is not a folder (choose another --out)")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ProcvidError(f"{path}: cannot create the output folder ({e.strerror})") from None
    key = path.resolve()
    if key in _held:
        return path
    try:
        fd = os.open(path / LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        raise ProcvidError(f"{path}: cannot write into the output folder ({e.strerror})") from None
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise ProcvidError(f"{path}: another procvid process is writing into this folder; wait for it to finish "
                           "or choose another --out") from None
    _held[key] = fd
    for stale in path.rglob(".*.tmp"):  # left by a killed run: nobody else writes here while we hold the lock
        stale.unlink(missing_ok=True)
    return path


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line (flushed, so a killed run keeps it), never through a symlink."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise ProcvidError(f"{path}: is a symlink; procvid does not write through symlinks (remove it)") from None
        raise
    try:
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line + "\n")
    except OSError as e:  # a full disk: the error names the file (a write error carries no file name)
        raise OSError(e.errno, e.strerror, str(path)) from None
CODE_VERSIONS = {"segment": 1, "timeline": 1, "ground": 1, "graph": 1, "generate": 1, "report": 1, "mistakes": 1,
                 "discover": 1, "forecast": 1}


def atomic_write(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a file so that a reader (or a rerun after an interruption) never finds half of it."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode()
    ensure_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, _FILE_MODE)  # mkstemp makes 0600 files; outputs get the usual mode (a report others can read)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _fault_point(path, "tmp")
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and not e.filename:  # a full disk: name the file being written
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise
    _fault_point(path, "done")
    return path


_FAULT = os.environ.get("PROCVID_FAULT")  # crash tests only: "GLOB:PHASE:N", see _fault_point
_fault_hits = 0


def _fault_point(path: Path, phase: str) -> None:
    """Crash tests (tests/test_crash.py): with PROCVID_FAULT="GLOB:PHASE:N" the process kills itself
    (SIGKILL, as a user or the OOM killer would) at the N-th write of a file matching GLOB, PHASE
    "tmp" with the new content still in its temporary file, or "done" just after it replaced the
    file. Unset in normal use."""
    global _fault_hits
    if not _FAULT:
        return
    pattern, want, count = _FAULT.rsplit(":", 2)
    if phase == want and path.match(pattern):
        _fault_hits += 1
        if _fault_hits == int(count):
            import signal

            os.kill(os.getpid(), signal.SIGKILL)


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
        append_line(self.path, json.dumps({"output": key, "stamp": stamp}))
        self.stamps()[key] = stamp
