"""procvid list: what procvid's registries hold (procvid.registry), read without importing torch."""

from procvid.registry import COMMANDS, LISTED

HELP = ("list what procvid knows: encoders, detectors, graph methods, datasets, models, generators, mistake "
        "detectors, commands")
EXAMPLES = ["procvid list", "procvid list detectors"]
COMMANDS.register("list", HELP, __name__)


def add_arguments(p):
    p.add_argument("what", nargs="?", choices=list(LISTED), help="one registry (default: all)")


def run(args) -> int:
    for what in [args.what] if args.what else LISTED:
        indent = "" if args.what else "  "
        if not args.what:
            print(f"{what}:")
        items = LISTED[what].items()
        width = max(len(name) for name, _ in items)
        for name, description in items:
            print(f"{indent}{name:<{width}}  {description}")
        if what == "encoders":
            architectures = _open_clip_architectures()
            known = [a for a in ("ViT-B-32", "ViT-L-14", "procvid-clip-tiny") if a in architectures]
            print(f"{indent}{'':<{width}}  NAME:PRETRAINED takes any of open_clip.list_models(): "
                  f"{len(architectures)} architectures here, e.g. {', '.join(known)}")
    return 0


def _open_clip_architectures() -> list[str]:
    """open_clip.list_models() without importing open_clip (and torch): its model configs and ours."""
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("open_clip")
    folders = [Path(p) / "model_configs" for p in (spec.submodule_search_locations if spec else [])]
    folders.append(Path(find_spec("procvid.encoders").origin).parent / "model_configs")
    return sorted({config.stem for folder in folders for config in folder.glob("*.json")})
