"""efficientnet-lite0: the real ImageNet-pretrained image encoder from PyPI (procvid.encoders.efficientnet).

Shows it is the trained network: its ImageNet predictions on frames of the shared real clips name what
is on screen, and its features tell the clips apart."""

import numpy as np
import pytest
import torch

from procvid.encoders import load_encoder
from procvid.encoders.efficientnet import (ARCH, EfficientNetLite0Encoder, convert_state_dict, imagenet_classes,
                                           timm_key, weights_file)
from procvid.errors import EncoderError
from procvid.video import frames_at, probe


@pytest.fixture(scope="module")
def encoder():
    return load_encoder("efficientnet-lite0", device="cpu")


def frames(videos_dir, name, fractions):
    """uint8 [N, H, W, 3]: the frames on screen at these fractions of the clip's duration."""
    path = videos_dir / name
    duration = probe(path).duration
    return np.stack(frames_at(path, [f * duration for f in fractions], short_side=256))


@pytest.fixture(scope="module")
def state_and_target():
    import timm

    state = torch.load(weights_file(), map_location="cpu", weights_only=True)
    target = {k: v.shape for k, v in timm.create_model(ARCH, pretrained=False).state_dict().items()}
    return state, target


def test_every_checkpoint_tensor_fills_one_network_tensor(state_and_target):
    state, target = state_and_target
    converted = convert_state_dict(state, target)
    assert set(converted) == set(target) and len(converted) == len(state) == 296
    assert all(converted[timm_key(k)] is v for k, v in state.items())
    assert timm_key("_blocks.0._project_conv.weight") == "blocks.0.0.conv_pw.weight"  # no expansion in block 0
    assert timm_key("_blocks.15._project_conv.weight") == "blocks.6.0.conv_pwl.weight"
    assert timm_key("_fc.weight") == "classifier.weight"


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.pop("_blocks.3._bn1.running_var"), "missing blocks.2.0.bn2.running_var"),
    (lambda s: s.__setitem__("_blocks.16._bn1.bias", torch.zeros(3)), "unexpected tensor _blocks.16._bn1.bias"),
    (lambda s: s.__setitem__("_fc.bias", torch.zeros(10)), "_fc.bias: shape (10,), the network expects (1000,)"),
])
def test_a_checkpoint_that_does_not_fit_is_one_clear_error(state_and_target, edit, message, tmp_path):
    state, target = state_and_target
    state = dict(state)
    edit(state)
    with pytest.raises(EncoderError) as e:
        convert_state_dict(state, target)
    assert message in str(e.value) and "not an EfficientNet-Lite0 state dict" in str(e.value)
    path = tmp_path / "bad.pth"
    torch.save(state, path)
    with pytest.raises(EncoderError, match=message.replace("(", r"\(").replace(")", r"\)")):
        EfficientNetLite0Encoder(device="cpu", weights=path)


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("not weights")
    with pytest.raises(EncoderError, match="not a checkpoint"):
        EfficientNetLite0Encoder(device="cpu", weights=path)


def test_encoder_interface(encoder):
    assert (encoder.dim, encoder.image_size) == (1280, 224)
    assert encoder.id.startswith("efficientnet-lite0:tf_efficientnet_lite0:efficientnet-lite0-57934424.pth@")
    assert (encoder.spec, encoder.requested_device) == ("efficientnet-lite0", "cpu")
    x = encoder.prepare_images(np.zeros((2, 300, 400, 3), np.uint8))
    assert x.shape == (2, 3, 224, 224) and x.dtype == torch.float32
    assert torch.allclose(x, torch.full_like(x, -127 / 128))  # inception-style normalisation
    with pytest.raises(EncoderError, match="takes no argument"):
        load_encoder("efficientnet-lite0:x")


