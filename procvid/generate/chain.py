"""Key-step images for a plan: each step edits the previous image (the start image, then the step
before's generated image), written out as plan.json, PNGs, a contact sheet and a page. Shared by
`procvid generate` and the generation example of `procvid run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from procvid.generate import DEFAULT_GUIDANCE, DEFAULT_IMAGE_GUIDANCE, DEFAULT_STEPS
from procvid.threads import torch_threads


def default_threads(kig) -> int | None:
    """Our small shipped generator runs fastest on one CPU thread, and more threads stall badly when
    other processes share the cores; big diffusers pipelines keep torch's setting."""
    from procvid.generate.kig import KeyStepGenerator

    return 1 if isinstance(kig, KeyStepGenerator) else None


def generate_key_steps(kig, plan, start: np.ndarray, out: str | Path, seed: int = 0,
                       guidance: float = DEFAULT_GUIDANCE, image_guidance: float = DEFAULT_IMAGE_GUIDANCE,
                       sampler_steps: int = DEFAULT_STEPS, settings: dict | None = None, on_step=None,
                       threads: int | None = None, progress: bool = False) -> dict:
    """Generate one image per plan step and write the outputs to `out` (procvid.generate.report).
    `on_step(i, text)` is called after each image; `threads`: torch CPU threads (default
    `default_threads(kig)`). Returns the paths write_outputs returns."""
    from tqdm import tqdm

    from procvid.generate.keyframes import resize_square
    from procvid.generate.report import write_outputs

    settings = {**(settings or {}), "seed": seed, "guidance": guidance, "image_guidance": image_guidance,
                "sampler_steps": sampler_steps}
    images, prev = [], start
    with torch_threads(threads or default_threads(kig)):
        for i, (_, text) in enumerate(tqdm(plan.steps, desc="key steps", unit="image", disable=not progress,
                                           dynamic_ncols=True), 1):
            prev = kig.generate(prev, text, guidance=guidance, image_guidance=image_guidance,
                                steps=sampler_steps, seed=seed + i)
            images.append(prev)
            if on_step:
                on_step(i, text)
    return write_outputs(out, plan.to_json(), resize_square(start[None], kig.image_size)[0], images, settings)
