"""procvid eval: score a stage against ground truth. One module per nested subcommand."""

import argparse
import importlib

HELP = "evaluate a stage against ground truth (encoder, segment)"
EXAMPLES = [
    "procvid eval encoder --world datasets/synth/heldout --encoder default",
    "procvid eval segment --pred segments/ --gt datasets/synth/heldout/annotations",
]
# nested subcommand -> module defining HELP, EXAMPLES, add_arguments(p), run(args)
SUBCOMMANDS = {
    "encoder": "procvid.commands.eval_encoder",
    "segment": "procvid.commands.eval_segment",
}


def add_arguments(p):
    sub = p.add_subparsers(dest="what", metavar="WHAT", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        q = sub.add_parser(name, help=module.HELP, description=module.HELP,
                           epilog="example:\n  " + "\n  ".join(module.EXAMPLES),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(q)
        q.set_defaults(_eval_run=module.run)


def run(args) -> int:
    return args._eval_run(args)
