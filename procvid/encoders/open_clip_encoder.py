"""open_clip image/text encoders by `name:pretrained`.

`pretrained` may be
- an open_clip tag (e.g. `laion2b_s34b_b79k`): used only if its weights are already in the local
  cache, unless PROCVID_ALLOW_DOWNLOAD=1 (otherwise a clear offline error, never a hang);
- a local checkpoint file (.bin/.pt/.pth/.safetensors);
- a local folder: an open_clip `local-dir` (open_clip_config.json + weights) or a folder holding
  one checkpoint file;
- `random`: untrained weights, for tests and speed benchmarks only.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np
import torch

from procvid.encoders.base import (Encoder, autocast, l2_normalize, resize_center_crop, resolve_device,
                                   resolve_precision)
from procvid.errors import EncoderError

CONFIG_DIR = Path(__file__).parent / "model_configs"
_registered = False


def register_model_configs() -> None:
    """Make procvid's JSON architectures (tiny test models, our own small models) known to open_clip."""
    global _registered
    if not _registered:
        import open_clip

        open_clip.add_model_config(CONFIG_DIR)
        _registered = True


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def _cached_tag_file(name: str, tag: str) -> str | None:
    """Path of an already-downloaded open_clip pretrained tag, or None; never downloads."""
    import open_clip
    from open_clip import pretrained as op

    cfg = open_clip.get_pretrained_cfg(name, tag)
    if cfg.get("file"):
        return cfg["file"]
    hub = cfg.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(hub)
        for fn in [*op._get_safe_alternatives(filename or op.HF_WEIGHTS_NAME), filename or op.HF_WEIGHTS_NAME]:
            hit = try_to_load_from_cache(repo, fn)
            if isinstance(hit, str):
                return hit
    url = cfg.get("url", "")
    if url:
        target = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url.split("?")[0])
        if target.exists():
            return str(target)
    return None


def _check_checkpoint_file(path: Path) -> None:
    """Refuse at once (before building the model) a file that is neither safetensors nor a PyTorch
    checkpoint (a zip archive, or a legacy pickle); what such a file holds is checked when it loads."""
    import zipfile

    try:
        with open(path, "rb") as f:
            head = f.read(9)
        size = path.stat().st_size
    except OSError as e:
        raise EncoderError(f"{path}: cannot read the checkpoint ({e.strerror})") from None
    safetensors = len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < size
    if not (safetensors or head[:1] == b"\x80" or zipfile.is_zipfile(path)):
        raise EncoderError(f"{path}: not a checkpoint (neither a safetensors file nor a PyTorch state dict)")


def _resolve_weights(name: str, pretrained: str) -> tuple[str | None, str]:
    """-> (what to pass to open_clip as `pretrained`, a stable id for the weights)."""
    import open_clip

    if pretrained in ("", "random", "none"):
        return None, "random"
    path = Path(pretrained).expanduser()
    if path.is_file():
        _check_checkpoint_file(path)
        return str(path), f"{path.name}@{_file_digest(path)}"
    if path.is_dir():
        from open_clip.factory import _find_checkpoint_in_dir

        ckpt = _find_checkpoint_in_dir(path)
        if ckpt is None:
            raise EncoderError(f"{path}: folder holds no checkpoint (*.safetensors, *.bin, *.pth)")
        _check_checkpoint_file(Path(ckpt))
        return ckpt, f"{Path(ckpt).name}@{_file_digest(Path(ckpt))}"
    if pretrained in open_clip.list_pretrained_tags_by_model(name):
        cached = _cached_tag_file(name, pretrained)
        if cached:
            return cached, pretrained
        if os.environ.get("PROCVID_ALLOW_DOWNLOAD") == "1":
            return pretrained, pretrained
        raise EncoderError(
            f"pretrained weights {name}:{pretrained} are not available offline. On a machine with "
            f"internet, save them (e.g. `python -c \"import open_clip; open_clip.create_model('{name}', "
            f"pretrained='{pretrained}')\"` fills the cache, or download open_clip_pytorch_model.bin from "
            f"the model's hub page) and pass --encoder {name}:/path/to/open_clip_pytorch_model.bin; "
            f"or set PROCVID_ALLOW_DOWNLOAD=1 to download now"
        )
    if any(sep in pretrained for sep in ("/", "\\", ".")):
        raise EncoderError(f"checkpoint {pretrained!r} not found")
    tags = ", ".join(open_clip.list_pretrained_tags_by_model(name)) or "none"
    raise EncoderError(f"unknown pretrained tag {pretrained!r} for {name} (known tags: {tags}; or give a file path)")


