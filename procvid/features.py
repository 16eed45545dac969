"""Feature cache: per video `<stem>.safetensors` (embeddings T x D, float16) + `<stem>.json`.

The JSON sidecar is written last and holds a checksum of the tensor file, so it acts as the
commit marker: an entry is valid only if both files exist, the checksum matches, and the
sidecar matches the video (path, size, mtime) and the settings (encoder id, sampling, size).
A run killed at any point therefore leaves either a valid entry or one that is recomputed.

With the corpus-scale layout (procvid.shards) the same sidecar is a row's ``doc`` in the Parquet
shards ``features-NNNNN.parquet`` and the embeddings its ``embeddings`` bytes (float16, T x D);
the next stages name such an entry ``<shard file>#<key>``, and every reader here takes either form.

Besides the cache key, `meta` may carry extra fields that are stored as given; the embed stage
adds ``decode`` (procvid.video.DecodeReport.to_dict(): backend, frames, sampled target times
covered, decoded span start/end vs. the container's duration, largest gap, decode errors). Only
complete decodes are written: a truncated or damaged video fails instead (procvid.embedding).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from procvid.errors import ProcvidError
from procvid.outputs import atomic_write
from procvid.shards import ShardStore, has_shards, read_row, split_ref

FORMAT_VERSION = 2  # 2: entries carry a decode report; entries of v1 (possibly truncated) are redone
# Sidecar fields that must equal the current request for an entry to be reused.
_KEY_FIELDS = ("format_version", "source", "source_size", "source_mtime", "encoder", "sampling", "frame_size")


def entry_paths(out_dir: str | os.PathLike, rel: str | os.PathLike) -> tuple[Path, Path]:
    """Tensor and sidecar paths for a video at relative path `rel` (mirrors input folders)."""
    stem = Path(out_dir) / Path(rel).with_suffix("")
    return stem.with_name(stem.name + ".safetensors"), stem.with_name(stem.name + ".json")


def cache_key(video: str | os.PathLike, encoder_id: str, sampling: dict, frame_size: int | None) -> dict:
    st = Path(video).stat()
    return {
        "format_version": FORMAT_VERSION,
        "source": str(Path(video).resolve()),
        "source_size": st.st_size,
        "source_mtime": st.st_mtime_ns,
        "encoder": encoder_id,
        "sampling": sampling,
        "frame_size": frame_size,
    }


def _sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def _sidecar(meta: dict, embeddings: np.ndarray, timestamps: np.ndarray, blob: bytes) -> dict:
    if len(embeddings) != len(timestamps):
        raise ValueError("embeddings and timestamps differ in length")
    return {**meta, "num_frames": int(len(timestamps)), "dim": int(embeddings.shape[1]),
            "timestamps": [round(float(t), 6) for t in timestamps], "tensor_sha1": hashlib.sha1(blob).hexdigest()}


def write_entry(out_dir, rel, embeddings: np.ndarray, timestamps: np.ndarray, meta: dict) -> Path:
    """Atomically write one video's features; `meta` must include the cache_key fields."""
    from safetensors.numpy import save

    tensor_path, json_path = entry_paths(out_dir, rel)
    blob = save({"embeddings": np.ascontiguousarray(embeddings, dtype=np.float16)})
    sidecar = {**_sidecar(meta, embeddings, timestamps, blob), "tensor_file": tensor_path.name}
    atomic_write(tensor_path, blob)
    atomic_write(json_path, json.dumps(sidecar, indent=1).encode())
    return json_path


STORE = "features"  # the store name of features in the shard layout (features-NNNNN.parquet)


def entry_key(rel: str | os.PathLike) -> str:
    """A video's key in the shard layout: its output name without suffix."""
    return Path(rel).with_suffix("").as_posix()


def shard_row(embeddings: np.ndarray, timestamps: np.ndarray, meta: dict) -> tuple[dict, bytes]:
    """(sidecar, float16 bytes) of one video's features as a shard row stores them."""
    blob = np.ascontiguousarray(embeddings, dtype=np.float16).tobytes()
    return _sidecar(meta, embeddings, timestamps, blob), blob


