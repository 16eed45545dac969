"""Assembly101-O: the online mistake detection benchmark of "Differentiable Task Graph Learning"
(Seminara et al., NeurIPS 2024) on the Assembly101 mistake annotations (Sener et al. CVPR 2022;
Ding et al. 2023).

annots/<sequence>.csv                  rows start,end,verb,this,that,label,remark (start/end: frame
                                       indices; label correct | mistake | correction)
dtgl/train_split.txt, test_split.txt   135 training and 182 test sequence names (11 of the 328 in neither)
dtgl/Assembly101-O_action_dict.json    {id: "verb-this"}: the 86 key steps (spaces in `this` as "_")
dtgl/train_hash, test_hash             SHA-256 of the benchmark JSON files the published experiments used

The benchmark form (SOURCE.txt there): files in sorted name order; a step is "verb-this" (spaces in
`this` written "_", "position-figurine" read as "attach-figurine"); each sequence is cut after its
first row labelled "mistake" (that row kept; "correction" rows are ordinary steps). So the 135
training sequences are complete and error-free, and the last step of each of the 182 test sequences
is its first mistake (677 steps, 182 mistakes).

In-memory form: one task, "assembly101" (the benchmark's single scenario), whose steps are the 86
dictionary entries (int ids, text "verb-this"); one VideoAnnotation per benchmark sequence, split
"train" or "test", segments in file order without times (StepSegment.start/end None: the benchmark's
order is the file's, and the frame indices are not seconds), the mistake row's StepSegment.errors =
("mistake", remark) (remark dropped when empty). meta: "toy" (the toy id in the name, e.g. "c07c"),
"frames" ([start, end] frame indices per step), "objects" (the `that` column per step).
`benchmark_json` writes a split back in the published JSON form (tests check its SHA-256).
"""

from __future__ import annotations

import json
import re

from procvid.data.files import dataset_root, read_csv_rows, read_json, require
from procvid.data.procedures import ProcedureDataset, Step, StepSegment, Task, VideoAnnotation
from procvid.errors import ProcvidError
from procvid.registry import DATASETS

TASK = "assembly101"  # the benchmark's scenario name
SPLITS = ("train", "test")
DICTIONARY = "dtgl/Assembly101-O_action_dict.json"
REMARK_SPELLING = {"shouln't have happened": "shouldn't have happened"}


def step_name(verb: str, this: str) -> str:
    """The benchmark's key-step name of an annotation row: "attach-turntable_top"."""
    name = f"{verb.strip()}-{this.strip().replace(' ', '_')}"
    return "attach-figurine" if name == "position-figurine" else name


def toy_of(sequence: str) -> str:
    """The toy id in a sequence name: 'nusar-2021_action_both_9011-b06b_9011_user_...' -> 'b06b'."""
    match = re.match(r"nusar-\d+_action_both_\d+-([a-z]\d+[a-z]?)_", sequence)
    return match.group(1) if match else ""


@DATASETS.register("assembly101", "Assembly101-O (DTGL): toy-assembly step sequences, first mistake labelled")
def load_assembly101(root=None) -> ProcedureDataset:
    """The 135 training and 182 test sequences of Assembly101-O, in the benchmark form (module doc)."""
    root = dataset_root(root, "assembly101_mistake")
    names = read_json(root / DICTIONARY)
    try:
        steps = {int(k): Step(int(k), str(v)) for k, v in names.items()}
    except (ValueError, AttributeError):
        raise ProcvidError(f"{root / DICTIONARY}: expected {{id: name}} with integer ids") from None
    id_of = {step.text: sid for sid, step in steps.items()}
    split_of = {}
    for split in SPLITS:
        path = require(root / "dtgl" / f"{split}_split.txt")
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                split_of[line.strip()] = split
    videos = []
    for path in sorted((root / "annots").glob("*.csv")):
        name = path.name.split(".")[0]
        if name not in split_of:
            continue
        segments, frames, objects = [], [], []
        for row in read_csv_rows(path):
            if len(row) < 6:
                raise ProcvidError(f"{path}: row {row} has fewer than 6 columns (start,end,verb,this,that,label)")
            action = step_name(row[2], row[3])
            if action not in id_of:
                raise ProcvidError(f"{path}: step {action!r} is not in {DICTIONARY}")
            try:
                frames.append([int(row[0]), int(row[1])])
            except ValueError:
                raise ProcvidError(f"{path}: start/end {row[0]!r}, {row[1]!r} are not frame numbers") from None
            objects.append(row[4].strip())
            mistake = row[5].strip() == "mistake"
            remark = row[6].strip() if len(row) > 6 else ""
            errors = ("mistake", REMARK_SPELLING.get(remark, remark)) if mistake else ()
            segments.append(StepSegment(id_of[action], None, None, tuple(e for e in errors if e)))
            if mistake:
                break
        meta = {"toy": toy_of(name), "frames": frames, "objects": objects}
        videos.append(VideoAnnotation(name, TASK, segments, split_of[name], meta))
    missing = sorted(set(split_of) - {v.video_id for v in videos})
    if missing:
        raise ProcvidError(f"{root / 'annots'}: no annotation file for {len(missing)} split sequence(s), "
                           f"e.g. {missing[0]}")
    task = Task(TASK, "Assembly101 toy assembly (Assembly101-O)", steps)
    return ProcedureDataset("assembly101", {TASK: task}, videos, root)


def benchmark_json(dataset: ProcedureDataset, split: str) -> str:
    """A split in the JSON form of the published benchmark files (json.dump(indent=4) of annotations
    and taxonomy), byte for byte: its SHA-256 is dtgl/<split>_hash."""
    task = dataset.tasks[TASK]
    annotations = {}
    for video in dataset.split(split).videos:
        segments = []
        for segment, (start, end) in zip(video.segments, video.meta["frames"]):
            name = task.steps[segment.step_id].text
            segments.append({"step_id": int(segment.step_id), "start_time": start, "end_time": end,
                             "description": name, "has_errors": bool(segment.errors), "step_name": name})
        annotations[video.video_id] = {"scenario": TASK, "recording_id": video.video_id, "segments": segments}
    taxonomy = {TASK: {str(sid): {"name": step.text, "id": int(sid), "is_leafnode": True, "parent_id": None,
                                  "parent_name": None} for sid, step in task.steps.items()}}
    return json.dumps({"annotations": annotations, "taxonomy": taxonomy}, indent=4)
