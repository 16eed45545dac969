"""procvid train: Lightning training runs configured by YAML (LightningCLI)."""

import argparse

from procvid.registry import COMMANDS, MODELS

HELP = "train a procvid model with Lightning (YAML configs, overrides, checkpoints, resume)"
EXAMPLES = [
    "procvid train clip --config configs/train/clip_tiny.yaml --config configs/trainer/cpu.yaml",
    "procvid train video --config configs/train/video_tiny.yaml --config configs/trainer/cpu.yaml",
    "procvid train clip --config configs/train/clip_tiny.yaml --print_config",
    "procvid train clip --config configs/train/clip_tiny.yaml --config configs/trainer/debug.yaml",
    "procvid train clip --config configs/train/clip_tiny.yaml --trainer.max_steps 100 --ckpt_path runs/clip/last.ckpt",
]
COMMANDS.register("train", HELP, __name__)


def add_arguments(p):
    p.add_argument("model", type=MODELS.check, help="which model to train (see: procvid list models)")
    p.add_argument("lightning_args", nargs=argparse.REMAINDER,
                   help="LightningCLI arguments: --config FILE (repeatable), --print_config, --trainer.*, "
                        "--model.*, --data.*, --ckpt_path; `procvid train MODEL --help` lists them")
    p.add_help = False


def run(args) -> int:
    from procvid.train.cli import train

    train(args.model, args.lightning_args)
    return 0
