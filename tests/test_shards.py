"""The corpus-scale layout (procvid.shards): Parquet shards with an index instead of files per video,
written shard by shard, resumable, read by every later stage, and the same results as the per-video
layout."""

import json
from pathlib import Path

import numpy as np
import pytest

from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.shards import (AUTO_SHARDS_ABOVE, SHARD_SIZE, ShardStore, StageDocs, choose_layout, read_row,
                            shard_files)


def _rows(folder, name):
    import pyarrow.parquet as pq

    rows = {}
    for f in shard_files(folder, name):
        t = pq.read_table(f).to_pydict()
        rows.update({k: json.loads(d) for k, d in zip(t["key"], t["doc"])})
    return rows


def test_a_shard_is_written_once_its_last_video_is_done(tmp_path):
    store = ShardStore(tmp_path, "things", expected=3 * SHARD_SIZE)
    assert store.count == 3
    keys = [f"video_{i:03d}" for i in range(40)]
    ordered = store.ordered(keys)
    assert [store.shard_of(k) for k in ordered] == sorted(store.shard_of(k) for k in keys)
    store.plan(keys)
    first = [k for k in ordered if store.shard_of(k) == store.shard_of(ordered[0])]
    for k in first[:-1]:
        store.put(k, "s1", {"n": k})
    assert not store.path(store.shard_of(first[0])).exists()  # still in progress
    store.skip(first[-1])  # e.g. that video failed
    assert store.path(store.shard_of(first[0])).exists()
    assert set(_rows(tmp_path, "things")) == set(first[:-1])
    for k in ordered[len(first):]:
        store.put(k, "s1", {"n": k})
    store.close()
    assert set(_rows(tmp_path, "things")) == set(keys) - {first[-1]}
    assert read_row(store.ref(keys[5]))["doc"] == {"n": keys[5]}

    # the index names each key's shard file and row
    import pyarrow.parquet as pq

    index = pq.read_table(tmp_path / "things-index.parquet").to_pydict()
    assert sorted(index["key"]) == sorted(set(keys) - {first[-1]})
    for key, shard, row in zip(index["key"], index["shard"], index["row"]):
        assert pq.read_table(tmp_path / shard).column("key")[row].as_py() == key


def test_rows_are_kept_and_the_shard_count_sticks(tmp_path):
    store = ShardStore(tmp_path, "things", expected=10)
    store.plan(["a", "b"])
    store.put("a", "s1", {"v": 1})
    store.put("b", "s1", {"v": 2})
    store.close()
    again = ShardStore(tmp_path, "things", expected=100 * SHARD_SIZE)  # more videos later: same count
    assert again.count == 1
    assert again.get("a", "s1")["doc"] == {"v": 1} and again.get("a", "other stamp") is None
    again.plan(["c"])
    again.put("c", "s1", {"v": 3})
    again.close()
    assert _rows(tmp_path, "things") == {"a": {"v": 1}, "b": {"v": 2}, "c": {"v": 3}}


def test_an_interrupted_store_loses_only_the_shards_in_progress(tmp_path):
    store = ShardStore(tmp_path, "things", expected=2 * SHARD_SIZE)
    keys = store.ordered([f"k{i}" for i in range(20)])
    store.plan(keys)
    done = [k for k in keys if store.shard_of(k) == store.shard_of(keys[0])]
    for k in done + [keys[len(done)]]:  # the first shard finished, one row of the second
        store.put(k, "s", {"k": k})
    del store  # killed: close() never runs
    assert set(_rows(tmp_path, "things")) == set(done)
    docs = StageDocs(tmp_path, "things", ".things.json", shards=2)
    assert docs.current(done[0], "s") == {"k": done[0]} and docs.current(keys[-1], "s") is None


