"""Annotation readers. load_dataset("crosstask") or load_dataset(PATH) returns a ProcedureDataset."""

from __future__ import annotations

from pathlib import Path

from procvid.errors import ProcvidError
from procvid.registry import DATASETS

# DATASETS holds each reader's loader(root=None, ...); its module is imported on use, so `procvid --help`
# stays fast (`procvid list datasets`)

# a file or folder that tells a dataset folder's format, checked in this order
MARKERS = (
    ("tasks.json", "synthetic"),
    ("tasks_primary.txt", "crosstask"),
    ("crosstask_release/tasks_primary.txt", "crosstask"),
    ("coin_train_70.json", "coin"),
    ("schema/coin_valid.json", "coin"),
    ("annotation_json/complete_step_annotations.json", "captaincook4d"),
    ("niv_action_idx.json", "niv"),
    ("goalstep_valid.json", "ego4d"),
    ("crosstask_wikihow_output_sequences.json", "graph_script"),
    ("dtgl/Assembly101-O_action_dict.json", "assembly101"),
)


def detect_format(path: Path) -> str:
    for marker, name in MARKERS:
        if (path / marker).exists():
            return name
    raise ProcvidError(f"{path}: unrecognised dataset folder (no {', '.join(m for m, _ in MARKERS)})")


def load_dataset(name_or_path, **kwargs):
    """A dataset by name (one of DATASETS, root under the shared data folder) or by folder path."""
    name = str(name_or_path)
    if name in DATASETS.names():
        return DATASETS.get(name)(**kwargs)
    path = Path(name_or_path)
    if not path.exists():
        raise ProcvidError(f"unknown dataset {name!r}: not a folder and not one of {', '.join(DATASETS.names())}")
    if not path.is_dir():
        raise ProcvidError(f"{path}: a dataset is a folder, not a file")
    fmt = detect_format(path)
    if fmt == "crosstask" and not (path / "tasks_primary.txt").exists():
        path = path / "crosstask_release"
    return DATASETS.get(fmt)(root=path, **kwargs)
