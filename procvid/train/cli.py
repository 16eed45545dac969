"""`procvid train MODEL ...`: LightningCLI over every model procvid trains.

Configs are YAML (`--config` may be repeated: a model config plus a trainer preset from
configs/trainer/), `--print_config` prints the resolved config, any option can be overridden on the
command line (`--trainer.max_steps 10`), the resolved config is saved into each run's log folder,
and `--ckpt_path` resumes a run.
"""

from __future__ import annotations

from procvid.registry import MODELS  # (LightningModule, LightningDataModule) pairs: `procvid list models`


def train(model: str, argv: list[str]) -> None:
    import warnings

    module_cls, data_cls = MODELS.get(model)  # an unknown name fails before Lightning loads

    from lightning.pytorch.cli import LightningCLI

    class _CLI(LightningCLI):
        def add_arguments_to_parser(self, parser):
            parser.add_argument("--ckpt_path", default=None, help="resume from this Lightning checkpoint")

    # We hand LightningCLI the arguments after `procvid train MODEL` on purpose.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    cli = _CLI(module_cls, data_cls, args=argv, run=False, seed_everything_default=0,
               save_config_kwargs={"overwrite": True}, parser_kwargs={"prog": f"procvid train {model}"})
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))
