import os
import sys

import pytest

from helpers import CLIPS, VIDEOS, write_world


@pytest.fixture(scope="session")
def videos_dir():
    if not CLIPS:
        pytest.skip(f"shared real clips not found at {VIDEOS} (set PROCVID_DATA)")
    return VIDEOS


@pytest.fixture
def tea_world(tmp_path):
    """The hand-written one-task world of helpers.write_world (no videos), in a fresh folder."""
    return write_world(tmp_path / "world")


@pytest.fixture(scope="session")
def tiny_encoder():
    from procvid.encoders import load_encoder

    return load_encoder("procvid-test-tiny:random", device="cpu")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """Six short synthetic videos, generated once for every test that trains on a world."""
    from procvid.data.synthetic import generate_world

    world = tmp_path_factory.mktemp("world")
    generate_world(world, num_videos=6, seed=11, size=64, min_duration=20, max_duration=25, progress=False)
    return world


def tiny_diffusers_folder(path, pix2pix: bool):
    """A randomly initialised diffusers folder at `path`/pipe: InstructPix2Pix (UNet input = noisy + image
    latents) or text-to-image Stable Diffusion. Its CLIP tokenizer has a byte-level vocab written here (no
    merges), so nothing is downloaded."""
    import json

    import torch
    from diffusers import (AutoencoderKL, DPMSolverMultistepScheduler, StableDiffusionInstructPix2PixPipeline,
                           StableDiffusionPipeline, UNet2DConditionModel)
    from open_clip.tokenizer import bytes_to_unicode
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    (path / "vocab.json").write_text(json.dumps(vocab))
    (path / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(path / "vocab.json"), str(path / "merges.txt"), model_max_length=32)
    torch.manual_seed(0)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        max_position_embeddings=32, bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
        pad_token_id=vocab["<|endoftext|>"]))
    vae = AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, latent_channels=4, norm_num_groups=8)
    unet = UNet2DConditionModel(sample_size=8, in_channels=8 if pix2pix else 4, out_channels=4,
                                block_out_channels=(16, 32), layers_per_block=1,
                                down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=2, norm_num_groups=8)
    pipe_cls = StableDiffusionInstructPix2PixPipeline if pix2pix else StableDiffusionPipeline
    pipe = pipe_cls(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                    scheduler=DPMSolverMultistepScheduler(), safety_checker=None, feature_extractor=None,
                    requires_safety_checker=False)
    pipe.save_pretrained(str(path / "pipe"))
    return path / "pipe"


@pytest.fixture(scope="session")
def tiny_instruct_pix2pix(tmp_path_factory):
    return tiny_diffusers_folder(tmp_path_factory.mktemp("ip2p"), pix2pix=True)


@pytest.fixture(scope="session")
def tiny_stable_diffusion(tmp_path_factory):
    return tiny_diffusers_folder(tmp_path_factory.mktemp("sd"), pix2pix=False)


@pytest.fixture
def procvid_cmd():
    """The CLI as a subprocess argv prefix (same interpreter as the tests)."""
    return [sys.executable, "-m", "procvid.cli"]


def pytest_configure(config):
    os.environ.setdefault("TQDM_DISABLE", "1")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    """`gpu`-marked tests are skipped where no CUDA device is visible (they run on GPU machines)."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is false)")
        for item in gpu_items:
            item.add_marker(skip)
