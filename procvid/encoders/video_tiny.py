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

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from procvid.encoders.base import Encoder, l2_normalize, resize_center_crop, resolve_device
from procvid.errors import EncoderError


class VideoTinyNet(nn.Module):
    """Frames [T, 3, S, S] (one video, consecutive, values in [-0.5, 0.5]) -> unit embeddings [T, dim]."""

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


def save_video_model(net: VideoTinyNet, folder: str | Path, **info) -> Path:
    """`model.safetensors` + `config.json` (architecture and `info`: fps, text encoder, idle text)."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()},
              str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps({"architecture": net.config, **info}, indent=2) + "\n")
    return folder


class VideoTinyEncoder(Encoder):
    """Loads a folder written by :func:`save_video_model` (default: checkpoints/procvid-video-tiny)."""

    def __init__(self, folder: str | Path, device: str | None = "auto", precision: str = "auto"):
        from safetensors.torch import load_file

        from procvid.encoders.open_clip_encoder import _file_digest

        folder = Path(folder)
        weights, cfg_file = folder / "model.safetensors", folder / "config.json"
        if not weights.is_file() or not cfg_file.is_file():
            raise EncoderError(f"{folder}: not a procvid-video-tiny folder (needs model.safetensors and config.json)")
        try:
            self.config = json.loads(cfg_file.read_text())
            net = VideoTinyNet(**self.config["architecture"])
            net.load_state_dict(load_file(str(weights)))
        except (ValueError, KeyError, TypeError, RuntimeError, OSError) as e:
            raise EncoderError(f"cannot load {folder}: {str(e).splitlines()[0][:200]}") from None
        self.device = resolve_device(device)
        self.precision = precision  # tiny convolutions: always fp32
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.image_size = net.config["image_size"]
        self.dim = net.config["dim"]
        self.fps = self.config.get("fps")
        self.text_encoder_spec = self.config.get("text_encoder", "default")
        self._text = None
        self.id = f"procvid-video-tiny:{weights.parent.name}/{weights.name}@{_file_digest(weights)}"

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
            from procvid.encoders import load_encoder

            self._text = load_encoder(self.text_encoder_spec, device=str(self.device), precision=self.precision)
        return self._text.encode_texts(texts)
