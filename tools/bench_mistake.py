"""Online mistake detection benchmark: Assembly101-O (published protocol) and CaptainCook4D.

(a) Assembly101-O (Seminara et al., NeurIPS 2024, "Differentiable Task Graph Learning"): learn from the
    135 mistake-free training sequences; for each of the 182 test sequences the steps arrive one at a
    time and each is flagged from the steps before it; the last step of every test sequence is its
    first mistake (677 steps, 182 mistakes). Per-class precision/recall/F1 pooled over all test steps
    and their mean, Avg F1 (procvid.metrics.mistakes; the published code prints P and R exchanged, F1
    is unaffected). Our rows: each detector with the settings 5-fold cross-validation on the training
    sequences chooses (procvid.mistakes.select: simulated mistakes, the test split is never read while
    choosing), and the published precondition rule on graphs from our induction methods, fixed.
(b) CaptainCook4D: for each recording, graphs / models from the normal (error-free) recordings of its
    recipe, the scored recording left out. Recall of performed steps tagged "Order Error" (flagged when
    performed); recall of "Missing Step" (a step not performed that the detector reports absent by the
    end of the recording: named as a missing precondition of a later step, or required and not done at
    the end); false alarms on the 164 normal recordings: flags per recording, share of their steps
    flagged, share of them with any flag. Thresholded detectors give a curve; the operating point is
    the most permissive setting whose false alarms stay within 10% of normal steps (read from normal
    recordings only). The human task graphs are a reference row (not learned).
(c) The synthetic world with mistakes, from video: not built yet (the generator option is open work).

    python tools/bench_mistake.py [--no-tgml] [--part a|b]
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
PUBLISHED_RULE = {"optional": "required", "successors": False, "repeats": False}  # the published rule
TARGET_A101 = (80.0, 65.0)  # Avg F1, mistake F1
TARGET_CC4D = (70.0, 10.0)  # order-error recall, false alarms on normal recordings (%)


def _pct(x) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}"


def assembly_rows(dataset, tgml: bool) -> list[tuple[str, str | None, object]]:
    """(label, published counterpart, MistakeRun) of our Assembly101-O rows."""
    from procvid.mistakes.batch import run_detection

    rows = [("precondition, settings by CV", None, run_detection(dataset, "precondition", protocol="split")),
            ("probability, settings by CV", None, run_detection(dataset, "probability", protocol="split"))]
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
    for label, _, run in rows[:2]:
        chosen = ", ".join(f"{k}={v}" for k, v in run.selection["settings"].items())
        print(f"  {label}: chose {chosen} (5-fold CV on the training sequences, simulated mistakes)")
    # the detector too is chosen by its CV score (the same simulated cases for both), never by test scores
    best = max(rows[:2], key=lambda r: max(x["avg_f1"] for x in r[2].selection["cv"]))
    for label, _, run in rows[:2]:
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
                            ("+ successors, count graph", {"successors": True, "graph_method": "count"})]:
        rows.append((f"precondition: {label}", run_detection(dataset, "precondition", settings, protocol="loo")))
    for threshold in (0.01, 0.02, 0.05, 0.1, 0.2, 0.3):
        rows.append((f"probability: state model, threshold {threshold:g}",
                     run_detection(dataset, "probability", {"model": "state", "threshold": threshold},
                                   protocol="loo")))
    rows.append(("probability: graph walk, threshold 0.01",
                 run_detection(dataset, "probability", {"model": "walk", "threshold": 0.01}, protocol="loo")))
    human = human_task_graphs(dataset)
    for label, settings in [("published rule", {}), ("+ successors", {"successors": True})]:
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
    families = {"precondition + successors, tolerance curve": [r for r in rows if r[0].startswith(
        "precondition: + successors") and "count" not in r[0]],
                "probability, state model, threshold curve": [r for r in rows if "state model" in r[0]]}
    for family, members in families.items():
        within = [r for r in members if r[1].scores["false_alarms"]["step_rate"] <= TARGET_CC4D[1] / 100]
        if not within:
            print(f"{family}: no point within {TARGET_CC4D[1]:.0f}% false alarms")
            continue
        label, run = max(within, key=lambda r: r[1].scores["false_alarms"]["step_rate"])
        order = run.scores["tag_recall"]["Order Error"]
        recall = 100 * order["flagged"] / order["total"]
        fa = run.scores["false_alarms"]
        per_recording = 100 * fa["videos_with_any"]
        verdict = "met" if recall >= TARGET_CC4D[0] else f"missed by {TARGET_CC4D[0] - recall:.1f} points"
        print(f"{family}: operating point = its most permissive point with <= {TARGET_CC4D[1]:.0f}% of normal steps "
              f"flagged (read from normal recordings only): {label}: Order Error recall {recall:.1f}% at "
              f"{100 * fa['step_rate']:.1f}% of normal steps flagged -> target (>= {TARGET_CC4D[0]:.0f}%) {verdict}; "
              f"counting a normal recording with any flag as a false alarm: {per_recording:.1f}% -> "
              f"{'met' if per_recording <= TARGET_CC4D[1] else 'not met'}")
    print("successors=true for CaptainCook4D follows its labelling: both steps of a swapped pair carry 'Order "
          "Error', and the later one is caught only as coming after its successors")


def main(argv: list[str] | None = None) -> int:
    from procvid.data import load_dataset
    from procvid.errors import ProcvidError

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-tgml", action="store_true", help="skip the TGML graph row of (a) (about 15 s)")
    parser.add_argument("--part", choices=["a", "b"], help="only one part (default: all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        if args.part in (None, "a"):
            print_assembly(load_dataset("assembly101"), tgml=not args.no_tgml)
            print()
        if args.part in (None, "b"):
            print_cc4d(load_dataset("captaincook4d"))
            print()
        if args.part is None:
            print("(c) synthetic world with mistakes, from video: not available yet (no generator option for mistakes)")
    except ProcvidError as e:
        print(f"bench_mistake: error: {e}", file=sys.stderr)
        return 2
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
