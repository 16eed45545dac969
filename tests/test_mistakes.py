"""Online mistake detection: the readers (Assembly101-O byte for byte against the published hashes,
CaptainCook4D error tags), the detectors on hand-built graphs with known answers, cross-validation's
simulated cases, the metrics, `procvid mistakes` end to end and the check in `procvid run`."""

import hashlib
import json

import networkx as nx
import numpy as np
import pytest

from helpers import DATA, file_stamps
from procvid.cli import main
from procvid.errors import ProcvidError
from procvid.graph.script import END, START
from procvid.metrics.mistakes import mistake_scores, published_view
from procvid.mistakes.base import COMPLETE, LATE, MISSING, REPEATED, UNKNOWN, UNLIKELY, labels_of, parse_setting
from procvid.mistakes.precondition import PreconditionDetector
from procvid.mistakes.probability import ProbabilityDetector, StateModel
from procvid.mistakes.select import cross_validate, grid, simulated_cases

A101 = DATA / "assembly101_mistake"
CC4D = DATA / "captaincook4d"
needs_a101 = pytest.mark.skipif(not A101.exists(), reason=f"Assembly101 mistake data not found at {A101}")
needs_cc4d = pytest.mark.skipif(not CC4D.exists(), reason=f"CaptainCook4D data not found at {CC4D}")


@pytest.fixture(scope="module")
def a101():
    from procvid.data import load_dataset

    return load_dataset("assembly101")


# ----------------------------------------------------------------------------- readers


@needs_a101
def test_assembly101_reader_is_the_published_benchmark(a101):
    from procvid.data.assembly101 import benchmark_json

    train, test = a101.split("train").videos, a101.split("test").videos
    assert (len(train), len(test)) == (135, 182) and len(a101.tasks["assembly101"].steps) == 86
    assert sum(len(v.path) for v in train) == 970 and sum(len(v.path) for v in test) == 677
    assert all(labels_of(v) == [0] * len(v.path) for v in train)  # training sequences hold no mistake
    assert all(labels_of(v) == [0] * (len(v.path) - 1) + [1] for v in test)  # the last step is the first mistake
    assert {v.segments[-1].errors[1] for v in test} == {"shouldn't have happened", "wrong order", "wrong position"}
    assert a101.tasks["assembly101"].steps[0].text == "attach-tilter"
    for split in ("train", "test"):  # our reader's result in the published JSON form, byte for byte
        digest = hashlib.sha256(benchmark_json(a101, split).encode()).hexdigest()
        assert digest == (A101 / "dtgl" / f"{split}_hash").read_text().strip()


@needs_a101
def test_assembly101_folder_is_detected(a101):
    from procvid.data import detect_format

    assert detect_format(A101) == "assembly101"
    assert a101.videos[0].meta["toy"] and len(a101.videos[0].meta["frames"]) == len(a101.videos[0].path)


@needs_cc4d
def test_captaincook4d_error_tags_travel_with_their_steps():
    from procvid.data import load_dataset

    cc = load_dataset("captaincook4d")
    order = [s for v in cc.videos for s in v.segments if "Order Error" in s.errors]
    assert len(order) == 794  # performed steps tagged (one step carries the tag twice in the source)
    missing = sum("Missing Step" in tags for v in cc.videos for tags in v.meta["missing_errors"].values())
    assert missing > 270
    normal = [v for v in cc.videos if not v.meta["is_error"]]
    assert len(normal) == 164 and not any(s.errors for v in normal for s in v.segments)
    raw = {r["recording_id"]: r for r in json.loads((CC4D / "annotation_json" / "error_annotations.json").read_text())}
    video = next(v for v in cc.videos if v.video_id == "1_10")  # segments sorted by time: tags still aligned
    for segment in video.segments:
        source = next(s for s in raw["1_10"]["step_annotations"]
                      if s["step_id"] == segment.step_id and s["start_time"] == segment.start)
        assert segment.errors == tuple(dict.fromkeys(e["tag"] for e in source.get("errors", [])))
    assert 4 in video.meta["missing_steps"] and video.meta["missing_errors"][4] == ["Missing Step"]


