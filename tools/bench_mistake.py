"""Online mistake detection benchmark: Assembly101-O (published protocol) and CaptainCook4D.

(a) Assembly101-O (Seminara et al., NeurIPS 2024, "Differentiable Task Graph Learning"): learn from the
    135 mistake-free training sequences; for each of the 182 test sequences the steps arrive one at a
    time and each is flagged from the steps before it; the last step of every test sequence is its
    first mistake (677 steps, 182 mistakes). Per-class precision/recall/F1 pooled over all test steps
    and their mean, Avg F1 (procvid.metrics.mistakes; the published code prints P and R exchanged, F1
    is unaffected). Our rows: each detector with the settings 5-fold cross-validation on the training
    sequences chooses (procvid.mistakes.select: simulated mistakes, the test split is never read while
    choosing), and the published precondition rule on graphs from our induction methods, fixed. The
    first two rows hold the settings added later at the values of the first version (precondition
    violations=1, probability last=1), so they print the earlier figures; the next two search them
    too (precondition: a step flagged only when it breaks at least `violations` precedence relations;
    probability: the state model's weight `last` on training states ending with the same step). The
    detector CV prefers is the one with the best CV Avg F1 (never the test score).
(b) CaptainCook4D: for each recording, graphs / models from the normal (error-free) recordings of its
    recipe, the scored recording left out. Recall of performed steps tagged "Order Error" (flagged when
    performed); recall of "Missing Step" (a step not performed that the detector reports absent by the
    end of the recording: named as a missing precondition of a later step, or required and not done at
    the end); false alarms on the 164 normal recordings: flags per recording, share of their steps
    flagged, share of them with any flag. Thresholded detectors give a curve (tolerance of the
    precedence graph; violations: a step flagged only when it breaks at least k precedence relations of
    the graph; the state model's probability threshold); on each curve two operating points, both read
    from normal recordings only: the most permissive setting with at most 10% of normal steps flagged,
    and the most permissive one with at most 10% of normal recordings flagged at all (the stricter
    reading of the target); the order-error recall is read after. The human task graphs are a
    reference row (not learned).
(c) The synthetic world with mistakes (procvid synth --mistakes 0.5: per video, with probability 0.5, a
    step before its preconditions, a required step skipped, or a step repeated), from video: video ->
    features (shipped `video` encoder, 2 fps) -> units (sbd segments, or every feature frame) -> grounded
    steps (ground_batch) -> online detection against graph scripts learned from the annotated step paths of
    240 mistake-free training videos (world seed 11; annotations only, so plan_video gives them without
    rendering). Worlds: tuning seed 13 (every choice below is made there); held-out seed 15 (scored once,
    with the choice that added frame units); seed 14, the held-out world of the first choices (segments
    only), printed beside it. 60 videos each.
    Scoring as Assembly101-O: per step, pooled, Avg F1 = mean of correct-F1 and mistake-F1; each video
    is scored up to and including its mistake (the rest is cut, as Assembly101-O cuts after the first
    mistake); mistake-free videos are scored whole. From video, each true step takes the flag of the
    grounded step of the same id that overlaps it most (not flagged when grounding missed it), and
    grounded steps matching no true step before the cut count as correct steps (a flag there is a
    false alarm). Chosen on the tuning world by Avg F1 from video: the units, grounding order (any or
    linear; graph order would hide the deviations), drop percentile, step cost and repeat marking
    (GROUND_GRID: each step once, or procvid.ground.mark_repeats at a margin in REPEAT_MARGINS, so a
    repeated step can reach the detector), and the detector with its settings (the CV grids of
    precondition and probability as they were when (c) was first tuned: violations=1, last=1, thresholds
    from 0.001). The true step paths give the upper reference row. `--tune` prints the tuning world's best
    Avg F1 per units and repeat margin and the choice, without reading a held-out world; `--tune --encoder
    default` the same grid grounded on the per-frame `default` encoder's features (procvid-clip-tiny, 2 fps; the
    segments stay those of the `video` features), which did not pay there (README).

    python tools/bench_mistake.py [--no-tgml] [--part a|b|c] [--tune [--encoder video|default]]
"""

