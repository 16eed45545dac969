"""procvid eval: score a stage against ground truth. One module per nested subcommand."""

from procvid.registry import COMMANDS, EVAL_COMMANDS

HELP = "evaluate a stage against ground truth (encoder, segment)"
EXAMPLES = [
    "procvid eval encoder --world datasets/synth/heldout --encoder default",
    "procvid eval segment --pred segments/ --gt datasets/synth/heldout/annotations",
]
COMMANDS.register("eval", HELP, __name__)  # nested subcommands: EVAL_COMMANDS


def add_arguments(p):
    from procvid.cli import add_subcommands

    add_subcommands(p.add_subparsers(dest="what", metavar="WHAT", required=True), EVAL_COMMANDS, "_eval_run")


def run(args) -> int:
    return args._eval_run(args)