def stored_key(key: dict) -> str:
    """The shard row's stamp: the cache key fields."""
    return hashlib.sha1(json.dumps([key[k] for k in _KEY_FIELDS], sort_keys=True).encode()).hexdigest()


def read_sidecar(json_path: Path) -> dict | None:
    """A feature entry's sidecar: a .json file's content or a shard row's doc (None when unreadable)."""
    if split_ref(json_path) is not None:
        try:
            return read_row(json_path)["doc"]
        except ProcvidError:
            return None
    try:
        return json.loads(Path(json_path).read_text())
    except (OSError, ValueError):
        return None


def entry_digest(path) -> str:
    """A digest of a feature entry's content (its sidecar holds the tensor's checksum); "" if unreadable."""
    if split_ref(path) is not None:
        doc = read_sidecar(path)
        return hashlib.sha1(json.dumps(doc, sort_keys=True).encode()).hexdigest() if doc else ""
    try:
        return hashlib.sha1(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def is_valid(out_dir, rel, key: dict) -> bool:
    """True if a complete, uncorrupted entry for exactly this video and these settings exists."""
    tensor_path, json_path = entry_paths(out_dir, rel)
    meta = read_sidecar(json_path)
    if meta is None or any(meta.get(k) != key[k] for k in _KEY_FIELDS):
        return False
    return tensor_path.exists() and meta.get("tensor_sha1") == _sha1(tensor_path)


def feature_sidecars(folder: str | os.PathLike) -> list:
    """Every feature entry under `folder` (sorted): sidecar paths, or row references of a shard
    layout; a one-line error when there is none."""
    if has_shards(folder, STORE):
        return [Path(r) for r in ShardStore(folder, STORE).refs()]
    found = sorted(p for p in Path(folder).rglob("*.json") if p.with_suffix(".safetensors").exists())
    if not found:
        raise ProcvidError(f"{folder}: no feature files (procvid embed writes them)")
    return found


def find_entry(folder: str | os.PathLike, key: str) -> Path | None:
    """The feature entry of the video named `key` (its output name) under `folder`: its sidecar, or a
    reference to its shard row; None when it has none."""
    folder = Path(folder)
    if has_shards(folder, STORE):
        store = ShardStore(folder, STORE)
        return Path(store.ref(key)) if store.get(key) is not None else None
    path = folder / f"{key}.json"
    return path if path.exists() else None


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load (embeddings float32 [T,D], timestamps [T], sidecar) from a .json or .safetensors path."""
    from safetensors.numpy import load

    if split_ref(path) is not None:
        row = read_row(path)
        meta, blob = row["doc"], row["embeddings"] or b""
        if hashlib.sha1(blob).hexdigest() != meta.get("tensor_sha1"):
            raise ProcvidError(f"{path}: feature row is corrupt (checksum mismatch)")
        emb = np.frombuffer(blob, dtype=np.float16).reshape(meta["num_frames"], meta["dim"]).astype(np.float32)
        return emb, np.asarray(meta["timestamps"], dtype=np.float64), meta
    p = Path(path)
    json_path = p.with_suffix(".json") if p.suffix == ".safetensors" else p
    meta = read_sidecar(json_path)
    if meta is None:
        raise ProcvidError(f"{json_path}: missing or unreadable feature sidecar")
    tensor_path = json_path.with_name(meta.get("tensor_file", json_path.stem + ".safetensors"))
    try:
        blob = tensor_path.read_bytes()
    except OSError:
        raise ProcvidError(f"{tensor_path}: feature file missing") from None
    if hashlib.sha1(blob).hexdigest() != meta.get("tensor_sha1"):
        raise ProcvidError(f"{tensor_path}: feature file is corrupt or partial (checksum mismatch)")
    emb = load(blob)["embeddings"].astype(np.float32)
    return emb, np.asarray(meta["timestamps"], dtype=np.float64), meta
