"""`procvid forecast`: what comes next in a video, from what is seen up to a time (the stage and its
file format: procvid.forecast.stage)."""

from __future__ import annotations

from procvid.registry import COMMANDS

HELP = "forecast the next steps of a video (or of its features) from what is seen up to a time"
EXAMPLES = [
    "procvid forecast data/synth/videos/pizza_0005.mp4 --at 20",
    "procvid forecast run_out/features/pizza_0005.json --at 20 --task pizza",
    "procvid forecast data/synth/videos/ --out forecasts --model runs/forecast/model",
]
COMMANDS.register("forecast", HELP, __name__)


def add_arguments(p) -> None:
    from procvid.commands import options

    p.add_argument("inputs", nargs="+", metavar="VIDEO|FEATURES",
                   help="videos, folders of videos, or feature files (<stem>.json / .safetensors from procvid embed)")
    p.add_argument("--at", type=float, metavar="T", help="seconds seen so far (default: the whole video)")
    p.add_argument("--task", metavar="ID", help="the task of every input (default: recognised from the video)")
    p.add_argument("--model", default="shipped", metavar="DIR",
                   help="latent forecaster folder from procvid train forecast (default: shipped "
                        "checkpoints/procvid-forecast, for the synthetic world's `video` features)")
    p.add_argument("--top", type=int, default=3, help="next steps listed (default 3)")
    p.add_argument("--out", metavar="DIR", help="keep the features and <stem>.forecast.json files here "
                                                "(default: a temporary folder)")
    options.add_device(p)
    options.add_no_progress(p)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from procvid.commands.options import check_positive
    from procvid.errors import ProcvidError
    from procvid.forecast.stage import ForecastInput, forecast_batch, load_forecaster, summary_line

    check_positive(top=args.top)
    if args.at is not None and args.at < 0:
        raise ProcvidError(f"--at must be a time in seconds >= 0, got {args.at:g}")
    model = load_forecaster(args.model)
    if args.task is not None and args.task not in model.vocab.tasks:
        raise ProcvidError(f"the forecaster does not know task {args.task!r} (it knows "
                           f"{', '.join(model.vocab.tasks)})")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out or tmp)
        features = _features(args.inputs, out / "features", model, args)
        for stem, path in features.items():
            meta_encoder = _encoder_of(path)
            if meta_encoder != model.encoder:
                raise ProcvidError(f"{path}: features from {meta_encoder}, but the forecaster was trained on "
                                   f"{model.encoder} features: give the video itself, or train a forecaster on "
                                   "these features (procvid train forecast)")
        docs, summary, _ = forecast_batch([ForecastInput(stem, path, args.task) for stem, path in features.items()],
                                          out / "forecast", forecaster=model, at=args.at, top=args.top,
                                          progress=not args.no_progress)
        for stem in features:
            if stem in docs:
                doc = docs[stem]
                print(summary_line(doc))
                for i, n in enumerate(doc["next"], 1):
                    print(f"  {i}. {n['text']}  {n['probability']:.2f}")
    return 1 if summary.failed else 0


def _encoder_of(path):
    from procvid.features import read_sidecar

    return (read_sidecar(path) or {}).get("encoder")


def _features(inputs: list[str], out, model, args) -> dict:
    """stem -> feature sidecar: feature files as given, videos embedded with the forecaster's encoder."""
    from pathlib import Path

    from procvid.errors import ProcvidError
    from procvid.features import entry_key
    from procvid.segment.files import add_input
    from procvid.video import find_videos

    found, videos = {}, []
    for arg in inputs:
        p = Path(arg)
        if p.is_file() and p.suffix in (".json", ".safetensors"):
            add_input(found, p.stem, p.with_suffix(".json"))
        elif p.exists():
            videos.append(p)
        else:
            raise ProcvidError(f"{p}: no such video, folder or feature file")
    if videos:
        from procvid.embedding import embed_videos
        from procvid.encoders import load_encoder
        from procvid.video import Sampling

        spec = model.info.get("encoder_spec")
        if not spec:
            raise ProcvidError(f"{model.folder}: the forecaster does not say which encoder made its features; "
                               "give feature files instead of videos")
        pairs = find_videos(videos)
        embed_videos(pairs, out, load_encoder(spec, device=args.device), Sampling(fps=model.info.get("fps", 2.0)),
                     progress=not args.no_progress)
        for _, rel in pairs:  # the stem keeps the sub-folders: a/clip.mp4 and b/clip.mp4 stay apart
            add_input(found, entry_key(rel), Path(out) / rel.with_suffix(".json"))
    return found
