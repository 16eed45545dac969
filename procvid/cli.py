"""The `procvid` console script: one parser, thin subcommands in procvid/commands/.

Each command module defines HELP, EXAMPLES, add_arguments(parser) and run(args) -> exit code.
Heavy imports (torch, decord, ...) happen inside run(), so `procvid --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from procvid.errors import ProcvidError

# Subcommand name -> module under procvid.commands. Add new commands here.
COMMANDS = {
    "demo": "demo",
    "run": "run",
    "synth": "synth",
    "embed": "embed",
    "segment": "segment",
    "ground": "ground",
    "train": "train",
    "graph": "graph",
    "eval": "eval",
    "generate": "generate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="procvid",
        description="Understand procedures in instructional videos.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"procvid.commands.{module_name}")
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog="example:\n  " + "\n  ".join(module.EXAMPLES),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


class _TqdmHandler(logging.Handler):
    """Log lines printed above progress bars instead of through them."""

    def emit(self, record):
        from tqdm import tqdm

        tqdm.write(self.format(record), file=sys.stderr)


def _setup_logging(verbose: bool) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(lambda r: r.name.startswith("procvid") or r.levelno >= logging.WARNING)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)  # third-party libraries are chatty
    logging.getLogger("procvid").setLevel(logging.DEBUG if verbose else logging.INFO)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ProcvidError as e:
        print(f"procvid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"procvid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