from __future__ import annotations

import argparse
import sys
import time

# (method, Avg F1, correct F1, mistake F1) on Assembly101-O, ground-truth step sequences (published table)
PUBLISHED_A101 = [
    ("DO (TGML graph, published rule)", 75.9, 90.2, 61.6),
    ("TGT-text", 62.8, None, None),
    ("MSG2", 56.1, None, None),
    ("PREGO", 39.4, None, None),
    ("MSGI", 33.1, None, None),
    ("LLM", 29.3, None, None),
    ("count-based graph, published rule", 26.0, None, None),
    ("all steps flagged", 21.2, None, None),
]
PUBLISHED_RULE = {"optional": "required", "successors": False, "repeats": False, "violations": 1}  # the published rule
TARGET_A101 = (80.0, 65.0)  # Avg F1, mistake F1
# (label, detector, settings held fixed; the others chosen by CV): first the first version's settings, then the
# settings added later searched too
CV_ROWS = [("precondition, settings by CV (violations=1)", "precondition", {"violations": 1}),
           ("probability, settings by CV (last=1)", "probability", {"last": 1.0}),
           ("precondition, settings by CV", "precondition", {}),
           ("probability, settings by CV", "probability", {})]
TARGET_CC4D = (70.0, 10.0)  # order-error recall, false alarms on normal recordings (%)
VIOLATIONS = (2, 3, 4, 6)  # CaptainCook4D curve of the precondition rule's `violations` (1: the "+ successors" row)


def _pct(x) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def assembly_rows(dataset, tgml: bool) -> list[tuple[str, str | None, object]]:
    """(label, published counterpart, MistakeRun) of our Assembly101-O rows."""
    from procvid.mistakes.batch import run_detection

    rows = [(label, None, run_detection(dataset, method, fixed, protocol="split")) for label, method, fixed in CV_ROWS]
    methods = [("tgml", "DO (TGML graph, published rule)")] if tgml else []
    methods += [("count", "count-based graph, published rule"), ("precedence", None)]
    for method, published in methods:
        settings = {"graph_method": method, "tolerance": 0.0, **PUBLISHED_RULE}
        rows.append((f"published rule, {method} graph", published,
                     run_detection(dataset, "precondition", settings, protocol="split")))
    return rows


def all_flagged(dataset):
    from procvid.metrics.mistakes import mistake_scores
    from procvid.mistakes.base import labels_of

    labels = [x for v in dataset.split("test").videos for x in labels_of(v)]
    return mistake_scores(labels, [1] * len(labels))


