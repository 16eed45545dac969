"""Feature cache: per video `<stem>.safetensors` (embeddings T x D, float16) + `<stem>.json`.

The JSON sidecar is written last and holds a checksum of the tensor file, so it acts as the
commit marker: an entry is valid only if both files exist, the checksum matches, and the
sidecar matches the video (path, size, mtime) and the settings (encoder id, sampling, size).
A run killed at any point therefore leaves either a valid entry or one that is recomputed.

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


def write_entry(out_dir, rel, embeddings: np.ndarray, timestamps: np.ndarray, meta: dict) -> Path:
    """Atomically write one video's features; `meta` must include the cache_key fields."""
    from safetensors.numpy import save

    if len(embeddings) != len(timestamps):
        raise ValueError("embeddings and timestamps differ in length")
    tensor_path, json_path = entry_paths(out_dir, rel)
    blob = save({"embeddings": np.ascontiguousarray(embeddings, dtype=np.float16)})
    atomic_write(tensor_path, blob)
    sidecar = {
        **meta,
        "num_frames": int(len(timestamps)),
        "dim": int(embeddings.shape[1]),
        "timestamps": [round(float(t), 6) for t in timestamps],
        "tensor_file": tensor_path.name,
        "tensor_sha1": hashlib.sha1(blob).hexdigest(),
    }
    atomic_write(json_path, json.dumps(sidecar, indent=1).encode())
    return json_path


def read_sidecar(json_path: Path) -> dict | None:
    try:
        return json.loads(Path(json_path).read_text())
    except (OSError, ValueError):
        return None


def is_valid(out_dir, rel, key: dict) -> bool:
    """True if a complete, uncorrupted entry for exactly this video and these settings exists."""
    tensor_path, json_path = entry_paths(out_dir, rel)
    meta = read_sidecar(json_path)
    if meta is None or any(meta.get(k) != key[k] for k in _KEY_FIELDS):
        return False
    return tensor_path.exists() and meta.get("tensor_sha1") == _sha1(tensor_path)


def feature_sidecars(folder: str | os.PathLike) -> list[Path]:
    """The sidecars of every feature entry under `folder` (sorted), or a one-line error when there is none."""
    found = sorted(p for p in Path(folder).rglob("*.json") if p.with_suffix(".safetensors").exists())
    if not found:
        raise ProcvidError(f"{folder}: no feature files (procvid embed writes them)")
    return found


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray, dict]:
    """Load (embeddings float32 [T,D], timestamps [T], sidecar) from a .json or .safetensors path."""
    from safetensors.numpy import load

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
