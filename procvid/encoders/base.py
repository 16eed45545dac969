"""The encoder interface and the device / precision policy shared by all encoders."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod

import numpy as np
import torch


def resolve_device(device: str | None = "auto") -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        from procvid.errors import EncoderError

        raise EncoderError(f"device {device!r} requested but CUDA is not available")
    return dev


def resolve_precision(device: torch.device, precision: str = "auto") -> str:
    """CUDA: bf16 autocast where supported (else fp16); CPU: fp32 (autocast is slower there)."""
    if precision != "auto":
        if precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"unknown precision {precision!r} (fp32, bf16, fp16 or auto)")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def resize_center_crop(frames: np.ndarray, size: int, interpolation: str = "bicubic") -> torch.Tensor:
    """uint8 [N, H, W, 3] -> uint8 [N, 3, size, size]: short side resized (antialiased), centre crop;
    frames already at size x size pass through untouched."""
    from torchvision.transforms.v2 import functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    x = F.resize(x, size, interpolation=F.InterpolationMode(interpolation), antialias=True)
    return F.center_crop(x, [size, size])


def l2_normalize(x: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy()


class Encoder(ABC):
    """A frozen embedding model. Outputs are L2-normalised float32 numpy arrays.

    `id` identifies the model *and its weights*: feature caches are keyed on it.
    Image encoding is split in two so decoding threads can run `prepare_images`
    (resize, crop, normalise on CPU) while the main thread runs `encode_prepared`.
    Sequence (clip-level) encoders add a third stage: `encode_prepared` gives per-frame vectors, in
    any batches, and `finish_sequence` turns all of one video's, in order, into its embeddings.
    """

    id: str
    dim: int
    image_size: int | None = None  # input side for image encoders; None for text-only ones
    fps: float | None = None  # sequence encoders: the sampling rate their time window was trained at

    def prepare_images(self, frames: np.ndarray) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not encode images")

    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not encode images")

    def finish_sequence(self, per_frame: np.ndarray) -> np.ndarray:
        """One video's `encode_prepared` outputs, in time order -> its embeddings [T, dim]. Frame
        encoders have nothing to add."""
        return per_frame

    def encode_images(self, frames: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """uint8 frames [N,H,W,3] -> [N, dim]. For a sequence encoder the frames are consecutive
        frames of one video, sampled at its rate."""
        per_frame = [self.encode_prepared(self.prepare_images(frames[i : i + batch_size]))
                     for i in range(0, len(frames), batch_size)]
        return self.finish_sequence(np.concatenate(per_frame) if per_frame else np.zeros((0, self.dim), np.float32))

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Strings -> [N, dim]."""