def print_assembly(dataset, tgml: bool) -> None:
    rows = assembly_rows(dataset, tgml)
    test = dataset.split("test").videos
    print(f"(a) Assembly101-O online mistake detection: {len(dataset.split('train').videos)} training sequences, "
          f"{len(test)} test sequences, {sum(len(v.path) for v in test)} test steps; scores in %")
    print(f"{'method':44} {'published':>19} | {'Avg F1':>6} | {'correct P':>9} {'R':>5} {'F1':>5} | "
          f"{'mistake P':>9} {'R':>5} {'F1':>5} | {'CV Avg F1':>9} | {'s':>5}")
    by_published = {p: (label, run) for label, p, run in rows if p}

    def line(label, published, scores, cv=None, seconds=None):
        c, m = scores["correct"], scores["mistake"]
        pub = "" if published is None else (f"{published[1]:.1f}" + (f" ({published[2]:.1f}/{published[3]:.1f})"
                                                                       if published[2] is not None else ""))
        print(f"{label:44} {pub:>19} | {_pct(scores['avg_f1']):>6} | {_pct(c['precision']):>9} "
              f"{_pct(c['recall'])} {_pct(c['f1'])} | {_pct(m['precision']):>9} {_pct(m['recall'])} {_pct(m['f1'])} | "
              f"{'' if cv is None else _pct(cv):>9} | {'' if seconds is None else f'{seconds:5.1f}':>5}")

    for label, published, run in rows:
        if published is None:
            cv = max((r["avg_f1"] for r in run.selection["cv"]), default=None) if run.selection else None
            line(label, None, run.scores["steps"], cv, run.seconds)
    for published in PUBLISHED_A101:
        name = published[0]
        if name in by_published:
            label, run = by_published[name]
            line(f"{name}: ours", published, run.scores["steps"], None, run.seconds)
        elif name == "all steps flagged":
            line(f"{name}: ours", published, all_flagged(dataset))
        else:
            print(f"{name:44} {published[1]:>19.1f} | {'(not reimplemented)':^20}")
    print("published: Seminara et al. 2024 (Avg F1, correct F1 / mistake F1). Their code prints precision and "
          "recall exchanged (sklearn called with predictions and labels swapped); ours are the usual ones.")
    cv_rows = rows[:len(CV_ROWS)]
    for label, _, run in cv_rows:
        chosen = ", ".join(f"{k}={v}" for k, v in run.selection["settings"].items())
        cv = max(x["avg_f1"] for x in run.selection["cv"])
        print(f"  {label}: chose {chosen} (5-fold CV on the training sequences, simulated mistakes: CV Avg F1 "
              f"{100 * cv:.2f})")
    # the detector too is chosen by its CV score (the same simulated cases for all), never by test scores
    best = max(cv_rows, key=lambda r: max(x["avg_f1"] for x in r[2].selection["cv"]))
    for label, _, run in cv_rows:
        s = run.scores["steps"]
        avg, mis = 100 * s["avg_f1"], 100 * s["mistake"]["f1"]
        verdict = "met" if avg >= TARGET_A101[0] and mis >= TARGET_A101[1] else \
            f"missed by {max(0, TARGET_A101[0] - avg):.1f} Avg F1 and {max(0, TARGET_A101[1] - mis):.1f} mistake F1"
        chosen = " (the detector CV prefers)" if label == best[0] else ""
        print(f"target Avg F1 >= {TARGET_A101[0]:.0f} and mistake F1 >= {TARGET_A101[1]:.0f}: {label}{chosen} "
              f"{avg:.1f} / {mis:.1f}: {verdict}")
        print("  recall by kind of mistake: " + ", ".join(
            f"{tag} {r['flagged']}/{r['total']}" for tag, r in run.scores["tag_recall"].items() if tag != "mistake"))


def cc4d_rows(dataset) -> list[tuple[str, object]]:
    from procvid.data.captaincook4d import human_task_graphs
    from procvid.mistakes.batch import run_detection

    rows = []
    for label, settings in [("published rule (precedence graph)", {}),
                            ("+ successors", {"successors": True}),
                            ("+ successors, tolerance 0.1", {"successors": True, "tolerance": 0.1}),
                            ("+ successors, tolerance 0.2", {"successors": True, "tolerance": 0.2}),
                            *[(f"+ successors, violations {k}", {"successors": True, "violations": k})
                              for k in VIOLATIONS],
                            ("+ successors, count graph", {"successors": True, "graph_method": "count"})]:
        rows.append((f"precondition: {label}", run_detection(dataset, "precondition", settings, protocol="loo")))
    for threshold in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        rows.append((f"probability: state model, threshold {threshold:g}",
                     run_detection(dataset, "probability", {"model": "state", "threshold": threshold},
                                   protocol="loo")))
    rows.append(("probability: graph walk, threshold 0.01",
                 run_detection(dataset, "probability", {"model": "walk", "threshold": 0.01}, protocol="loo")))
    human = human_task_graphs(dataset)
    for label, settings in [("published rule", {}), ("+ successors", {"successors": True}),
                            ("+ successors, violations 2", {"successors": True, "violations": 2})]:
        rows.append((f"reference, human graphs: {label}",
                     run_detection(dataset, "precondition", settings, graphs=human, protocol="loo")))
    return rows


