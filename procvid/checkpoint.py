"""One format for procvid's own models: a folder with `config.json` and `model.safetensors`.

config.json holds ``"format": "procvid-model"``, ``"format_version"``, ``"kind"`` (which model:
"sbd-predictor", "video-encoder", "script-model"), ``"domain"`` (which footage the model is for,
e.g. "procvid synthetic world v1"), the architecture's hyper-parameters under ``"architecture"``,
and free information (the encoder of the training features, a vocabulary: anything that is not a
tensor). model.safetensors holds the weights.

Loading reads JSON and safetensors only: nothing is ever unpickled, so a model file from anywhere
cannot run code. Every problem with a folder is one :class:`ProcvidError` line. Saving is atomic
per folder: both files are written under temporary names first, and the old config.json is
removed before the new files are renamed into place, so a killed save leaves the old model, the
new one, or a folder that does not load (never weights from one save with the config of another).

Each model class has ``save_pretrained(folder, ...)`` and ``from_pretrained(folder)`` built on
:func:`save_pretrained` and :func:`load_module` (:class:`Pretrained` for modules built from their
``config``). The KIG generator is a diffusers folder instead
(diffusers' own safetensors + config.json per component; see procvid.generate.kig).
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Callable, ClassVar

from procvid.errors import ProcvidError

FORMAT = "procvid-model"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
SYNTHETIC_DOMAIN = "procvid synthetic world v{version}"
NOT_OURS = f"not a procvid model folder (expected {CONFIG_NAME} with format {FORMAT} and {WEIGHTS_NAME})"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:200]


def model_folder(path: str | Path) -> Path:
    """The model folder of `path`: the folder itself, or the folder of its config.json / model.safetensors."""
    path = Path(path)
    return path.parent if path.name in (CONFIG_NAME, WEIGHTS_NAME) and path.is_file() else path


def _write_temp(folder: Path, name: str, data: bytes, temps: list[Path]) -> None:
    """Write `data` under a temporary name in `folder` (appended to `temps` first), flushed to disk."""
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    temps.append(tmp)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def save_pretrained(folder: str | Path, state_dict: dict, config: dict) -> Path:
    """Write `state_dict` (tensors) to folder/model.safetensors and `config` (JSON-able, with
    "kind" and "domain") plus the format fields to folder/config.json, atomically (module docstring).
    Other files in the folder (a model card) are left alone."""
    from safetensors.torch import save

    missing = [k for k in ("kind", "domain") if not config.get(k)]
    if missing:
        raise ValueError(f"a procvid model config needs {' and '.join(missing)}")
    text = json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, **config}, indent=2) + "\n"
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    temps = []
    try:
        _write_temp(folder, WEIGHTS_NAME, save(tensors), temps)
        _write_temp(folder, CONFIG_NAME, text.encode(), temps)
        (folder / CONFIG_NAME).unlink(missing_ok=True)  # until the last rename the folder does not load
        os.replace(temps[0], folder / WEIGHTS_NAME)
        os.replace(temps[1], folder / CONFIG_NAME)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return folder


def read_config(path: str | Path, kind: str | None = None) -> dict:
    """The config.json of a procvid model folder (or of the folder of a file in it), checked to be
    ours, of a format version this code reads and, if given, of `kind`."""
    folder = model_folder(path)
    if not folder.exists():
        raise ProcvidError(f"{path}: no such model folder")
    try:
        config = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = None
    if not isinstance(config, dict) or config.get("format") != FORMAT or not isinstance(config.get("kind"), str):
        raise ProcvidError(f"{path}: {NOT_OURS}")
    version = config.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ProcvidError(f"{folder}: format_version {version!r} is not one this procvid reads "
                           f"(1 to {FORMAT_VERSION}); update procvid")
    if kind is not None and config["kind"] != kind:
        raise ProcvidError(f"{folder}: a {config['kind']} model, not a {kind}")
    return config


def load_pretrained(path: str | Path, kind: str | None = None) -> tuple[dict, dict]:
    """(state_dict, config) of a procvid model folder; safetensors and JSON only, never pickle."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    config = read_config(path, kind)
    weights = model_folder(path) / WEIGHTS_NAME
    if not weights.is_file():
        raise ProcvidError(f"{weights.parent}: {WEIGHTS_NAME} missing")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ProcvidError(f"{weights}: corrupt weights, not a readable safetensors file ({_one_line(e)})") from None
    return state, config


def load_module(path: str | Path, kind: str, build: Callable[[dict], object]):
    """The torch module `build(config)` with the folder's weights (all of them, no more: strict)
    and the folder's whole config.json as its `info`."""
    state, config = load_pretrained(path, kind)
    try:
        module = build(config)
        module.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise ProcvidError(f"{model_folder(path)}: its config and weights do not make a {kind} "
                           f"({_one_line(e)})") from None
    module.info = config
    return module


class Pretrained:
    """save_pretrained / from_pretrained for a torch module of kind `KIND` whose constructor keywords
    are its `config` (the "architecture" of config.json)."""

    KIND: ClassVar[str]

    def save_pretrained(self, folder: str | Path, domain: str, **info) -> Path:
        """A model folder: the weights, and `info` (e.g. the training features' encoder id) in config.json."""
        return save_pretrained(folder, self.state_dict(), {"kind": self.KIND, "domain": domain,
                                                           "architecture": self.config, **info})

    @classmethod
    def from_pretrained(cls, folder: str | Path):
        """The module of a model folder (or of a file in it); its whole config.json is `info`."""
        return load_module(folder, cls.KIND, lambda c: cls(**c["architecture"]))


def data_domain(source: str | Path | None, default: str = "unknown") -> str:
    """What a model trained on `source` is for: a synthetic world folder (world.json) gives
    "procvid synthetic world v<version>", a dataset name or other folder its own name."""
    if source is None:
        return default
    try:
        world = json.loads((Path(source) / "world.json").read_text())
        return SYNTHETIC_DOMAIN.format(version=world["version"])
    except (OSError, ValueError, KeyError, TypeError):
        return str(source)