# ----------------------------------------------------------------------------- detectors, hand-built graphs

# tea: boil (1) before add tea (2) and add sugar (3, optional), both before pour (4)
TEA_EDGES = [(START, 1), (1, 2), (1, 3), (2, 4), (3, 4), (4, END)]


def tea_graph(optional=(3,)):
    graph = nx.DiGraph(task_id="tea", optional=list(optional))
    graph.add_edges_from(TEA_EDGES)
    return graph


def precondition(**settings):
    cls = PreconditionDetector
    return cls(cls.fit({}, {}, {"tea": tea_graph()}), **settings)


def test_published_rule_on_a_hand_built_graph():
    d = precondition()
    assert d.check("tea", [], 1).flag is False
    v = d.check("tea", [], 2)
    assert (v.flag, v.reason, v.steps, v.score) == (True, MISSING, (1,), 1.0)
    assert d.check("tea", [1], 9).reason == UNKNOWN  # not in the graph
    v = d.check("tea", [1, 2], 4)  # the optional 3 is a direct predecessor: required by the published rule
    assert (v.reason, v.steps, v.score) == (MISSING, (3,), 0.5)
    assert not d.check("tea", [1, 3, 2], 4).flag
    assert not d.check("tea", [1, 2, 2], 2).flag  # repeats pass unless repeats=true
    assert d.unfinished("tea", [1, 2]) == [4]  # 3 is optional


def test_settings_optional_successors_repeats():
    skip = precondition(optional="skip")
    assert not skip.check("tea", [1, 2], 4).flag  # 3 optional: 4 needs its nearest required ancestors 2 and 1
    assert skip.check("tea", [1, 3], 4).steps == (2,)
    late = precondition(successors=True)
    assert not precondition().check("tea", [1, 3, 4], 2).flag
    v = late.check("tea", [1, 3, 4], 2)  # 4 needed 2 first: 2 comes after its successor
    assert (v.reason, v.steps) == (LATE, (4,))
    rep = precondition(repeats=True)
    assert rep.check("tea", [1, 2], 1).reason == REPEATED
    assert rep.check("tea", [1, 2, 4], 2).reason == COMPLETE  # every required step done


@pytest.mark.parametrize("settings", [{}, {"optional": "skip"}, {"successors": True}, {"repeats": True},
                                      {"optional": "skip", "successors": True, "repeats": True}])
def test_fast_flags_agree_with_check(settings):
    d = precondition(**settings)
    candidates = [1, 2, 3, 4, 9]
    for done in ([], [1], [1, 2], [1, 4], [1, 3, 4], [1, 2, 3, 4]):
        assert list(d.flags("tea", done, candidates)) == [d.check("tea", done, c).flag for c in candidates]


def chain(**settings):
    """1 -> 2 -> 3 -> 4, all required: step 3 has ancestors 1 and 2, descendant 4."""
    graph = nx.DiGraph(task_id="chain", optional=[])
    graph.add_edges_from([(START, 1), (1, 2), (2, 3), (3, 4), (4, END)])
    cls = PreconditionDetector
    return cls(cls.fit({}, {}, {"chain": graph}), **settings)


