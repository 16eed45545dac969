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
    Image encoding has two steps, `prepare_images` (resize, crop, normalise on CPU) and
    `encode_prepared` (the network). Sequence (clip-level) encoders add a third:
    `encode_prepared` gives per-frame vectors, in any batches, and `finish_sequence` turns all of one
    video's, in order, into its embeddings.

    Every encoder records how it was built (`spec`, requested device and precision) so that
    `procvid.encoders.EncoderSetup` can build the same encoder in another process (a Ray actor).
    """

    id: str
    dim: int
    spec: str = ""  # what `procvid.encoders.load_encoder` builds this encoder from
    requested_device: str | None = "auto"
    requested_precision: str = "auto"
    image_size: int | None = None  # input side for image encoders; None for text-only ones
    fps: float | None = None  # sequence encoders: the sampling rate their time window was trained at
    domain: str | None = None  # the footage it is for, when narrower than any video (procvid.domain)
    has_text: bool = True  # False for image-only encoders: nothing can be named or grounded with them
    # Rows per forward pass. Every pass gets exactly this many (the last one padded): on CPU a row's
    # result depends on the batch size, so fixed-size passes make a frame's vector independent of
    # which other frames share its batch, and every engine writes identical features.
    block_size: int = 64

    def _built_from(self, spec: str, device, precision: str) -> None:
        self.spec, self.requested_device, self.requested_precision = spec, device, precision

    def prepare_images(self, frames: np.ndarray) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} does not encode images")

    def encode_prepared(self, batch: torch.Tensor) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not encode images")

    def finish_sequence(self, per_frame: np.ndarray) -> np.ndarray:
        """One video's `encode_prepared` outputs, in time order -> its embeddings [T, dim]. Frame
        encoders have nothing to add."""
        return per_frame

    def encode_blocks(self, x: torch.Tensor) -> np.ndarray:
        """Prepared frames -> per-frame vectors [N, dim] (`encode_prepared` outputs), in forward
        passes of exactly `block_size` rows."""
        out = []
        for i in range(0, len(x), self.block_size):
            block = x[i : i + self.block_size]
            n = len(block)
            if n < self.block_size:  # pad with copies of the last frame, in the same memory layout
                layout = torch.channels_last if block.dim() == 4 and not block.is_contiguous() \
                    and block.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
                block = torch.cat([block, block[-1:].expand(self.block_size - n, *block.shape[1:])]).contiguous(
                    memory_format=layout)
            out.append(self.encode_prepared(block)[:n])
        return np.concatenate(out) if out else np.zeros((0, self.dim), np.float32)

    def encode_frames(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames [N,H,W,3] -> per-frame vectors [N, dim] (see `encode_blocks`)."""
        if not len(frames):
            return np.zeros((0, self.dim), np.float32)
        return self.encode_blocks(torch.cat([self.prepare_images(frames[i : i + self.block_size])
                                             for i in range(0, len(frames), self.block_size)]))

    def encode_images(self, frames: np.ndarray) -> np.ndarray:
        """uint8 frames [N,H,W,3] -> [N, dim]. For a sequence encoder the frames are consecutive
        frames of one video, sampled at its rate."""
        return self.finish_sequence(self.encode_frames(frames))

    @abstractmethod
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """Strings -> [N, dim]."""

