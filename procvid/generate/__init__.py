"""KS-Gen key-step generation: a plan of key-step texts (planner.py: retrieval over a library of
graph scripts) and one image per key step (kig.py: the Key-step Image Generator, diffusers),
written out by report.py; keyframes.py reads key-step frames from a synthetic world."""

# Sampling defaults of our KIG (tools/bench_generate.py); here so that the CLI parser need not import torch.
# InstructPix2Pix uses 7.5 (text) / 1.5 (image) with 100 DDIM steps; our small model does best near these.
DEFAULT_GUIDANCE = 3.0
DEFAULT_IMAGE_GUIDANCE = 1.5
DEFAULT_STEPS = 15
