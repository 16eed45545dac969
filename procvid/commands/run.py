"""procvid run: videos -> features -> key steps -> graph scripts -> HTML report."""

from procvid.registry import COMMANDS, DETECTORS

HELP = "run the whole pipeline on videos and write a browsable HTML report"
EXAMPLES = [
    "procvid run data/synth/videos --annotations data/synth --out run_out",
    "procvid run my_videos/ --steps tasks.json --task tea --out run_out",
    "procvid run ../shared/data/videos --out run_out --encoder ViT-B-32:/models/open_clip_pytorch_model.bin",
    "procvid run videos/ --out run_out --config configs/run/default.yaml --method uvd",
    "procvid run corpus/ --out run_out --layout shards --timelines sample --no-generate",
]
COMMANDS.register("run", HELP, __name__)


def add_arguments(p):
    from procvid.commands import options

    p.add_argument("inputs", nargs="+", help="videos, folders or .txt lists (as for embed)")
    p.add_argument("--out", required=True, help="output folder; a rerun continues where a run stopped")
    p.add_argument("--annotations", help="dataset name or folder giving each video's task and steps "
                                         "(CrossTask format or a synthetic world)")
    p.add_argument("--steps", metavar="FILE|NAME|DIR",
                   help="the tasks' steps, for videos without annotations: a tasks.json, a CrossTask tasks file or "
                        "a dataset; steps are grounded and graph scripts built from the grounded step paths")
    p.add_argument("--task", metavar="ID", help="with --steps: the task of every video (default: the only task, "
                                                 "or each video's <task>_ name prefix)")
    p.add_argument("--config", default="default", help="pipeline preset: a name in configs/run/ (default, synthetic) or a YAML file "
                                    "(default: configs/run/default.yaml, for real videos)")
    options.add_encoder(p, default=None)
    p.add_argument("--method", type=DETECTORS.check, metavar="NAME",
                   help="boundary detector (see `procvid list detectors`; default from the config)")
    options.add_fps(p, default=None)
    p.add_argument("--kig", metavar="PATH", help="key-step image generator folder (ours or a diffusers "
                                                 "InstructPix2Pix / Stable Diffusion folder; default: shipped)")
    p.add_argument("--no-generate", action="store_true", help="skip the key-step generation examples")
    p.add_argument("--at", type=float, metavar="T", help="forecast what comes next after T seconds of each video "
                                                        "(default: at its end)")
    p.add_argument("--timelines", choices=["auto", "all", "sample", "none"],
                   help="which videos get a timeline figure: all, none, or a sample spread over the tasks "
                        "(default auto: all up to 48 videos, else a sample of 48)")
    options.add_layout(p, default=None)
    p.add_argument("--keyframes", choices=["auto", "all", "none"],
                   help="key-frame thumbnails per segment (default auto: with the files layout only)")
    options.add_device(p, default=None)
    options.add_workers(p, default=None)
    options.add_engine(p, default=None)
    options.add_no_progress(p)


def run(args) -> int:
    from procvid.commands.options import check_positive
    from procvid.errors import ProcvidError
    from procvid.pipeline import RunConfig, run_pipeline

    if args.steps and args.annotations:
        raise ProcvidError("give --annotations (tasks, steps and ground truth) or --steps (tasks' steps only), "
                           "not both")
    if args.task and not args.steps:
        raise ProcvidError("--task needs --steps")
    check_positive(fps=args.fps, workers=args.workers)
    if args.at is not None and args.at < 0:
        raise ProcvidError(f"--at must be a time in seconds >= 0, got {args.at:g}")
    config = RunConfig.from_yaml(args.config, encoder=args.encoder, method=args.method, fps=args.fps,
                                 device=args.device, kig=args.kig, workers=args.workers, engine=args.engine,
                                 generate=False if args.no_generate else None, timelines=args.timelines,
                                 layout=args.layout, keyframes=args.keyframes)
    result = run_pipeline(args.inputs, args.out, config, annotations=args.annotations, steps=args.steps,
                          task=args.task, progress=not args.no_progress, at=args.at)
    for what, why, flag in result.skipped:
        print(f"skipped: {what} ({why}); to get it: {flag}")
    from procvid.forecast.stage import summary_line

    for doc in result.forecasts.values():
        print(summary_line(doc))
    print(f"report: {result.report}")
    if result.failed:
        print(f"{result.failed} input(s) failed; reasons in the failures.jsonl of {args.out}/segments and "
              f"{args.out}/steps")
    return 1 if result.failed else 0