def print_cc4d(dataset) -> None:
    rows = cc4d_rows(dataset)
    normal = sum(1 for v in dataset.videos if not v.meta.get("is_error"))
    print(f"(b) CaptainCook4D: {len(dataset.videos)} recordings, {len(dataset.tasks)} recipes; graphs and models "
          f"from each recipe's normal recordings, the scored one left out; {normal} normal recordings")
    print(f"{'detector':52} | {'Order Error':>11} {'Missing Step':>12} | {'FA/rec':>6} {'FA steps':>8} "
          f"{'rec. any':>8} {'absent':>6} | {'s':>4}")
    for label, run in rows:
        s = run.scores
        order = s["tag_recall"].get("Order Error", {"flagged": 0, "total": 0})
        miss = s.get("missing_step", {"reported": 0, "total": 0})
        fa = s["false_alarms"]
        print(f"{label:52} | {100 * order['flagged'] / max(order['total'], 1):10.1f}% "
              f"{100 * miss['reported'] / max(miss['total'], 1):11.1f}% | {fa['per_video']:6.2f} "
              f"{100 * fa['step_rate']:7.1f}% {100 * fa['videos_with_any']:7.1f}% "
              f"{100 * fa['absent_reported']:5.1f}% | "
              f"{run.seconds:4.1f}")
    order_total = rows[0][1].scores["tag_recall"]["Order Error"]["total"]
    miss_total = rows[0][1].scores.get("missing_step", {}).get("total", 0)
    print(f"Order Error: {order_total} performed steps tagged; Missing Step: {miss_total} steps not performed and "
          "tagged (reported absent: named as a missing precondition on the way or required and not done at the end); "
          "false alarms (FA) on normal recordings: flags per recording, share of their steps flagged, share of them "
          "with any flag, share with a step reported absent at the end")
    families = {
        "precondition + successors, tolerance curve": [r for r in rows if r[0].startswith("precondition: + successors")
                                                       and "count" not in r[0] and "violations" not in r[0]],
        "precondition + successors, violations curve": [r for r in rows if r[0] == "precondition: + successors"
                                                        or r[0].startswith("precondition: + successors, violations")],
        "probability, state model, threshold curve": [r for r in rows if "state model" in r[0]],
        "reference, human graphs + successors, violations curve": [r for r in rows if r[0].startswith(
            "reference, human graphs: + successors")]}
    for family, members in families.items():
        for unit, key in (("normal steps", "step_rate"), ("normal recordings", "videos_with_any")):
            # chosen from normal recordings only: the most permissive point within the limit
            within = [r for r in members if r[1].scores["false_alarms"][key] <= TARGET_CC4D[1] / 100]
            if not within:
                print(f"{family}: no point with <= {TARGET_CC4D[1]:.0f}% of {unit} flagged")
                continue
            fa_of = lambda r: (r[1].scores["false_alarms"][key], r[1].scores["false_alarms"]["step_rate"])  # noqa: E731
            label, run = max(within, key=fa_of)
            order = run.scores["tag_recall"]["Order Error"]
            recall = 100 * order["flagged"] / order["total"]
            fa = run.scores["false_alarms"]
            verdict = "met" if recall >= TARGET_CC4D[0] else f"missed by {TARGET_CC4D[0] - recall:.1f} points"
            print(f"{family}: operating point = its most permissive point with <= {TARGET_CC4D[1]:.0f}% of {unit} "
                  f"flagged (read from normal recordings only): {label.split(': ', 1)[1]}: Order Error recall "
                  f"{recall:.1f}% at {100 * fa['step_rate']:.1f}% of normal steps flagged and "
                  f"{100 * fa['videos_with_any']:.1f}% of normal recordings with any flag -> target "
                  f"(>= {TARGET_CC4D[0]:.0f}%) {verdict}")
    print("successors=true for CaptainCook4D follows its labelling: both steps of a swapped pair carry 'Order "
          "Error', and the later one is caught only as coming after its successors")


# ---------------------------------------------------------------------------- (c) synthetic, from video

# (folder, seed): every choice is made on "tune"; "heldout" is scored once with what was chosen. "heldout14" was
# the held-out world of the first choices (each step once, on segments), scored then; it is printed beside the
# fresh one, no longer held out from the choices made since.
SYNTH_WORLDS = {"tune": ("datasets/synth/mistakes_tune_seed13", 13),
                "heldout": ("datasets/synth/mistakes_heldout_seed15", 15),
                "heldout14": ("datasets/synth/mistakes_heldout_seed14", 14)}