def test_layout_auto(tmp_path):
    assert choose_layout("auto", AUTO_SHARDS_ABOVE) == "files"
    assert choose_layout("auto", AUTO_SHARDS_ABOVE + 1) == "shards"
    (tmp_path / "x.safetensors").write_bytes(b"")
    assert choose_layout("auto", 10 * AUTO_SHARDS_ABOVE, tmp_path) == "files"  # a corpus keeps its layout
    assert choose_layout("shards", 3, tmp_path) == "shards"
    with pytest.raises(ProcvidError, match="layout 'tar' is not one of"):
        choose_layout("tar", 3)


def test_a_damaged_shard_is_one_line(tmp_path, capsys):
    store = ShardStore(tmp_path / "features", "features")
    store.plan(["v"])
    store.put("v", "s", {"num_frames": 1})
    store.close()
    store.path(0).write_bytes(b"not parquet")
    assert main(["segment", str(tmp_path / "features"), "--out", str(tmp_path / "seg"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a readable Parquet shard" in err[0]


@pytest.mark.slow
def test_embed_in_shards_adds_videos_without_recomputing(small_world, tmp_path):
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.features import entry_key, feature_sidecars, find_entry, load_features
    from procvid.video import Sampling, find_videos

    videos = find_videos([small_world / "videos"])
    encoder = load_encoder("video", device="cpu")
    first = embed_videos(videos[:4], tmp_path, encoder, Sampling(fps=2.0), progress=False, layout="shards")
    assert first.done == 4
    files = sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("."))
    assert files == ["features-00000.parquet", "features-index.parquet", "features-shards.json"]
    more = embed_videos(videos, tmp_path, encoder, Sampling(fps=2.0), progress=False, layout="shards")
    assert (more.done, more.skipped) == (2, 4)
    per_video = tmp_path / "per_video"
    embed_videos(videos, per_video, encoder, Sampling(fps=2.0), progress=False)
    refs = feature_sidecars(tmp_path)
    assert len(refs) == 6
    for ref, sidecar in zip(sorted(refs, key=lambda r: str(r).split("#")[1]), feature_sidecars(per_video)):
        X, t, meta = load_features(ref)
        X2, t2, meta2 = load_features(sidecar)
        assert np.array_equal(X, X2) and np.array_equal(t, t2) and meta["source"] == meta2["source"]
    key = entry_key(videos[0][1])  # how the training data modules find a video's features
    assert load_features(find_entry(tmp_path, key))[0].shape == load_features(find_entry(per_video, key))[0].shape
    assert find_entry(tmp_path, "no_such_video") is None and find_entry(per_video, "no_such_video") is None


@pytest.fixture(scope="module")
def both_layouts(tmp_path_factory):
    from procvid.data.synthetic import generate_world
    from procvid.pipeline import RunConfig, run_pipeline

    world = tmp_path_factory.mktemp("world")
    generate_world(world, num_videos=6, seed=21, size=64, min_duration=20, max_duration=25, progress=False)
    outs = {}
    for layout in ("files", "shards"):
        out = tmp_path_factory.mktemp(layout)
        config = RunConfig.from_yaml("synthetic", layout=layout, generate=False)
        outs[layout] = (out, run_pipeline([world / "videos"], out, config, annotations=str(world), progress=False))
    return world, outs


@pytest.mark.slow
def test_run_in_shards_gives_the_same_results_in_a_few_files(both_layouts):
    from procvid.segment.files import load_segmented

    world, outs = both_layouts
    (files_out, files_result), (shards_out, shards_result) = outs["files"], outs["shards"]
    assert shards_result.failed == files_result.failed == 0
    assert shards_result.segmentation == files_result.segmentation  # scored from the shards
    assert shards_result.grounding_scores == files_result.grounding_scores
    for stage in ("features", "segments", "steps", "mistakes", "forecast"):  # files grow with shards
        names = sorted(p.name for p in (shards_out / stage).iterdir()  # timelines: a sample above 48 videos
                       if not p.name.startswith(".") and not p.name.endswith(".timeline.png"))
        assert f"{stage}-00000.parquet" in names and f"{stage}-index.parquet" in names, names
        assert len(names) <= 4, names  # + shards.json (+ the run's predictions.json for mistakes)
    assert not list(shards_out.rglob("*.keyframes"))  # thumbnails only on request at that scale
    a = {v.stem: v for v in load_segmented(shards_out / "segments")}
    b = {v.stem: v for v in load_segmented(files_out / "segments")}
    assert a.keys() == b.keys() and len(a) == 6
    for stem in a:
        assert np.array_equal(a[stem].features[0], b[stem].features[0])
        strip = [{k: v for k, v in r.items() if k != "thumbnail"} for r in b[stem].doc["segments"]]
        assert a[stem].doc["segments"] == strip
    for stage in ("steps", "mistakes", "forecast"):
        rows = _rows(shards_out / stage, stage)
        docs = {p.name.split(".")[0]: json.loads(p.read_text()) for p in (files_out / stage).glob(f"*.{stage}.json")}
        assert rows.keys() == docs.keys() and rows
        for stem, doc in docs.items():  # the same documents, apart from where their inputs are
            assert {k: v for k, v in rows[stem].items() if k not in ("source", "features")} == \
                   {k: v for k, v in doc.items() if k not in ("source", "features")}


@pytest.mark.slow
def test_shards_are_read_by_the_stage_commands_and_a_rerun_rewrites_nothing(both_layouts, tmp_path):
    from helpers import file_stamps

    from procvid.pipeline import RunConfig, run_pipeline

    world, outs = both_layouts
    out = outs["shards"][0]
    before = file_stamps(out)
    # layout auto: the one the output has; every stage finds its rows current (only the run's record changes)
    config = RunConfig.from_yaml("synthetic", generate=False)
    run_pipeline([world / "videos"], out, config, annotations=str(world), progress=False)
    after = file_stamps(out)
    assert {k: v for k, v in after.items() if k != ".procvid-run.json"} == \
           {k: v for k, v in before.items() if k != ".procvid-run.json"}
    # later stages on their own, entering from the shards
    assert main(["segment", str(out / "features"), "--out", str(tmp_path / "seg"), "--method", "kcpd",
                 "--no-progress"]) == 0
    assert len(list((tmp_path / "seg").glob("*.segments.json"))) == 6
    assert main(["ground", str(out / "segments"), "--steps", str(world), "--out", str(tmp_path / "steps"),
                 "--no-progress"]) == 0
    assert len(list((tmp_path / "steps").glob("*.steps.json"))) == 6


def test_keys_with_hash_signs_and_sub_folders(tmp_path, monkeypatch):
    """A video named 'Recipe #3' (or in a sub-folder) is found again through its row reference, from any
    working directory, and its own files (timeline) go where the files layout would put them."""
    from procvid.segment.files import SegmentedVideo, stem_of
    from procvid.shards import split_ref

    monkeypatch.chdir(tmp_path)
    store = ShardStore("segments", "segments")  # a relative folder: references are absolute anyway
    for key in ("Recipe #3", "sub#1/vid #2"):
        store.plan([key])
        store.put(key, "s", {"n": key})
    store.close()
    for key in ("Recipe #3", "sub#1/vid #2"):
        ref = store.ref(key)
        assert split_ref(ref) == (tmp_path / "segments" / "segments-00000.parquet", key)
        assert read_row(ref)["doc"] == {"n": key}
        assert stem_of(Path(ref)) == Path(key).name
    for stem in ("vid #2", "sub#1/vid #2"):  # a stem with or without its sub-folders (stem_of with a root)
        video = SegmentedVideo(stem, Path(store.ref("sub#1/vid #2")), {})
        assert video.timeline == tmp_path / "segments" / "sub#1" / "vid #2.timeline.png"
    assert stem_of(Path(store.ref("sub#1/vid #2")), tmp_path / "segments") == "sub#1/vid #2"
    assert stem_of(tmp_path / "s" / "sub" / "x.segments.json", tmp_path / "s") == "sub/x"
