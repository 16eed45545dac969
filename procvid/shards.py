"""The corpus-scale layout: a stage's per-video outputs kept in Parquet shards instead of files.

With the per-video layout (the default for small runs) every video leaves a dozen small files; at
HowTo100M scale that is millions of files. With ``--layout shards`` each stage keeps its
per-video results as rows of a few Parquet files, ``<folder>/<name>-NNNNN.parquet``, one row per
video with the columns

``key`` (the video's output name: its path relative to the input folder, without suffix),
``stamp`` (what the row was computed from: procvid.outputs.stamp, or the feature cache key),
``doc`` (the stage's per-video JSON document, as the per-video layout would write it) and
``embeddings`` (features only: float16 bytes, ``np.frombuffer(b, np.float16).reshape(T, D)``
with T and D in the doc as ``num_frames`` and ``dim``; null in other stages),

plus ``<name>-index.parquet`` (key, shard file, row), rewritten when a run finishes. Any Parquet
reader opens them (pyarrow, pandas, DuckDB, Spark).

A key's shard is fixed by a hash of the key and the shard count, which is chosen at the first write
(about SHARD_SIZE videos per shard) and kept in ``<name>-shards.json``, so adding videos never
moves the others. Work is done shard by shard (`ordered`) and a shard is rewritten, atomically,
once every video of it that this run handles is done: a run killed mid-way loses at most the
shards in progress, and a rerun redoes only those (rows whose stamp is current are kept).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import threading
from collections import OrderedDict
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.outputs import atomic_write

LAYOUTS = ("auto", "files", "shards")
SHARD_SIZE = 256  # videos per shard on average: shards of a few MB of features
AUTO_SHARDS_ABOVE = 1000  # layout "auto": per-video files up to this many videos, shards above
COLUMNS = ("key", "stamp", "doc", "embeddings")


def choose_layout(layout: str, videos: int, features_dir: str | os.PathLike | None = None) -> str:
    """files or shards. auto: the layout the features folder already has (so that adding videos never
    moves a corpus to the other layout and recomputes it), else shards above AUTO_SHARDS_ABOVE videos."""
    if layout not in LAYOUTS:
        raise ProcvidError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    if layout != "auto":
        return layout
    if features_dir is not None and Path(features_dir).is_dir():
        if has_shards(features_dir, "features"):
            return "shards"
        if next(Path(features_dir).rglob("*.safetensors"), None) is not None:
            return "files"
    return "shards" if videos > AUTO_SHARDS_ABOVE else "files"


def shard_files(folder: str | os.PathLike, name: str) -> list[Path]:
    """The shard files of store `name` under `folder` (sorted)."""
    return sorted(p for p in Path(folder).glob(f"{name}-[0-9]*.parquet"))


def has_shards(folder: str | os.PathLike, name: str) -> bool:
    return (Path(folder) / f"{name}-shards.json").exists() and bool(shard_files(folder, name))


def split_ref(ref: str | os.PathLike) -> tuple[Path, str] | None:
    """(shard file, key) of a row reference ``<shard file>#<key>``, or None for a plain path."""
    text = str(ref)
    if "#" not in text or Path(text).exists():
        return None
    found = _REF.match(text)  # split after the shard file's name: a key may hold '#' too
    return (Path(found[1]), found[2]) if found else None


_REF = re.compile(r"(.*?-[0-9]{5,}\.parquet)#(.*)\Z", re.S)
_tables: OrderedDict = OrderedDict()  # (shard file, mtime) -> {key: row}: the last shards read
_tables_lock = threading.Lock()


def read_shard(path: str | os.PathLike, cached: bool = True) -> dict[str, dict]:
    """Every row of one shard file as {key: {"stamp", "doc" (dict), "embeddings" (bytes or None)}}.
    The last few shards read are kept (the stages read them in shard order); `cached=False` reads the
    file afresh (what a rewrite keeps must be what is on disk, whatever a reader did to its copy)."""
    import pyarrow.parquet as pq

    path = Path(path)
    try:
        ident = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError:
        return {}
    with _tables_lock:
        if cached and ident in _tables:
            _tables.move_to_end(ident)
            return _tables[ident]
    try:
        table = pq.read_table(path).to_pydict()
    except (OSError, ValueError) as e:
        raise ProcvidError(f"{path}: not a readable Parquet shard ({' '.join(str(e).split())[:160]})") from None
    if any(c not in table for c in COLUMNS):
        raise ProcvidError(f"{path}: not a procvid shard (columns {', '.join(COLUMNS)} expected)")
    rows = {k: {"stamp": s, "doc": json.loads(d), "embeddings": e}
            for k, s, d, e in zip(table["key"], table["stamp"], table["doc"], table["embeddings"])}
    with _tables_lock:
        _tables[ident] = rows
        while len(_tables) > 3:
            _tables.popitem(last=False)
    return rows


