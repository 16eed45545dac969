"""One default per option shared by stages and commands (documented once, in the README)."""

ENCODER = "video"  # the shipped clip-level encoder: the features the shipped SBD predictor and grounding use
FPS = 2.0  # frames embedded per second: the video encoder's training rate
DEVICE = "auto"  # cuda when available, else cpu
WORKERS = 2  # decoding threads of the local engine
ENGINE = "local"  # or "ray"
