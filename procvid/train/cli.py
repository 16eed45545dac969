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

    _check_config_files(argv)
    # We hand LightningCLI the arguments after `procvid train MODEL` on purpose.
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
    cli = _one_line_errors(lambda: _CLI(module_cls, data_cls, args=argv, run=False, seed_everything_default=0,
                                        save_config_kwargs={"overwrite": True},
                                        parser_kwargs={"prog": f"procvid train {model}"}))
    if cli.trainer.fast_dev_run:  # a smoke run keeps nothing: Lightning 2.6 still saves `save_last` at train end
        from lightning.pytorch.callbacks import ModelCheckpoint

        cli.trainer.callbacks[:] = [c for c in cli.trainer.callbacks if not isinstance(c, ModelCheckpoint)]
    cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.get("ckpt_path"))


def _check_config_files(argv: list[str]) -> None:
    """Each --config file exists and is YAML, named in the error when not."""
    import yaml

    from procvid.errors import ProcvidError

    for i, arg in enumerate(argv):
        path = argv[i + 1] if arg == "--config" and i + 1 < len(argv) else \
            arg.partition("=")[2] if arg.startswith("--config=") else None
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                yaml.safe_load(f)
        except OSError as e:
            raise ProcvidError(f"--config {path}: {e.strerror}") from None
        except yaml.YAMLError as e:
            raise ProcvidError(f"--config {path}: not valid YAML ({' '.join(str(e).split())[:200]})") from None


def _one_line_errors(build):
    """Run LightningCLI's parsing; a usage error becomes one ProcvidError line instead of its usage text."""
    import contextlib
    import io

    from procvid.errors import ProcvidError

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return build()
    except SystemExit as e:
        if not e.code:  # --help, --print_config: their output is the point
            raise
        lines = [line.strip() for line in captured.getvalue().splitlines() if "error:" in line]
        message = lines[-1].split("error:", 1)[1].strip() if lines else "invalid arguments"
        raise ProcvidError(" ".join(message.split())[:300] + " (see procvid train MODEL --help)") from None
