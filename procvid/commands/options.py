"""The options several commands share, each with its one default (procvid.defaults)."""

from __future__ import annotations

from procvid import defaults
from procvid.errors import ProcvidError


def add_encoder(p, default=defaults.ENCODER) -> None:
    p.add_argument("--encoder", default=default,
                   help=f"encoder: video (shipped clip-level model), default (shipped procvid-clip-tiny), minilm, or "
                        f"an open_clip NAME:PRETRAINED (tag, file or folder); see `procvid list encoders` "
                        f"(default {default or 'from the config'})")


def add_fps(p, default=defaults.FPS) -> None:
    p.add_argument("--fps", type=float, default=default,
                   help=f"frames embedded per second (default {default or 'from the config'})")


def add_device(p, default=defaults.DEVICE) -> None:
    p.add_argument("--device", default=default, help=f"auto, cpu, cuda, cuda:1, ... (default {default or 'auto'})")


def add_workers(p, default=defaults.WORKERS) -> None:
    p.add_argument("--workers", type=int, default=default,
                   help=f"decoding threads of the local engine (default {default or defaults.WORKERS})")


def add_engine(p, default=defaults.ENGINE) -> None:
    p.add_argument("--engine", choices=["local", "ray"], default=default,
                   help="local: this process (decoding threads); ray: a pool of Ray actors, RAY_ADDRESS for a cluster "
                        f"(default {default or defaults.ENGINE})")


def add_layout(p, default="auto") -> None:
    p.add_argument("--layout", choices=["auto", "files", "shards"], default=default,
                   help="outputs per video (files) or as rows of Parquet shards with an index, for corpus-scale "
                        "runs (default auto: the layout the output already has, else shards above 1000 videos)")


def add_no_progress(p) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def check_positive(**values) -> None:
    """One line for the first option that is set but not positive."""
    for name, value in values.items():
        if value is not None and value <= 0:
            raise ProcvidError(f"--{name.replace('_', '-')} must be positive, got {value:g}")


def engine_from(args):
    from procvid.engine import make_engine

    check_positive(workers=args.workers)
    return make_engine(args.engine, args.workers, not args.no_progress)
