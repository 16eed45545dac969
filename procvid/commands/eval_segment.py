"""procvid eval segment: score procvid segment outputs against ground-truth step annotations."""

from procvid.registry import EVAL_COMMANDS

HELP = "score key-step segments (procvid segment outputs) against CrossTask-format ground truth"
EXAMPLES = [
    "procvid eval segment --pred segments/ --gt datasets/synth/heldout",
    "procvid eval segment --pred segments/ --gt ../shared/data/crosstask/crosstask_release/annotations --tolerance 2",
]
EVAL_COMMANDS.register("segment", HELP, __name__)


def add_arguments(p):
    p.add_argument("--pred", required=True, help="folder with <video>.segments.json files (searched recursively)")
    p.add_argument("--gt", required=True,
                   help="ground truth: a folder of <task>_<video>.csv (rows step,start,end), one such file, "
                        "or a dataset folder with annotations/ (CrossTask release, synthetic world)")
    p.add_argument("--tolerance", type=float, default=1.0, help="boundary matching tolerance in seconds (default 1)")
    p.add_argument("--json", help="also write the scores per method to this JSON file")


def run(args) -> int:
    import json

    from procvid.errors import ProcvidError
    from procvid.metrics.segmentation import summarize
    from procvid.data.crosstask import read_ground_truth
    from procvid.metrics.segment_eval import evaluate_predictions, format_table, write_scores

    if args.tolerance < 0:
        raise ProcvidError("--tolerance must be >= 0 seconds")
    gt = read_ground_truth(args.gt)
    scores, params, unmatched = evaluate_predictions(args.pred, gt, args.tolerance)
    if not scores:
        raise ProcvidError(f"no prediction in {args.pred} matches a ground-truth video id in {args.gt} "
                           f"(e.g. prediction {unmatched[0]!r})")
    rows = [(label, summarize(videos)) for label, videos in sorted(scores.items())]
    print(f"boundary P/R/F1 at +-{args.tolerance:g} s (fractions); MoF, F1@k, Edit in %; "
          f"|dK| = mean absolute error in the number of segments")
    print(format_table(rows))
    for label in sorted(p for p in params if "#" in p):
        print(f"{label}: {json.dumps(params[label])}")
    if unmatched:
        print(f"{len(unmatched)} prediction(s) without ground truth left out (e.g. {unmatched[0]})")
    if args.json:
        write_scores(args.json, rows, params)
    return 0
