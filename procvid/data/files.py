"""File access shared by the readers: locate a dataset folder, read JSON/CSV with one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.paths import shared_data_dir


def dataset_root(root, default_subdir: str) -> Path:
    """`root` if given, else shared_data_dir()/default_subdir; it must be an existing folder."""
    path = Path(root) if root is not None else shared_data_dir() / default_subdir
    if not path.is_dir():
        hint = "" if root is not None else " (set PROCVID_DATA to the shared data folder)"
        raise ProcvidError(f"dataset folder not found: {path}{hint}")
    return path


def require(path: Path) -> Path:
    if not path.exists():
        raise ProcvidError(f"missing annotation file: {path}")
    return path


def read_json(path: Path):
    try:
        with open(require(path), encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise ProcvidError(f"{path}: invalid JSON ({e})") from None


def read_csv_rows(path: Path) -> list[list[str]]:
    """Non-empty rows of a header-less CSV file."""
    with open(require(path), newline="", encoding="utf-8") as f:
        return [row for row in csv.reader(f) if row and any(cell.strip() for cell in row)]


def read_csv_dicts(path: Path) -> list[dict[str, str]]:
    with open(require(path), newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))