def read_row(ref: str | os.PathLike) -> dict:
    """The row a reference ``<shard file>#<key>`` names; one clear line when it is not there."""
    split = split_ref(ref)
    if split is None:
        raise ProcvidError(f"{ref}: not a shard row reference (<file>.parquet#<key>)")
    path, key = split
    if not path.exists():
        raise ProcvidError(f"{path}: shard file missing")
    row = read_shard(path).get(key)
    if row is None:
        raise ProcvidError(f"{path}: has no row {key!r} (the shard was rewritten: rerun the stage)")
    return row


def _shard_keys(path: Path) -> list[str]:
    """The key column of one shard file (only that column is read)."""
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=["key"]).column("key").to_pylist()
    except (OSError, ValueError, KeyError) as e:
        raise ProcvidError(f"{path}: not a readable Parquet shard ({' '.join(str(e).split())[:160]})") from None


def _hash(key: str) -> int:
    return int(hashlib.sha1(key.encode()).hexdigest()[:12], 16)


class ShardStore:
    """The rows of one stage's store `name` under `folder` (see the module docstring).

    expected: how many videos the run has; it sets the shard count at the first write, unless
    `count` does (a stage takes the count of the features' store, so that going through its videos
    shard by shard also reads their features shard by shard)."""

    def __init__(self, folder: str | os.PathLike, name: str, expected: int = 1, count: int | None = None):
        self.folder, self.name = Path(folder).resolve(), name  # references stay valid from any directory
        self._meta = self.folder / f"{name}-shards.json"
        try:
            self.count, self._fresh = int(json.loads(self._meta.read_text())["shards"]), False
        except (OSError, ValueError, KeyError, TypeError):  # nothing written yet: written with the first shard
            self.count, self._fresh = count or max(1, math.ceil(expected / SHARD_SIZE)), True
        self._new: dict[int, dict[str, dict]] = {}  # shard -> key -> row written by this run
        self._pending: dict[int, set[str]] = {}  # shard -> keys still to finish in this run
        self._touched: set[int] = set()

    def shard_of(self, key: str) -> int:
        return _hash(key) % self.count

    def path(self, shard: int) -> Path:
        return self.folder / f"{self.name}-{shard:05d}.parquet"

    def ref(self, key: str) -> str:
        """A reference to the row of `key`, for the next stage (``<shard file>#<key>``)."""
        return f"{self.path(self.shard_of(key))}#{key}"

    def ordered(self, items, key=str) -> list:
        """`items` (with their `key`) in the order the work goes: shard by shard, so each shard is
        written once and early."""
        return sorted(items, key=lambda item: (self.shard_of(key(item)), key(item)))

    def get(self, key: str, stamp: str | None = None) -> dict | None:
        """The stored row of `key` (with `stamp`, when given), or None."""
        shard = self.shard_of(key)
        row = self._new.get(shard, {}).get(key) or read_shard(self.path(shard)).get(key)
        return row if row is not None and (stamp is None or row["stamp"] == stamp) else None

    def plan(self, items, key=str) -> list:
        """The items (with their `key`) this run will `put` or `skip`, in the order to do them (`ordered`):
        a shard is written when its last one is done."""
        items = self.ordered(items, key)
        for item in items:
            self._pending.setdefault(self.shard_of(key(item)), set()).add(key(item))
        return items

    def put(self, key: str, stamp: str, doc: dict, embeddings: bytes | None = None) -> None:
        shard = self.shard_of(key)
        self._new.setdefault(shard, {})[key] = {"stamp": stamp, "doc": doc, "embeddings": embeddings}
        self._touched.add(shard)
        self.skip(key)

    def skip(self, key: str) -> None:
        """`key` is done without a new row (failed, or its row is current)."""
        shard = self.shard_of(key)
        pending = self._pending.get(shard)
        if pending is not None:
            pending.discard(key)
            if not pending:
                self._write(shard)

    def _write(self, shard: int) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self._pending.pop(shard, None)
        new = self._new.pop(shard, {})
        if not new:
            return
        rows = {**read_shard(self.path(shard), cached=False), **new}
        keys = sorted(rows)
        table = pa.table({
            "key": pa.array(keys, pa.string()),
            "stamp": pa.array([rows[k]["stamp"] for k in keys], pa.string()),
            "doc": pa.array([json.dumps(rows[k]["doc"], default=str) for k in keys], pa.string()),
            "embeddings": pa.array([rows[k]["embeddings"] for k in keys], pa.binary()),
        })
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        if self._fresh:  # the shard count first: a key's shard must not change once a shard exists
            atomic_write(self._meta, json.dumps({"format": "procvid-shards", "name": self.name,
                                                 "shards": self.count, "columns": list(COLUMNS)}) + "\n")
            self._fresh = False
        atomic_write(self.path(shard), buf.getvalue())

    def close(self) -> None:
        """Write the shards still open (a run that stops early) and, if any shard changed, the index."""
        for shard in list(self._pending) + list(self._new):
            if shard in self._new:
                self._write(shard)
        self._pending.clear()
        if self._touched or not (self.folder / f"{self.name}-index.parquet").exists():
            self.write_index()
        self._touched.clear()

    def write_index(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        keys, files, rows = [], [], []
        for path in shard_files(self.folder, self.name):
            for i, key in enumerate(_shard_keys(path)):
                keys.append(key), files.append(path.name), rows.append(i)
        buf = io.BytesIO()
        pq.write_table(pa.table({"key": pa.array(keys, pa.string()), "shard": pa.array(files, pa.string()),
                                 "row": pa.array(rows, pa.int64())}), buf)
        atomic_write(self.folder / f"{self.name}-index.parquet", buf.getvalue())

    def keys(self) -> list[str]:
        """Every key stored (from the shards on disk), shard by shard."""
        return [k for p in shard_files(self.folder, self.name) for k in sorted(_shard_keys(p))]

    def rows(self):
        """(key, shard file, row) of every stored row, shard by shard (each shard read once)."""
        for path in shard_files(self.folder, self.name):
            rows = read_shard(path)
            for key in sorted(rows):
                yield key, path, rows[key]

    def refs(self) -> list[str]:
        """References to every stored row, shard by shard."""
        return [self.ref(k) for k in self.keys()]


class StageDocs:
    """Where a stage keeps one JSON document per video: ``<folder>/<stem><suffix>`` with its stamp in
    the folder's manifest (per-video layout), or a row of the store ``name`` (shards: the shard
    count given, or kept from an earlier run). The stage asks `current`, then `write`s or `skip`s."""

    def __init__(self, folder: str | os.PathLike, name: str, suffix: str, shards: int | None = None):
        from procvid.outputs import Manifest

        self.folder, self.suffix = Path(folder), suffix
        self.store = ShardStore(folder, name, count=shards) if shards else None
        self.manifest = None if self.store else Manifest(folder)

    def path(self, stem: str) -> Path:
        """The file that holds the document of `stem` (its own file, or its shard)."""
        return self.store.path(self.store.shard_of(stem)) if self.store else self.folder / f"{stem}{self.suffix}"

    def plan(self, items, key=str) -> list:
        """The items (with their stem, `key`) to go through, in the order to do them (ShardStore.plan)."""
        return self.store.plan(items, key) if self.store else list(items)

    def current(self, stem: str, stamp: str) -> dict | None:
        """The stored document of `stem` if it was made with `stamp`, else None."""
        if self.store:
            row = self.store.get(stem, stamp)
            return row["doc"] if row else None
        path = self.path(stem)
        if not self.manifest.is_current(path, stamp):
            return None
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return doc if isinstance(doc, dict) else None

    def write(self, stem: str, stamp: str, doc: dict) -> None:
        if self.store:
            self.store.put(stem, stamp, doc)
        else:
            path = self.path(stem)
            atomic_write(path, json.dumps(doc, indent=1, default=str) + "\n")
            self.manifest.record(path, stamp)

    def skip(self, stem: str) -> None:
        if self.store:
            self.store.skip(stem)

    def close(self) -> None:
        if self.store:
            self.store.close()