SYNTH_VIDEOS = 60
SYNTH_P = 0.5  # probability of a mistake per video
TRAIN_SEED, TRAIN_VIDEOS = 11, 240  # mistake-free training videos (annotated step paths)
# grounding settings tried on the tuning world: (units, order, drop percentile, step cost, repeat margin: None =
# each step once, else procvid.ground.mark_repeats). units: the SBD segments, or every feature frame (2 fps), so a
# short step the segmenter merged with its neighbour can still be labelled on its own
UNITS = ("segments", "frames")
REPEAT_MARGINS = (None, 0.25, 0.5, 1.0, 1.5, 2.0)
GROUND_GRID = [(units, order, drop, cost, repeat) for units in UNITS for order in ("any", "linear")
               for drop in (50.0, 65.0, 80.0) for cost in (0.0, 1.0) for repeat in REPEAT_MARGINS]
TARGET_SYNTH = 70.0
# grounding encoders: the clip-level `video` (the choice) or the per-frame `default` (procvid-clip-tiny, the text
# space `video` was trained against); `--tune --encoder default` prints the tuning grid on the latter, whose
# features were looked at and did not pay there (README); segments stay the `video` features' sbd segments
SYNTH_ENCODERS = ("video", "default")
SYNTH_MIN_THRESHOLD = 0.001  # the probability thresholds part (c) searched (the CV grid's lowest then)
PUBLISHED_PREDICTED = ("DO from predicted steps, A101-O (published)", 53.5)


def synth_training() -> tuple[dict, dict]:
    """(task -> annotated step paths, task -> step ids) of the mistake-free training world: the
    annotations generate_world writes for it (plan_video), without rendering its pixels."""
    from procvid.data.synthetic import plan_video, task_specs

    specs = task_specs()
    sequences: dict = {}
    for i in range(TRAIN_VIDEOS):
        plan = plan_video(specs[i % len(specs)], i, TRAIN_SEED)
        sequences.setdefault(plan.task_id, []).append(plan.order)
    return sequences, {s.id: s.step_ids for s in specs}


def synth_steps_folder(world, setting, encoder: str = "video") -> str:
    """Where one world's grounded steps with one grounding setting go (segment units keep the folder names
    of the first version, so their outputs stay current; another encoder than `video` is named)."""
    units, order, drop, cost, repeat = setting
    return (f"{world}_steps_" + ("" if encoder == "video" else f"{encoder}_")
            + ("" if units == "segments" else f"{units}_") + f"{order}_d{drop:g}_c{cost:g}"
            + ("" if repeat is None else f"_r{repeat:g}"))


def synth_inputs(dataset, units: str, segments, features, own_features: bool = True) -> list:
    """The ground stage's inputs of one world: each video's segments file, or its feature sidecar (every frame
    a unit). own_features False: the segments' frame ranges over `features` (another encoder's, same frames)."""
    from pathlib import Path

    from procvid.ground_files import GroundInput
    from procvid.segment.files import SegmentedVideo, read_segments_doc

    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, not {units!r}")
    if units == "frames":
        return [GroundInput(v.video_id, Path(features) / f"{v.video_id}.json", v.task_id) for v in dataset.videos]
    out = []
    for v in dataset.videos:
        source = Path(segments) / f"{v.video_id}.segments.json"
        if own_features:
            out.append(GroundInput(v.video_id, source, v.task_id))
        else:  # the features named in the document are grounded (and part of the ground stage's stamp)
            doc = {**read_segments_doc(source), "features": str(Path(features) / f"{v.video_id}.safetensors")}
            out.append(GroundInput(v.video_id, source, v.task_id, SegmentedVideo(v.video_id, source, doc, v.task_id)))
    return out


