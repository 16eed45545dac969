"""The `procvid` console script: one parser, thin subcommands in procvid/commands/.

Each command module defines HELP, EXAMPLES, add_arguments(parser) and run(args) -> exit code, and
registers itself in procvid.registry.COMMANDS (whose module list sets the order of the commands).
Heavy imports (torch, decord, ...) happen inside run(), so `procvid --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from procvid.errors import ProcvidError
from procvid.registry import COMMANDS, Registry


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one line on stderr (exit 2), not the usage text and then the error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="procvid",
        description="Understand procedures in instructional videos.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    add_subcommands(parser.add_subparsers(dest="command", metavar="COMMAND"), COMMANDS, "_run")
    return parser


def add_subcommands(sub, registry: Registry, run_key: str) -> None:
    """One subparser per command module in `registry`; its run(args) goes to args.<run_key>."""
    for name in registry.names():
        module = importlib.import_module(registry.get(name))
        p = sub.add_parser(
            name,
            help=module.HELP,
            description=module.HELP,
            epilog="example:\n  " + "\n  ".join(module.EXAMPLES),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(p)
        p.set_defaults(**{run_key: module.run})


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
    try:
        args = parser.parse_args(argv)
    except ProcvidError as e:  # an unknown registry name, from an argparse `type=` (e.g. --method nope)
        print(f"procvid: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # a usage error (one line, OneLineParser) or --help: an exit code, as for the rest
        return e.code if isinstance(e.code, int) else 2
    _setup_logging(args.verbose)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ProcvidError as e:
        print(f"procvid {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # the machine's side: a full disk, a read-only or vanished folder, ...
        where = f"{e.filename}: " if e.filename else ""
        print(f"procvid {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"procvid {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
