"""Key-step Image Generator (KIG): InstructPix2Pix-style editing of the previous key-step image by a step text.

Our model (`KeyStepGenerator`) is built from diffusers components:
- a `UNet2DConditionModel` whose input is the noisy image concatenated with the previous key-step image
  (channel-wise, as in InstructPix2Pix). There is no pretrained VAE for our domain, so it works in pixel
  space, with each 2x2 pixel block folded into channels (space to depth, `fold`): a 32 px image becomes a
  12-channel 16x16 sample, which quarters the cost of every convolution on CPU. It predicts the clean
  image as a change of the previous one (x0 = previous + UNet output, `denoise`): the scene is copied
  for free and the few training steps we can afford on CPU go into the edit;
- cross-attention on per-token states of a text tower (`ClipTokenEncoder`: the default procvid CLIP text
  transformer, frozen), so the step description steers the edit;
- classifier-free guidance on both conditions with InstructPix2Pix's two scales (training drops each
  condition at random: the null text is the empty string, the null image is mid-grey, i.e. zeros);
- a `DPMSolverMultistepScheduler` (DPM-Solver++, 10-20 steps, dynamic thresholding for pixel space).

A folder written by `save_pretrained` has a diffusers-like layout: model_index.json (`_class_name`
KeyStepPipeline) and unet/, scheduler/, text_encoder/ saved by each component's own `save_pretrained`.
`load_generator(path)` also opens real diffusers folders (StableDiffusionInstructPix2PixPipeline, or a
Stable Diffusion text-to-image folder run as img2img) behind the same `generate` interface.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from procvid.errors import ProcvidError

from procvid.generate import DEFAULT_GUIDANCE, DEFAULT_IMAGE_GUIDANCE, DEFAULT_STEPS
from procvid.outputs import atomic_write
from procvid.registry import GENERATORS

PIPELINE_CLASS = "KeyStepPipeline"


class ClipTokenEncoder(ModelMixin, ConfigMixin):
    """The text transformer of an open_clip model, giving per-token states [B, context, width]."""

    @register_to_config
    def __init__(self, embed_dim: int = 64, text_cfg: dict | None = None):
        super().__init__()
        from open_clip.model import _build_text_tower

        self.text = _build_text_tower(embed_dim, {**(text_cfg or {}), "output_tokens": True})

    @classmethod
    def from_open_clip(cls, encoder_spec: str = "default") -> "ClipTokenEncoder":
        """Copy the text tower out of a procvid open_clip encoder (`procvid.encoders.load_encoder` spec)."""
        import open_clip

        from procvid.encoders import load_encoder

        encoder = load_encoder(encoder_spec, device="cpu")
        name = encoder.id.split(":")[1]
        cfg = open_clip.get_model_config(name)
        module = cls(embed_dim=cfg["embed_dim"], text_cfg=cfg["text_cfg"])
        wanted = module.text.state_dict().keys()
        state = {k: v for k, v in encoder.model.state_dict().items() if k in wanted}
        module.text.load_state_dict(state, strict=True)
        return module.requires_grad_(False).eval()

    @property
    def context_length(self) -> int:
        return self.text.context_length

    def tokenize(self, texts: list[str]) -> torch.Tensor:
        return _clip_tokenizer(self.context_length)(list(texts))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.text(tokens)[1]

    @torch.no_grad()
    def encode(self, texts: list[str]) -> torch.Tensor:
        return self(self.tokenize(texts).to(self.device))


@functools.lru_cache(maxsize=4)
def _clip_tokenizer(context_length: int):
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer(context_length=context_length)  # reads the BPE vocabulary: build once


def build_unet(image_size: int = 32, fold: int = 2, block_out_channels=(64, 96, 128), layers_per_block: int = 1,
               cross_attention_dim: int = 64, attention_levels: int = 1, heads: int = 4) -> UNet2DConditionModel:
    """A small UNet2DConditionModel for folded pixels: (noisy, previous image) in, one image out.

    Cross-attention sits in the lowest `attention_levels` resolutions and the mid block: the text picks
    *what* changes, the convolutions copy the rest of the scene at full detail.
    """
    channels = 3 * fold * fold
    levels = len(block_out_channels)
    down = tuple("CrossAttnDownBlock2D" if i >= levels - attention_levels else "DownBlock2D" for i in range(levels))
    up = tuple("CrossAttnUpBlock2D" if i < attention_levels else "UpBlock2D" for i in range(levels))
    return UNet2DConditionModel(
        sample_size=image_size // fold, in_channels=2 * channels, out_channels=channels,
        block_out_channels=tuple(block_out_channels), layers_per_block=layers_per_block,
        down_block_types=down, up_block_types=up, cross_attention_dim=cross_attention_dim,
        attention_head_dim=heads,  # diffusers reads this as the number of heads (a legacy name)
        norm_num_groups=16,
    )


def denoise(unet, noisy: torch.Tensor, t, image: torch.Tensor, text_states: torch.Tensor, residual: bool):
    """The UNet on (noisy sample, previous image). With `residual` (x0 prediction) it predicts the change:
    x0 = previous image + UNet output, so even an untrained model starts from "nothing changes"
    and training spends its steps on what the step adds. Every guidance branch predicts x0 for the same
    noisy sample (the null image is zeros), so guidance stays a valid combination."""
    out = unet(torch.cat([noisy, image], dim=1), t, encoder_hidden_states=text_states).sample
    return out + image if residual else out


def build_scheduler(prediction_type: str = "sample") -> DPMSolverMultistepScheduler:
    # cosine noise schedule (pixel space); dynamic thresholding keeps guided pixel samples in range
    return DPMSolverMultistepScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2",
                                       prediction_type=prediction_type, algorithm_type="dpmsolver++",
                                       solver_order=2, thresholding=True, sample_max_value=1.0)


def fold_pixels(images: torch.Tensor, fold: int) -> torch.Tensor:
    """uint8 [N, 3, H, W] -> [N, 3*fold^2, H/fold, W/fold] in [-1, 1] (space to depth)."""
    return F.pixel_unshuffle(images.float() / 127.5 - 1.0, fold)


def unfold_pixels(x: torch.Tensor, fold: int) -> np.ndarray:
    """The inverse of fold_pixels, as uint8 [N, H, W, 3] numpy images."""
    x = F.pixel_shuffle(x.float().clamp(-1, 1), fold)
    return ((x + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _as_batch(images) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.shape[-1] != 3 or images.ndim not in (3, 4):
        raise ProcvidError(f"images must be uint8 RGB [H, W, 3] or [N, H, W, 3], got {images.dtype} {images.shape}")
    return images[None] if images.ndim == 3 else images


class KeyStepGenerator:
    """Our KIG: prev image + step text -> next key-step image, with InstructPix2Pix guidance."""

    def __init__(self, unet: UNet2DConditionModel, scheduler: DPMSolverMultistepScheduler,
                 text_encoder: ClipTokenEncoder, image_size: int = 32, fold: int = 2, device: str = "cpu"):
        self.unet = unet.eval().requires_grad_(False).to(device)
        self.scheduler = scheduler
        self.text_encoder = text_encoder.eval().requires_grad_(False).to(device)
        self.image_size, self.fold = image_size, fold
        self.device = torch.device(device)

    @classmethod
    def create(cls, image_size: int = 32, fold: int = 2, text_encoder: ClipTokenEncoder | None = None,
               prediction_type: str = "sample", **unet_options) -> "KeyStepGenerator":
        """A freshly initialised model (text encoder: the default procvid CLIP text tower)."""
        text_encoder = text_encoder or ClipTokenEncoder.from_open_clip("default")
        unet = build_unet(image_size, fold, cross_attention_dim=text_encoder.text.width, **unet_options)
        if prediction_type == "sample":  # residual x0: start exactly at "nothing changes"
            torch.nn.init.zeros_(unet.conv_out.weight)
            torch.nn.init.zeros_(unet.conv_out.bias)
        return cls(unet, build_scheduler(prediction_type), text_encoder, image_size, fold)

    # ------------------------------------------------------------------ pixels <-> model space

    def to_model(self, images: np.ndarray) -> torch.Tensor:
        """uint8 [N, H, W, 3] (any size: centre-cropped and resized) -> the model's folded space."""
        from procvid.generate.keyframes import resize_square

        x = torch.from_numpy(resize_square(_as_batch(images), self.image_size)).permute(0, 3, 1, 2)
        return fold_pixels(x.to(self.device), self.fold)

    def null_image(self, n: int) -> torch.Tensor:
        c = 3 * self.fold * self.fold
        s = self.image_size // self.fold
        return torch.zeros(n, c, s, s, device=self.device)

    @property
    def residual(self) -> bool:
        return self.scheduler.config.prediction_type == "sample"

    def predict(self, noisy: torch.Tensor, t, image: torch.Tensor, text_states: torch.Tensor) -> torch.Tensor:
        return denoise(self.unet, noisy, t, image, text_states, self.residual)

    def guided(self, noisy, t, image, text_states, null_text, guidance: float, image_guidance: float):
        """InstructPix2Pix guidance: u(0,0) + s_I (u(I,0) - u(0,0)) + s_T (u(I,T) - u(I,0)), one batched call."""
        n = len(noisy)
        out = self.predict(torch.cat([noisy] * 3), t, torch.cat([image, image, self.null_image(n)]),
                           torch.cat([text_states, null_text, null_text]))
        full, image_only, none = out.chunk(3)
        return none + image_guidance * (image_only - none) + guidance * (full - image_only)

    # ------------------------------------------------------------------ sampling

    @torch.no_grad()
    def generate_batch(self, prev_images: np.ndarray | None, texts: list[str], guidance: float = DEFAULT_GUIDANCE,
                       image_guidance: float = DEFAULT_IMAGE_GUIDANCE, steps: int = DEFAULT_STEPS,
                       seed: int = 0) -> np.ndarray:
        """uint8 [N, H, W, 3] previous images (None: no image condition) + N texts -> [N, size, size, 3]."""
        n = len(texts)
        image = self.null_image(n) if prev_images is None else self.to_model(prev_images)
        if len(image) != n:
            raise ProcvidError(f"{len(image)} images for {n} texts")
        text_states = self.text_encoder.encode(texts)
        null_text = self.text_encoder.encode([""]).expand(n, -1, -1)
        scheduler = DPMSolverMultistepScheduler.from_config(self.scheduler.config)  # fresh solver state
        scheduler.set_timesteps(steps, device=self.device)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randn(image.shape, generator=generator).to(self.device) * scheduler.init_noise_sigma
        for t in scheduler.timesteps:
            out = self.guided(scheduler.scale_model_input(x, t), t, image, text_states, null_text,
                              guidance, image_guidance)
            x = scheduler.step(out, t, x).prev_sample
        return unfold_pixels(x, self.fold)

    def generate(self, prev_image: np.ndarray | None, text: str, **options) -> np.ndarray:
        """One step: uint8 [H, W, 3] previous key-step image (None: no image condition) -> [size, size, 3]."""
        return self.generate_batch(prev_image, [text], **options)[0]  # a single image is a batch of one

    # ------------------------------------------------------------------ folders

    def save_pretrained(self, path: str | Path, fp16: bool = False) -> Path:
        """model_index.json + unet/ scheduler/ text_encoder/ (fp16 halves the shipped size)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        for name, module in (("unet", self.unet), ("text_encoder", self.text_encoder)):
            (module.half() if fp16 else module).save_pretrained(path / name)
            module.float()
        self.scheduler.save_pretrained(path / "scheduler")
        index = {"_class_name": PIPELINE_CLASS, "_procvid_version": 1,
                 "unet": ["diffusers", "UNet2DConditionModel"],
                 "scheduler": ["diffusers", type(self.scheduler).__name__],
                 "text_encoder": ["procvid.generate.kig", "ClipTokenEncoder"],
                 "image_size": self.image_size, "fold": self.fold}
        if getattr(self, "domain", None):  # which footage it is for (procvid.domain)
            index["_procvid_domain"] = self.domain
        atomic_write(path / "model_index.json", json.dumps(index, indent=2) + "\n")
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu") -> "KeyStepGenerator":
        path = Path(path)
        index = json.loads((path / "model_index.json").read_text())
        # low_cpu_mem_usage needs `accelerate`; use_safetensors: never fall back to pickled .bin weights
        options = {"torch_dtype": torch.float32, "low_cpu_mem_usage": False, "use_safetensors": True}
        try:
            unet = UNet2DConditionModel.from_pretrained(path / "unet", **options)
            text_encoder = ClipTokenEncoder.from_pretrained(path / "text_encoder", **options)
            scheduler = DPMSolverMultistepScheduler.from_pretrained(path / "scheduler")
        except Exception as e:  # diffusers and safetensors raise many error types for damaged folders
            raise ProcvidError(f"{path}: cannot load the KIG folder ({_safetensors_only(e)})") from None
        generator = cls(unet, scheduler, text_encoder, index["image_size"], index["fold"], device)
        generator.domain = index.get("_procvid_domain")  # which footage it is for (procvid.domain)
        return generator


def _safetensors_only(error: Exception) -> str:
    return f"{type(error).__name__}: " + " ".join(str(error).split())[:200] + "; only safetensors weights are read"


def training_scheduler(scheduler) -> DDPMScheduler:
    """The forward (noising) process matching a sampler's config: add_noise and get_velocity."""
    return DDPMScheduler.from_config(scheduler.config)