def test_violations_count_the_broken_precedence_relations():
    assert chain().check("chain", [1], 3).flag  # the published rule: its direct predecessor 2 is missing
    two = chain(violations=2)
    v = two.check("chain", [1], 3)  # one relation broken (2 before 3): not enough
    assert (v.flag, v.score) == (False, 0.5)
    v = two.check("chain", [], 3)  # both ancestors missing
    assert (v.flag, v.reason, v.steps, v.score) == (True, MISSING, (1, 2), 1.0)
    assert two.check("chain", [], 9).reason == UNKNOWN
    late = chain(violations=2, successors=True)
    assert not late.check("chain", [1, 3], 2).flag  # 3 done before 2: one relation
    v = late.check("chain", [1, 3, 4], 2)  # 3 and 4 done before 2: two relations
    assert (v.flag, v.reason, v.steps) == (True, LATE, (3, 4))
    v = late.check("chain", [3], 2)  # 1 missing and 3 already done: one of each
    assert (v.flag, v.reason, v.steps, v.score) == (True, MISSING, (1,), pytest.approx(2 / 3))
    assert not chain(violations=2, repeats=True).check("chain", [1, 2], 3).flag
    assert chain(violations=2, repeats=True).check("chain", [1, 2], 2).reason == REPEATED
    # optional steps are not counted with optional=skip: pour (4) without tea (2) and sugar (3, optional)
    assert precondition(violations=2).check("tea", [1], 4).steps == (2, 3)
    assert not precondition(violations=2, optional="skip").check("tea", [1], 4).flag


@pytest.mark.parametrize("settings", [{"violations": 2}, {"violations": 2, "successors": True},
                                      {"violations": 3, "successors": True, "repeats": True},
                                      {"violations": 2, "optional": "skip", "successors": True}])
def test_fast_flags_agree_with_check_when_counting_violations(settings):
    for d, task, candidates in ((precondition(**settings), "tea", [1, 2, 3, 4, 9]),
                                (chain(**settings), "chain", [1, 2, 3, 4, 9])):
        for done in ([], [1], [3], [1, 2], [1, 4], [1, 3, 4], [3, 4], [1, 2, 3, 4]):
            assert list(d.flags(task, done, candidates)) == [d.check(task, done, c).flag for c in candidates]
        ready = d.prepare("no such task", [1], candidates)  # same arrays for an unknown task, all flagged
        assert set(ready) == set(d.prepare(task, [1], candidates)) and d.decide(ready).all()


def test_state_model_weighs_the_exact_previous_step():
    # after {1, 2} the next step is 3 when 2 came last and 4 when 1 came last
    sequences = {"t": [[1, 2, 3, 4], [2, 1, 4, 3]]}
    plain = StateModel(sequences, decay=4.0, last=0.0).predict("t", [[1, 2]])[0]
    assert plain[3] == pytest.approx(plain[4])
    weighted = StateModel(sequences, decay=4.0, last=4.0).predict("t", [[1, 2]])[0]
    assert weighted[3] > 10 * weighted[4] and sum(weighted.values()) == pytest.approx(1.0)
    cls = ProbabilityDetector
    d = cls.build(sequences, {"t": [1, 2, 3, 4]}, model="state", decay=4.0, last=4.0, threshold=0.05)
    assert d.describe()["last"] == 4.0
    assert not d.check("t", [1, 2], 3).flag and d.check("t", [1, 2], 4).reason == UNLIKELY
    assert not cls.build(sequences, {"t": [1, 2, 3, 4]}, decay=4.0, last=0.0, threshold=0.05).check(
        "t", [1, 2], 4).flag


def test_state_model_and_probability_detector():
    sequences = {"tea": [[1, 2, 3, 4], [1, 3, 2, 4]] * 3}
    model = StateModel(sequences)
    p = model.predict("tea", [[1]])[0]
    assert p[2] > 0.3 and p[3] > 0.3 and p[4] < 0.05 and abs(sum(p.values()) - 1) < 1e-9
    cls = ProbabilityDetector
    d = cls.build(sequences, {"tea": [1, 2, 3, 4, 9]}, threshold=0.05)
    assert not d.check("tea", [1], 2).flag
    v = d.check("tea", [1], 4)  # pouring before adding tea and sugar
    assert (v.flag, v.reason, set(v.steps)) == (True, UNLIKELY, {2, 3}) and v.probability < 0.05
    assert d.check("tea", [1], 9).reason == UNKNOWN
    assert d.unfinished("tea", [1, 2]) == [3, 4]
    candidates = [1, 2, 3, 4, 9]
    for settings in ({"threshold": 0.05}, {"threshold": 0.2, "repeats": True}):
        d = cls(d.fitted, **settings)
        for done in ([], [1], [1, 2], [1, 4]):
            assert list(d.flags("tea", done, candidates)) == [d.check("tea", done, c).flag for c in candidates]


