"""Frozen image/text encoders behind one interface (see base.Encoder).

Specs accepted by `load_encoder`:
- `default`: procvid's own small CLIP model shipped in checkpoints/ (trained on the synthetic world);
- `video`: procvid's clip-level video encoder shipped in checkpoints/procvid-video-tiny (embeds each
  frame with its neighbours, so it sees motion; the segmentation default), `video:/path/folder` for
  another one trained with `procvid train video`;
- `minilm`: the real pretrained all-MiniLM-L6-v2 text encoder (text only);
- `NAME:PRETRAINED`: an open_clip model, e.g. `ViT-B-32:laion2b_s34b_b79k`,
  `ViT-B-32:/path/open_clip_pytorch_model.bin`, `procvid-test-tiny:random`;
- `local-dir:/path/folder` or `hf-hub:org/repo` (open_clip schemas).
"""

from __future__ import annotations

from procvid.encoders.base import Encoder
from procvid.errors import EncoderError
from procvid.paths import CHECKPOINTS_DIR

DEFAULT_ENCODER_NAME = "procvid-clip-tiny"
DEFAULT_ENCODER_WEIGHTS = CHECKPOINTS_DIR / "procvid-clip-tiny" / "open_clip_model.safetensors"
VIDEO_ENCODER_DIR = CHECKPOINTS_DIR / "procvid-video-tiny"
# The documented default for real footage; needs its weights locally (see README).
REAL_VIDEO_ENCODER = "ViT-B-32:laion2b_s34b_b79k"


def load_encoder(spec: str = "default", device: str | None = "auto", precision: str = "auto") -> Encoder:
    encoder = _build(spec, device, precision)
    encoder.spec = spec  # lets other processes (Ray actors) build the same encoder
    return encoder


def _build(spec: str, device, precision) -> Encoder:
    if spec == "minilm":
        from procvid.encoders.text import MiniLMTextEncoder

        return MiniLMTextEncoder(device=device)
    if spec == "video" or spec.startswith("video:"):
        from procvid.encoders.video_tiny import VideoTinyEncoder

        return VideoTinyEncoder(spec.partition(":")[2] or VIDEO_ENCODER_DIR, device, precision)
    from procvid.encoders.open_clip_encoder import OpenClipEncoder

    if spec == "default":
        if not DEFAULT_ENCODER_WEIGHTS.exists():
            raise EncoderError(f"the default encoder checkpoint is missing: {DEFAULT_ENCODER_WEIGHTS}")
        return OpenClipEncoder(DEFAULT_ENCODER_NAME, str(DEFAULT_ENCODER_WEIGHTS), device, precision)
    if spec.startswith(("hf-hub:", "local-dir:")):
        return OpenClipEncoder(spec, "", device, precision)
    name, sep, pretrained = spec.partition(":")
    if not sep:
        raise EncoderError(f"encoder spec {spec!r}: expected NAME:PRETRAINED, `default`, `video` or `minilm`")
    return OpenClipEncoder(name, pretrained, device, precision)


__all__ = ["Encoder", "load_encoder", "DEFAULT_ENCODER_NAME", "REAL_VIDEO_ENCODER"]
