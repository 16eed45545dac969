"""procvid train: Lightning training runs configured by YAML (LightningCLI)."""

import argparse

HELP = "train a procvid model with Lightning (YAML configs, overrides, checkpoints, resume)"
EXAMPLES = [
    "procvid train clip --config configs/train/clip_tiny.yaml --config configs/trainer/cpu.yaml",
    "procvid train video --config configs/train/video_tiny.yaml --config configs/trainer/cpu.yaml",
    "procvid train clip --config configs/train/clip_tiny.yaml --print_config",
    "procvid train clip --config configs/train/clip_tiny.yaml --config configs/trainer/debug.yaml",
    "procvid train clip --config configs/train/clip_tiny.yaml --trainer.max_steps 100 --ckpt_path runs/clip/last.ckpt",
]


def add_arguments(p):
    from procvid.train.cli import MODELS

    p.add_argument("model", choices=sorted(MODELS), help="which model to train")
    p.add_argument("lightning_args", nargs=argparse.REMAINDER,
                   help="LightningCLI arguments: --config FILE (repeatable), --print_config, --trainer.*, "
                        "--model.*, --data.*, --ckpt_path; `procvid train MODEL --help` lists them")
    p.add_help = False


def run(args) -> int:
    from procvid.train.cli import train

    train(args.model, args.lightning_args)
    return 0