def test_settings_are_parsed_and_checked():
    assert parse_setting(PreconditionDetector, "successors=true") == ("successors", True)
    assert parse_setting(ProbabilityDetector, "threshold=0.02") == ("threshold", 0.02)
    with pytest.raises(ProcvidError, match="NAME=VALUE"):
        parse_setting(PreconditionDetector, "threshold=0.1")
    with pytest.raises(ProcvidError, match="one of required, skip"):
        parse_setting(PreconditionDetector, "optional=maybe")
    with pytest.raises(ProcvidError, match="not a true/false value"):
        parse_setting(PreconditionDetector, "repeats=perhaps")


# ----------------------------------------------------------------------------- cross-validation, metrics


def test_simulated_cases_follow_the_benchmark_construction():
    cases = simulated_cases("t", ["a", "b", "c"], ["a", "b", "c", "d"])
    # cut 0: instead of a, a jump ahead to b or c (wrong order) or d (unnecessary), half per kind;
    # the correct a belongs to the simulated sequences cut at 1 and 2
    first = cases[0]
    assert first.candidates == ["a", "b", "c", "d"] and list(first.labels) == [False, True, True, True]
    assert list(first.weights) == [2.0, 0.25, 0.25, 0.5]
    last = cases[-1]  # cut 2: nothing left to jump to, only the unnecessary step; c itself is in no sequence
    assert last.prefix == ("a", "b") and last.candidates == ["d"] and list(last.weights) == [1.0]


def test_cross_validation_searches_only_free_settings_and_is_deterministic():
    seqs = [("tea", s) for s in [[1, 2, 3, 4], [1, 3, 2, 4], [1, 2, 4], [1, 3, 2, 4], [1, 2, 3, 4]] * 2]
    steps = {"tea": [1, 2, 3, 4, 5]}
    fixed = {"graph_method": "precedence", "tolerance": 0.0}
    a = cross_validate(PreconditionDetector, seqs, steps, fixed)
    b = cross_validate(PreconditionDetector, seqs, steps, fixed)
    assert a.settings == b.settings and a.table == b.table
    assert set(a.searched) == {"optional", "successors", "repeats", "violations"} and len(a.table) == 8 * 5
    assert a.settings == max(a.table, key=lambda r: r["avg_f1"])["settings"]
    assert len(grid(PreconditionDetector, {})) == 4 * 8 * 5  # tolerance only with precedence
    probability = grid(ProbabilityDetector, {})  # decay and last only with the state model
    assert len(probability) == (3 * 4 + 2) * 9 * 2
    assert all(g["last"] == 1.0 and g["decay"] == 1.0 for g in probability if g["model"] != "state")


def test_mistake_scores_and_the_published_swap():
    labels, flags = [0, 0, 0, 1, 0, 1], [0, 1, 0, 1, 0, 0]
    s = mistake_scores(labels, flags)
    assert s["mistake"]["precision"] == 0.5 and s["mistake"]["recall"] == 0.5
    assert s["correct"]["precision"] == 0.75 and s["correct"]["recall"] == 0.75
    assert s["avg_f1"] == pytest.approx(0.625)
    swapped = published_view(mistake_scores([0, 0, 1, 1], [0, 1, 1, 1]))
    assert swapped["mistake"]["precision"] == 1.0 and swapped["mistake"]["recall"] == pytest.approx(2 / 3)
    weighted = mistake_scores([0, 1], [1, 1], weights=[3, 1])
    assert weighted["mistake"]["precision"] == 0.25
    rng = np.random.default_rng(0)  # against the confusion table counted class by class
    y, f, w = rng.random(200) < 0.3, rng.random(200) < 0.4, rng.random(200)
    s = mistake_scores(y, f, w)
    for name, cls in (("correct", False), ("mistake", True)):
        tp, fp, fn = (w[(y == a) & (f == b)].sum() for a, b in ((cls, cls), (not cls, cls), (cls, not cls)))
        assert s[name]["precision"] == pytest.approx(tp / (tp + fp))
        assert s[name]["recall"] == pytest.approx(tp / (tp + fn))
        assert s[name]["support"] == pytest.approx(w[y == cls].sum())