class DiffusersGenerator:
    """A real diffusers folder behind the KeyStepGenerator interface.

    StableDiffusionInstructPix2PixPipeline runs as is (both guidance scales). A Stable Diffusion
    text-to-image folder runs as img2img from the previous image: it has no image guidance, so image
    consistency comes from the img2img strength (IMG2IMG_STRENGTH of the noise is added to the image).
    """

    IMG2IMG_STRENGTH = 0.6

    def __init__(self, pipe, image_size: int):
        self.pipe, self.image_size = pipe, image_size

    @classmethod
    def from_pretrained(cls, path: str | Path, class_name: str, device: str = "cpu") -> "DiffusersGenerator":
        from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInstructPix2PixPipeline

        pipe_cls = StableDiffusionInstructPix2PixPipeline if "InstructPix2Pix" in class_name \
            else StableDiffusionImg2ImgPipeline
        kwargs = {"safety_checker": None, "requires_safety_checker": False, "low_cpu_mem_usage": False,
                  "use_safetensors": True}  # never unpickle .bin weights
        try:
            pipe = pipe_cls.from_pretrained(str(path), **kwargs).to(device)
        except Exception as e:  # diffusers and safetensors raise many error types for damaged folders
            raise ProcvidError(f"{path}: cannot load the diffusers folder ({_safetensors_only(e)})") from None
        pipe.set_progress_bar_config(disable=True)
        size = pipe.unet.config.sample_size * pipe.vae_scale_factor
        return cls(pipe, size)

    @property
    def is_pix2pix(self) -> bool:
        return "InstructPix2Pix" in type(self.pipe).__name__

    @torch.no_grad()
    def generate_batch(self, prev_images, texts, guidance=DEFAULT_GUIDANCE, image_guidance=DEFAULT_IMAGE_GUIDANCE,
                       steps=DEFAULT_STEPS, seed=0) -> np.ndarray:
        from procvid.generate.keyframes import resize_square

        if prev_images is None:  # "no image condition": a mid-grey image
            prev_images = np.full((len(texts), self.image_size, self.image_size, 3), 128, np.uint8)
        images = resize_square(_as_batch(prev_images), self.image_size)
        options = {"image_guidance_scale": image_guidance} if self.is_pix2pix else {"strength": self.IMG2IMG_STRENGTH}
        out = self.pipe(prompt=list(texts), image=[img for img in images.astype(np.float32) / 255.0],
                        num_inference_steps=steps, guidance_scale=guidance, output_type="np",
                        generator=torch.Generator().manual_seed(seed), **options).images
        return (np.clip(out, 0, 1) * 255).round().astype(np.uint8)

    def generate(self, prev_image, text, **options) -> np.ndarray:
        return self.generate_batch(prev_image, [text], **options)[0]  # a single image is a batch of one


