"""procvid-video-tiny: a clip-level video encoder in the text space of procvid-clip-tiny.

A per-frame encoder cannot see motion, and in procedural video motion is what marks a key step's
start and end (an object carried in, a tool circling, the hand going idle); see
checkpoints/procvid-video-tiny/MODEL_CARD.md. This model embeds each frame together with its
neighbours: a small CNN turns every frame into a vector that keeps *where* things are (no global
pooling), and a temporal convolution over the `context` frames on each side turns those into the
embedding of the clip centred on the frame. It is trained (procvid.train.video) against the frozen
text embeddings of procvid-clip-tiny, so its embeddings ground to step texts like the frame
model's, and its `encode_texts` is that text tower.

As a sequence encoder it works in two stages (see base.Encoder): `encode_prepared` gives per-frame
vectors in any batches, `finish_sequence` mixes one video's vectors over time. The temporal window
is in frames: the model expects the sampling rate it was trained at (`fps`, 2 by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from procvid.checkpoint import WEIGHTS_NAME, Pretrained, model_folder
from procvid.encoders.base import Encoder, l2_normalize, resize_center_crop, resolve_device
from procvid.errors import EncoderError, ProcvidError


class VideoTinyNet(Pretrained, nn.Module):
    """Frames [T, 3, S, S] (one video, consecutive, values in [-0.5, 0.5]) -> unit embeddings [T, dim].

    A model folder (procvid.checkpoint) records fps, text encoder and idle text in its `info`."""

    KIND = "video-encoder"

    def __init__(self, image_size: int = 48, width: int = 128, dim: int = 64, context: int = 4,
                 channels: tuple[int, ...] = (32, 64, 96)):
        super().__init__()
        self.config = dict(image_size=image_size, width=width, dim=dim, context=context, channels=list(channels))
        layers, c_in, side = [], 3, image_size
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, 2, 1), nn.GELU()]
            c_in, side = c, (side + 1) // 2
        # Flatten instead of pooling: where the hand and objects are is the signal.
        self.frame = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, width))
        self.temporal = nn.Sequential(nn.GELU(), nn.Conv1d(width, width, 2 * context + 1), nn.GELU(),
                                      nn.Conv1d(width, dim, 1))
        self.context = context

    def frame_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.frame(x)

    def mix(self, h: torch.Tensor) -> torch.Tensor:
        """Per-frame features [T, width] -> unit embeddings [T, dim]; the video's first and last
        frames are repeated to fill the window at its ends."""
        h = F.pad(h.T[None], (self.context, self.context), mode="replicate")
        return F.normalize(self.temporal(h)[0].T, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(self.frame_features(x))


class VideoTinyEncoder(Encoder):
    """Loads a model folder written by :meth:`VideoTinyNet.save_pretrained` (default:
    checkpoints/procvid-video-tiny)."""

    def __init__(self, folder: str | Path, device: str | None = "auto", precision: str = "auto", load_text=None):
        """load_text(spec, device, precision): builds the text tower named in the folder's config
        (procvid.encoders.load_encoder; passed in so this module does not import the factory)."""
        from procvid.encoders.open_clip_encoder import _file_digest

        try:
            net = VideoTinyNet.from_pretrained(folder)
        except ProcvidError as e:
            raise EncoderError(str(e)) from None
        self.config = net.info
        self.domain = net.info.get("domain")
        weights = model_folder(folder) / WEIGHTS_NAME
        self.device = resolve_device(device)
        self.precision = precision  # tiny convolutions: always fp32
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.image_size = net.config["image_size"]
        self.dim = net.config["dim"]
        self.fps = self.config.get("fps")
        self.text_encoder_spec = self.config.get("text_encoder", "default")
        self._text, self._load_text = None, load_text
        self.id = f"procvid-video-tiny:{weights.parent.name}/{weights.name}@{_file_digest(weights)}"
        self._built_from(f"video:{folder}", device, precision)

    def prepare_images(self, frames: np.ndarray) -> torch.Tensor:
        """To [-0.5, 0.5], as in training (procvid.train.video)."""
        return resize_center_crop(frames, self.image_size, "bilinear").float() / 255.0 - 0.5

    @torch.no_grad()
    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        return self.net.frame_features(batch.to(self.device)).float().cpu().numpy()

    @torch.no_grad()
    def finish_sequence(self, per_frame: np.ndarray) -> np.ndarray:
        if not len(per_frame):
            return np.zeros((0, self.dim), np.float32)
        return l2_normalize(self.net.mix(torch.from_numpy(per_frame).to(self.device)))

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if self._text is None:
            self._text = self._load_text(self.text_encoder_spec, device=str(self.device), precision=self.precision)
        return self._text.encode_texts(texts)