def synth_prepare(world, seed: int, grounding=GROUND_GRID, encoder: str = "video") -> tuple:
    """Generate (if missing), embed, segment and ground one world with each grounding setting, on the features
    of `encoder` (segments always from the `video` features); (dataset, {setting: {stem: steps doc}}, seconds)."""
    from pathlib import Path

    from procvid.data import load_dataset
    from procvid.data.synthetic import ensure_world
    from procvid.embedding import embed_videos
    from procvid.encoders import load_encoder
    from procvid.ground_files import ground_batch
    from procvid.segment import get_detector
    from procvid.segment.batch import segment_batch
    from procvid.video import Sampling, find_videos

    started = time.perf_counter()
    world = Path(world)
    ensure_world(world, SYNTH_VIDEOS, seed, mistakes=SYNTH_P, progress=False)
    features, segments = Path(f"{world}_features_video"), Path(f"{world}_segments_sbd")
    if encoder not in SYNTH_ENCODERS:
        raise ValueError(f"encoder must be one of {SYNTH_ENCODERS}, not {encoder!r}")
    videos, video_encoder = find_videos([world / "videos"]), load_encoder("video")
    embed_videos(videos, features, video_encoder, Sampling(fps=2.0), progress=False)
    segment_batch([features], segments, get_detector("sbd"), encoder="video", keyframes=None, progress=False)
    grounding_features, text_encoder = features, video_encoder
    if encoder != "video":  # the same 2 fps frames, so the segments' frame ranges hold
        grounding_features, text_encoder = Path(f"{world}_features_{encoder}"), load_encoder(encoder)
        embed_videos(videos, grounding_features, text_encoder, Sampling(fps=2.0), progress=False)
    dataset = load_dataset(world)
    grounded = {}
    for setting in grounding:
        units, order, drop, cost, repeat = setting
        docs, summary = ground_batch(synth_inputs(dataset, units, segments, grounding_features, encoder == "video"),
                                     Path(synth_steps_folder(world, setting, encoder)), dataset.tasks, {},
                                     text_encoder, order, drop_percentile=drop, step_cost=cost, progress=False,
                                     repeat_margin=repeat)
        if summary.failed:
            raise SystemExit(f"grounding failed for {summary.failed} videos of {world}")
        grounded[setting] = docs
    return dataset, grounded, time.perf_counter() - started


def _cut(video) -> int:
    """Steps scored: up to and including the video's mistake, all of a mistake-free one."""
    marked = [i for i, s in enumerate(video.segments) if s.errors]
    return marked[0] + 1 if marked else len(video.segments)


def synth_items(video, flags, spans=None) -> tuple[list, list, list]:
    """(labels, flags, mistake kind or None) of the scored steps of one video (module doc, (c)).
    flags: per step of the true path (spans None) or of the grounded path with spans (step, start, end)."""
    n = _cut(video)
    truth = video.segments[:n]
    labels = [int(bool(s.errors)) for s in truth]
    kinds = [video.meta.get("mistake") if s.errors else None for s in truth]
    if spans is None:
        return labels, [int(f) for f in flags[:n]], kinds
    cut = truth[-1].end
    pairs = sorted(((min(t.end, e) - max(t.start, s), i, j) for i, t in enumerate(truth)
                    for j, (step, s, e) in enumerate(spans) if step == t.step_id and min(t.end, e) > max(t.start, s)),
                   reverse=True)
    match, used = {}, set()
    for _, i, j in pairs:  # greedy: largest overlaps first, each step matched once
        if i not in match and j not in used:
            match[i] = j
            used.add(j)
    out = [int(flags[match[i]]) if i in match else 0 for i in range(n)]
    for j, (step, s, e) in enumerate(spans):
        if j not in used and (s + e) / 2 < cut:  # a grounded step where no such step happened
            labels.append(0)
            out.append(int(flags[j]))
            kinds.append(None)
    return labels, out, kinds


def synth_score(dataset, detector, grounded: dict | None) -> dict:
    """Pooled step scores and recall per mistake kind, from the grounded paths (or the true ones: None)."""
    from procvid.metrics.mistakes import mistake_scores

    labels, flags, kinds = [], [], []
    for v in dataset.videos:
        if grounded is None:
            y, f, k = synth_items(v, [x.flag for x in detector.run(v.task_id, v.path)])
        else:
            doc = grounded[v.video_id]
            spans = [(r["step"], r["start"], r["end"]) for r in doc["steps"]]
            y, f, k = synth_items(v, [x.flag for x in detector.run(v.task_id, doc["path"])], spans)
        labels += y
        flags += f
        kinds += k
    out = mistake_scores(labels, flags)
    out["kinds"] = {kind: (sum(f for f, k in zip(flags, kinds) if k == kind), kinds.count(kind))
                    for kind in sorted({k for k in kinds if k})}
    return out