# ----------------------------------------------------------------------------- on Assembly101-O


@needs_a101
def test_published_count_rule_and_all_flagged_rows(a101):
    from procvid.mistakes.batch import run_detection

    rule = {"optional": "required", "successors": False, "repeats": False, "tolerance": 0.0, "violations": 1}
    run = run_detection(a101, "precondition", {"graph_method": "count", **rule}, protocol="split")
    assert run.selection["cv"] == []  # every setting given: nothing chosen
    assert 100 * run.scores["steps"]["avg_f1"] == pytest.approx(26.6, abs=0.05)  # published count-based: 26.0
    labels = [x for v in a101.split("test").videos for x in labels_of(v)]
    assert 100 * mistake_scores(labels, [1] * len(labels))["avg_f1"] == pytest.approx(21.2, abs=0.05)


@pytest.mark.slow
@needs_a101
def test_tgml_graph_with_the_published_rule_reproduces_do(a101):
    from procvid.mistakes.batch import run_detection

    rule = {"graph_method": "tgml", "optional": "required", "successors": False, "repeats": False, "tolerance": 0.0,
            "violations": 1}
    s = run_detection(a101, "precondition", rule, protocol="split").scores["steps"]
    assert [round(100 * x, 1) for x in (s["avg_f1"], s["correct"]["f1"], s["mistake"]["f1"])] == [75.9, 90.2, 61.6]


@needs_a101
def test_mistakes_command_end_to_end(tmp_path, capsys):
    out = tmp_path / "a101"
    args = ["mistakes", "--data", "assembly101", "--method", "precondition", "--set", "violations=1", "--out", str(out)]
    assert main(args) == 0  # the first version's settings (violations searched too: tools/bench_mistake.py)
    printed = capsys.readouterr().out
    assert "settings chosen by 5-fold cross-validation on 135 training sequences" in printed
    assert "steps: Avg F1 76.0 | correct P 83.1 R 99.4 F1 90.5 | mistake P 96.5 R 45.1 F1 61.4" in printed
    predictions = json.loads((out / "predictions.json").read_text())
    assert len(predictions) == 182 and sum(map(len, predictions.values())) == 677
    docs = sorted(out.glob("*.mistakes.json"))
    assert len(docs) == 182
    doc = json.loads(docs[0].read_text())
    assert doc["flags"] == predictions[doc["video"]] and [s["label"] for s in doc["steps"]][-1] == 1
    assert all(s["reason"] == UNKNOWN for d in map(lambda p: json.loads(p.read_text()), docs)
               for s in d["steps"] if s["flag"])  # the CV-chosen setting flags unknown steps only
    settings = json.loads((out / "settings.json").read_text())
    assert settings["selection"]["settings"]["optional"] == "skip" and len(settings["selection"]["cv"]) == 32
    assert json.loads((out / "scores.json").read_text())["steps"]["steps"] == 677
    before = file_stamps(out)
    assert main(args) == 0
    assert file_stamps(out) == before  # a rerun rewrites nothing