# GENERATORS: model_index.json `_class_name` prefix -> opener(path, class_name, device)
@GENERATORS.register(PIPELINE_CLASS, "ours: the Key-step Image Generator (procvid train kig; the shipped procvid-kig)")
def _open_key_step(path: Path, class_name: str, device: str):
    return KeyStepGenerator.from_pretrained(path, device)


@GENERATORS.register("StableDiffusion", "a diffusers StableDiffusion* folder: InstructPix2Pix, or a text-to-image "
                                        "pipeline run as img2img")
def _open_diffusers(path: Path, class_name: str, device: str):
    return DiffusersGenerator.from_pretrained(path, class_name, device)


def load_generator(path: str | Path, device: str = "cpu"):
    """A KIG folder by path: ours (KeyStepPipeline) or a diffusers pipeline folder (by `_class_name`)."""
    path = Path(path)
    index_file = path / "model_index.json"
    if not index_file.is_file():
        raise ProcvidError(f"{path}: not a model folder (no model_index.json)")
    try:
        class_name = json.loads(index_file.read_text())["_class_name"]
    except (ValueError, KeyError) as e:
        raise ProcvidError(f"{index_file}: unreadable ({e})") from None
    kind = next((kind for kind in GENERATORS.names() if class_name.startswith(kind)), None)
    if kind is None:
        raise ProcvidError(f"{path}: unsupported pipeline {class_name!r} (_class_name starting with "
                           f"{' or '.join(GENERATORS.names())}; see: procvid list generators)")
    return GENERATORS.get(kind)(path, class_name, device)