def synth_candidates() -> list[tuple[str, dict]]:
    """(detector, settings): every setting of the CV grids of both detectors."""
    from procvid.mistakes.select import grid
    from procvid.registry import MISTAKES

    # the grids part (c) was tuned with: settings added later held at their first values (identical detectors)
    first = {"violations": 1, "last": 1.0}
    out = []
    for name in ("precondition", "probability"):
        cls = MISTAKES.get(name)
        out += [(name, settings) for settings in grid(cls, {k: v for k, v in first.items() if k in cls.SETTINGS})
                if settings.get("threshold", 0.01) >= SYNTH_MIN_THRESHOLD]
    return out


def synth_detectors(sequences, steps, candidates):
    """Each candidate built once per fit setting (fitting is the slow part)."""
    from procvid.registry import MISTAKES

    fitted, out = {}, []
    for name, settings in candidates:
        cls = MISTAKES.get(name)
        fit = {k: v for k, v in settings.items() if cls.SETTINGS[k].fit}
        key = (name, repr(sorted(fit.items())))
        if key not in fitted:
            fitted[key] = cls.fit(sequences, steps, None, **fit)
        out.append(cls(fitted[key], **{k: v for k, v in settings.items() if not cls.SETTINGS[k].fit}))
    return out


def _grounding(g) -> str:
    units, order, drop, cost, repeat = g
    return (f"grounding {units}, order {order}, drop percentile {drop:g}, step cost {cost:g}, "
            + ("each step once" if repeat is None else f"repeats marked at margin {repeat:g}"))


def _synth_row(label: str, s: dict) -> None:
    c, m = s["correct"], s["mistake"]
    per_kind = ", ".join(f"{k} {hit}/{total}" for k, (hit, total) in s["kinds"].items())
    print(f"{label:44} | {_pct(s['avg_f1']):>6} | {_pct(c['precision']):>9} {_pct(c['recall'])} {_pct(c['f1'])} | "
          f"{_pct(m['precision']):>9} {_pct(m['recall'])} {_pct(m['f1'])} | {per_kind}")