class _RandomInitNotice(logging.Filter):
    """Drops open_clip's warning that a model was initialised randomly, where `random` was asked for."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


def _declared_domain(weights: str | None) -> str | None:
    """The footage weights are for, when a procvid config.json beside the weights file declares it
    (our shipped procvid-clip-tiny does; real pretrained weights declare nothing: any footage)."""
    import json

    if not weights or not Path(weights).is_file():
        return None
    try:
        return json.loads((Path(weights).parent / "config.json").read_text()).get("domain")
    except (OSError, ValueError, AttributeError):
        return None


class OpenClipEncoder(Encoder):
    """An open_clip CLIP model used frozen, in eval mode."""

    def __init__(
        self,
        name: str,
        pretrained: str = "random",
        device: str | None = "auto",
        precision: str = "auto",
    ):
        import open_clip

        register_model_configs()
        if name.startswith(("hf-hub:", "local-dir:")):
            model_name, weights, weights_id = name, None, name
        else:
            if name not in open_clip.list_models():
                raise EncoderError(f"unknown open_clip model {name!r} (see `open_clip.list_models()`)")
            model_name = name
            weights, weights_id = _resolve_weights(name, pretrained)
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        random_init = weights is None and not name.startswith(("hf-hub:", "local-dir:"))  # `random` asked for
        quiet = _RandomInitNotice() if random_init else None
        try:
            if quiet:
                logging.getLogger().addFilter(quiet)
            model = open_clip.create_model(model_name, pretrained=weights, device=self.device)
        except EncoderError:
            raise
        except Exception as e:  # open_clip raises RuntimeError/KeyError on mismatched weights
            if "weights_only" in str(e) or "pickle" in str(e).lower():  # torch's advice to unpickle: unsafe
                raise EncoderError(f"cannot load {name}:{pretrained}: not a checkpoint that loads safely (expected "
                                   "a safetensors file or a PyTorch state dict of plain tensors)") from None
            raise EncoderError(f"cannot load {name}:{pretrained}: {str(e).splitlines()[0][:300]}") from None
        finally:
            if quiet:
                logging.getLogger().removeFilter(quiet)
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = open_clip.get_tokenizer(model_name)
        pp = getattr(self.model.visual, "preprocess_cfg", {}) or {}
        size = pp.get("size", self.model.visual.image_size)
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        self.mean = torch.tensor(pp.get("mean", open_clip.OPENAI_DATASET_MEAN)).view(1, 3, 1, 1)
        self.std = torch.tensor(pp.get("std", open_clip.OPENAI_DATASET_STD)).view(1, 3, 1, 1)
        self.dim = int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") \
            and self.model.text_projection is not None else int(self.encode_texts(["x"]).shape[1])
        self.id = f"open_clip:{name}:{weights_id}"
        self.domain = _declared_domain(weights)
        self._built_from(name if name.startswith(("hf-hub:", "local-dir:")) else f"{name}:{pretrained}", device,
                         precision)

    def prepare_images(self, frames: np.ndarray) -> torch.Tensor:
        """Resize the short side (bicubic, antialiased), centre crop, normalise: open_clip's eval
        transform, done on whole uint8 batches as tensors instead of PIL images one by one."""
        x = resize_center_crop(frames, self.image_size, "bicubic")
        return (x.float() / 255.0 - self.mean) / self.std

    @torch.no_grad()
    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        with autocast(self.device, self.precision):
            return l2_normalize(self.model.encode_image(batch.to(self.device, non_blocking=True)))

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenizer(list(texts)).to(self.device)
        with autocast(self.device, self.precision):
            return l2_normalize(self.model.encode_text(tokens))