def test_mistakes_command_errors(tmp_path, capsys):
    assert main(["mistakes", "--data", "assembly101", "--method", "magic", "--out", str(tmp_path)]) == 2
    assert "unknown mistake detector 'magic'" in capsys.readouterr().err
    assert main(["mistakes", "--data", "assembly101", "--method", "precondition", "--set", "nope=1",
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--set takes NAME=VALUE" in err


def test_listed():
    from procvid.registry import LISTED, MISTAKES

    assert MISTAKES.names() == ["precondition", "probability"] and LISTED["mistake-detectors"] is MISTAKES


# ----------------------------------------------------------------------------- procvid run


def test_run_stage_checks_grounded_paths_and_the_report_lists_flags(tmp_path):
    from types import SimpleNamespace

    from procvid.data.procedures import Step, Task
    from procvid.mistakes.batch import check_paths
    from procvid.report.html import write_report

    tasks = {"tea": Task("tea", "make tea", {i: Step(i, t) for i, t in
                                             enumerate(["boil water", "add tea", "add sugar", "pour"], 1)})}
    grounded = {"tea_0": {"task": "tea", "path": [1, 2, 3, 4], "steps": []},
                "tea_1": {"task": "tea", "path": [1, 4, 2], "steps": [{"start": float(i), "end": i + 1.0}
                                                                       for i in range(3)]},
                "other_0": {"task": "other", "path": [1], "steps": []}}  # no graph: not checked
    docs = check_paths(grounded, {"tea": tea_graph(optional=())}, tasks, tmp_path / "mistakes")
    assert set(docs) == {"tea_0", "tea_1"} and docs["tea_0"]["flagged"] == 0
    steps = docs["tea_1"]["steps"]
    assert [s["reason"] for s in steps] == ["", MISSING, LATE]  # pour before adding tea; tea after pouring
    assert steps[1]["names"] == ["add tea", "add sugar"] and steps[2]["start"] == 2.0
    assert docs["tea_1"]["absent_at_end"] == [3]  # named missing at pour; tea came later, sugar never
    assert json.loads((tmp_path / "mistakes" / "predictions.json").read_text())["tea_1"] == [0, 1, 1]

    video = SimpleNamespace(stem="tea_1", task="tea", timeline=tmp_path / "none.png", segments=tmp_path / "s.json",
                            doc={"segments": [], "method": "sbd", "timestamps": [], "encoder": "x"})
    page = write_report(tmp_path, [video], mistakes=docs).read_text()
    assert "2 flagged step(s) in 1 of 2 checked video(s)" in page
    assert "missing preconditions: add tea, add sugar" in page and "after its successors: pour" in page


def test_mistakes_command_on_grounded_steps_and_graph_files(tmp_path, capsys):
    """A user's grounded step paths (procvid ground output, in sub-folders) against graph script files: the
    same verdicts as procvid run's stage, step texts from the graph, one line per user mistake."""
    from procvid.graph.export import write_json

    graph = tea_graph(optional=())
    for node, text in zip([1, 2, 3, 4], ["boil water", "add tea", "add sugar", "pour"]):
        graph.nodes[node]["text"] = text
    write_json(graph, tmp_path / "graphs" / "tea.json")
    for stem, path in (("a/cup", [1, 2, 3, 4]), ("b/cup", [1, 4, 2])):
        (tmp_path / "steps" / stem).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "steps" / f"{stem}.steps.json").write_text(json.dumps({"task": "tea", "path": path, "steps": []}))
    out = tmp_path / "out"
    assert main(["mistakes", str(tmp_path / "steps"), "--graphs", str(tmp_path / "graphs"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "2 videos, 7 steps, 2 flagged" in printed
    assert "b/cup step 2 [4] pour: missing preconditions (add tea, add sugar)" in printed
    assert json.loads((out / "predictions.json").read_text()) == {"a/cup": [0, 0, 0, 0], "b/cup": [0, 1, 1]}
    assert json.loads((out / "b" / "cup.mistakes.json").read_text())["steps"][2]["reason"] == LATE
    steps, graphs = str(tmp_path / "steps"), str(tmp_path / "graphs")
    for args, message in [([steps], "need --graphs DIR"),
                          ([steps, "--graphs", graphs, "--method", "probability"], "checked with the precondition"),
                          ([steps, "--graphs", graphs, "--data", "assembly101"], "not both"),
                          ([steps, "--graphs", graphs, "--set", "tolerance=0.1"], "the graphs are given"),
                          ([str(tmp_path / "graphs" / "tea.json"), "--graphs", graphs], "not a steps file"),
                          (["--data", "assembly101"], "--data needs --method")]:
        assert main(["mistakes", *args, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err, (args, err)


def test_state_model_prefers_identical_states():
    model = StateModel({"t": [["a", "b", "c"], ["x", "b", "y"]]}, decay=4.0)
    p = model.predict("t", [["a", "b"]])[0]
    assert p["c"] > 0.5 > p["y"]
    assert np.isclose(sum(p.values()), 1.0)


def test_flagged_steps_are_marked_on_the_timeline(tmp_path):
    """procvid run's timelines mark flagged steps: (start, end, reason) per video, drawn in red."""
    from PIL import Image

    from procvid.mistakes.batch import timeline_marks
    from procvid.report.timeline import draw_timeline
    from procvid.segment.base import Segment

    row = {"flag": False, "start": 0.0, "end": 4.0, "reason": "", "names": []}
    flagged = {"flag": True, "start": 5.0, "end": 9.0, "reason": MISSING, "names": ["pour water"]}
    docs = {"v": {"steps": [row, flagged]}, "w": {"steps": [row]}, "x": {"steps": [{**flagged, "start": None}]}}
    marks = timeline_marks(docs)
    assert marks == {"v": [(5.0, 9.0, f"{MISSING}: pour water")]}

    rng = np.random.default_rng(0)
    X, t = rng.normal(size=(20, 8)).astype(np.float32), np.arange(20) * 0.5
    segments = [Segment(0.0, 5.0, 0, 10, 1.0, 3), Segment(5.0, 10.0, 10, 20, 0.5, 15)]
    plain = draw_timeline(tmp_path / "plain.png", X, t, segments, grounded=[(0.0, 4.0, 1), (5.0, 9.0, 2)])
    marked = draw_timeline(tmp_path / "marked.png", X, t, segments, grounded=[(0.0, 4.0, 1), (5.0, 9.0, 2)],
                           marks=marks["v"])
    a, b = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (plain, marked))
    assert a.shape == b.shape
    reddish = lambda img: ((img[..., 0] > 150) & (img[..., 1] < 120) & (img[..., 2] < 120)).sum()  # noqa: E731
    assert reddish(b) > reddish(a) + 50  # the red span, marker and reason were drawn


def test_count_settings_take_whole_numbers_within_their_range():
    from procvid.errors import ProcvidError
    from procvid.mistakes.base import parse_setting
    from procvid.mistakes.precondition import PreconditionDetector

    assert parse_setting(PreconditionDetector, "violations=3") == ("violations", 3)
    for bad, why in (("violations=2.5", "not a whole number"), ("violations=0", "below its minimum 1")):
        with pytest.raises(ProcvidError, match=why):
            parse_setting(PreconditionDetector, bad)


def test_cross_validation_without_two_videos_of_any_task_is_one_line():
    from procvid.errors import ProcvidError
    from procvid.mistakes.precondition import PreconditionDetector
    from procvid.mistakes.select import cross_validate

    with pytest.raises(ProcvidError, match="at least two mistake-free training videos"):
        cross_validate(PreconditionDetector, [("a", [1, 2, 3]), ("b", [4, 5])], {"a": [1, 2, 3], "b": [4, 5]})


def test_settings_given_from_python_are_range_checked_too():
    from procvid.errors import ProcvidError
    from procvid.mistakes.base import resolve_settings
    from procvid.mistakes.precondition import PreconditionDetector

    with pytest.raises(ProcvidError, match="below its minimum 1"):
        resolve_settings(PreconditionDetector, {"violations": 0}, fit=False)