def print_synthetic(tune_only: bool = False, encoder: str = "video") -> None:
    if encoder != "video" and not tune_only:
        raise ValueError("the held-out worlds are scored with the `video` choice: another encoder only with --tune")
    sequences, steps = synth_training()
    candidates = synth_candidates()
    detectors = synth_detectors(sequences, steps, candidates)
    tune, tune_grounded, tune_s = synth_prepare(*SYNTH_WORLDS["tune"], encoder=encoder)
    # choices on the tuning world only: grounding and detector settings by Avg F1 from video (ties: the
    # earlier in grid order)
    table = [(synth_score(tune, det, tune_grounded[g])["avg_f1"], -k, -i, g, i)
             for k, g in enumerate(GROUND_GRID) for i, det in enumerate(detectors)]
    best_f1, _, _, chosen, best = max(table)
    if tune_only:  # the tuning world alone: best Avg F1 per units and repeat margin, the held-out worlds untouched
        print(f"(c) tuning world seed {SYNTH_WORLDS['tune'][1]}, grounding on `{encoder}` features, best Avg F1 "
              "from video per units and repeat margin:")
        for units in UNITS:
            for repeat in REPEAT_MARGINS:
                f1, _, _, g, i = max(r for r in table if r[3][0] == units and r[3][4] == repeat)
                s = synth_score(tune, detectors[i], tune_grounded[g])
                print(f"  {units:8} {'once' if repeat is None else repeat:>5}: {100 * f1:.1f} (mistake P/R "
                      f"{100 * s['mistake']['precision']:.0f}/{100 * s['mistake']['recall']:.0f}; {_grounding(g)}; "
                      f"{candidates[i][0]} " + ", ".join(f"{k}={v}" for k, v in candidates[i][1].items())
                      + "; caught " + ", ".join(f"{k} {hit}/{total}" for k, (hit, total) in s["kinds"].items()) + ")")
        print(f"  {'chosen' if encoder == 'video' else 'best'}: {_grounding(chosen)}; preparing the tuning world "
              f"{tune_s:.0f} s")
        return
    (name, settings), detector = candidates[best], detectors[best]
    print(f"(c) synthetic world with mistakes, from video: tuning world seed {SYNTH_WORLDS['tune'][1]}; graphs from "
          f"{TRAIN_VIDEOS} mistake-free training paths (seed {TRAIN_SEED}); scores in %")
    print(f"  chosen on the tuning world ({len(detectors)} detector settings x {len(GROUND_GRID)} grounding settings, "
          f"Avg F1 from video {100 * best_f1:.1f}): {_grounding(chosen)}; {name} "
          + ", ".join(f"{k}={v}" for k, v in settings.items()))
    print(f"{'rows':44} | {'Avg F1':>6} | {'correct P':>9} {'R':>5} {'F1':>5} | {'mistake P':>9} {'R':>5} "
          f"{'F1':>5} | recall per kind")
    timings, fresh = [], None
    for key, note in (("heldout", "held out, scored once"), ("heldout14", "scored before for the first choices")):
        test, test_grounded, test_s = synth_prepare(*SYNTH_WORLDS[key], grounding=[chosen])
        timings.append(f"seed {SYNTH_WORLDS[key][1]} {test_s:.0f} s")
        kinds = ", ".join(f"{k} {sum(1 for v in test.videos if v.meta.get('mistake') == k)}"
                          for k in ("order", "skip", "repeat"))
        labels = sum(1 for v in test.videos for _ in range(_cut(v)))
        mistakes = sum(1 for v in test.videos if v.meta.get("mistake") != "none")
        print(f"world seed {SYNTH_WORLDS[key][1]} ({note}; {len(test.videos)} videos, {labels} true steps scored, "
              f"{mistakes} mistakes: {kinds})")
        video = synth_score(test, detector, test_grounded[chosen])
        _synth_row("  from video (grounded steps)", video)
        _synth_row("  from the true step paths (reference)", synth_score(test, detector, None))
        print(f"  from video also {video['steps'] - labels} grounded steps that match no true step")
        fresh = fresh if fresh is not None else 100 * video["avg_f1"]
    print(f"{PUBLISHED_PREDICTED[0]:44} | {PUBLISHED_PREDICTED[1]:6.1f} |")
    print(f"target Avg F1 >= {TARGET_SYNTH:.0f} from video, held-out world seed {SYNTH_WORLDS['heldout'][1]}: "
          f"{fresh:.1f}: " + ("met" if fresh >= TARGET_SYNTH else f"missed by {TARGET_SYNTH - fresh:.1f}"))
    print(f"  preparing the worlds (generate if missing, embed, segment, ground): tuning {tune_s:.0f} s, "
          + ", ".join(timings))


def main(argv: list[str] | None = None) -> int:
    from procvid.data import load_dataset
    from procvid.errors import ProcvidError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tgml", action="store_true", help="skip the TGML graph row of (a) (about 15 s)")
    parser.add_argument("--part", choices=["a", "b", "c"], help="only one part (default: all)")
    parser.add_argument("--tune", action="store_true", help="part c on the tuning world only (the choices, per "
                                                            "units and repeat margin); no held-out world is read")
    parser.add_argument("--encoder", choices=SYNTH_ENCODERS, default="video",
                        help="with --tune: the grounding encoder's features (default: video, the choice)")
    args = parser.parse_args(argv)
    if args.encoder != "video" and not args.tune:
        parser.error("--encoder: only with --tune (the held-out worlds are scored with the `video` choice)")
    if args.tune:
        args.part = "c"
    started = time.perf_counter()
    try:
        if args.part in (None, "a"):
            print_assembly(load_dataset("assembly101"), tgml=not args.no_tgml)
            print()
        if args.part in (None, "b"):
            print_cc4d(load_dataset("captaincook4d"))
            print()
        if args.part in (None, "c"):
            print_synthetic(tune_only=args.tune, encoder=args.encoder)
    except ProcvidError as e:
        print(f"bench_mistake: error: {e}", file=sys.stderr)
        return 2
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