# Top-5 ImageNet classes that count as naming what is on screen; ImageNet has no class for most of
# these objects, so a set of neighbours is accepted (printed with -s). Frames at these fractions of
# the clip's duration; at least `need` of each frame's top 5 must be in the set, and its top 1.
ANIMALS = set(imagenet_classes()[:398])  # ImageNet-1k indices 0..397 are animals
REAL = {
    # a man in a suit and tie talking in a car
    "carphone_pristine.mp4": ((0.35, 0.5, 0.65), {"bow tie", "Windsor tie", "suit", "seat belt", "groom",
                                                   "academic gown", "limousine"}, 4),
    # a hand holds a printed cardboard box over a table
    "box.mp4": ((0.35, 0.5), {"chest", "carton", "crate", "packet", "tray", "jigsaw puzzle", "envelope",
                              "cassette", "hamper", "pencil box", "mousetrap"}, 3),
    # a cyclist waits at a street corner
    "bikes.mp4": ((0.5,), {"unicycle", "mountain bike", "tricycle", "bicycle-built-for-two", "moped",
                           "motor scooter", "jinrikisha"}, 3),
    # a big white cartoon rabbit on a meadow: animals (it says albatross, white and big)
    "bigbuckbunny.mp4": ((0.35, 0.5), ANIMALS, 4),
    # a hand turns a black lidded tumbler (no such ImageNet class): hand-held cylinders and containers
    "cup.mp4": ((0.35, 0.5), {"power drill", "joystick", "can opener", "hand blower", "lighter", "switch",
                              "cocktail shaker", "soap dispenser", "beaker", "pill bottle", "water bottle",
                              "pop bottle", "dumbbell", "hand-held computer", "coffee mug", "cup"}, 3),
}


@pytest.mark.parametrize("clip", list(REAL))
def test_imagenet_predictions_on_real_clips_name_what_is_on_screen(encoder, videos_dir, clip):
    fractions, accepted, need = REAL[clip]
    names = imagenet_classes()
    for fraction, top in zip(fractions, encoder.classify(frames(videos_dir, clip, fractions), k=5)):
        labels = [names[i] for i, _ in top]
        print(f"{clip} at {fraction:.0%}: " + ", ".join(f"{names[i]} {p:.2f}" for i, p in top))
        assert [p for _, p in top] == sorted((p for _, p in top), reverse=True) and top[0][1] > 0.1
        assert labels[0] in accepted and len(accepted.intersection(labels)) >= need, (clip, fraction, labels)


def test_features_of_one_clip_are_closer_than_of_different_clips(encoder, videos_dir):
    clips = ["cup.mp4", "box.mp4", "carphone_pristine.mp4", "bigbuckbunny.mp4", "vtest.avi", "tree.avi"]
    prepared = [encoder.prepare_images(frames(videos_dir, c, (0.4, 0.6))) for c in clips]
    emb = encoder.encode_blocks(torch.cat(prepared))  # one forward pass for all
    assert emb.shape == (12, 1280) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    sim = emb @ emb.T
    for i, clip in enumerate(clips):
        same = sim[2 * i, 2 * i + 1]
        others = np.delete(sim[2 * i : 2 * i + 2], [2 * i, 2 * i + 1], axis=1)
        assert same > others.max() + 0.1, (clip, same, others.max())


def test_no_text_tower_is_one_clear_error(encoder):
    with pytest.raises(EncoderError) as e:
        encoder.encode_texts(["pour the water"])
    message = str(e.value)
    assert len(message.splitlines()) == 1
    assert "image-only" in message and "--encoder ViT-B-32:" in message


@pytest.mark.slow
def test_embed_and_segment_real_clips_with_it_on_the_command_line(videos_dir, tmp_path, capsys):
    import json

    from procvid.cli import main

    emb, seg = tmp_path / "emb", tmp_path / "seg"
    clips = [str(videos_dir / c) for c in ("cup.mp4", "carphone_pristine.mp4")]
    assert main(["embed", *clips, "--out", str(emb), "--encoder", "efficientnet-lite0", "--fps", "1",
                 "--device", "cpu", "--no-progress"]) == 0
    meta = json.loads((emb / "cup.json").read_text())
    assert meta["encoder"].startswith("efficientnet-lite0:") and meta["dim"] == 1280 and meta["num_frames"] == 9
    assert main(["segment", str(emb), "--out", str(seg), "--method", "kcpd", "--no-progress"]) == 0
    assert sorted(p.name for p in seg.glob("*.segments.json")) == ["carphone_pristine.segments.json",
                                                                   "cup.segments.json"]
