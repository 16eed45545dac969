"""KS-Gen key-step generation: a plan of key-step texts (planner.py: retrieval over a library of
graph scripts) and one image per key step (kig.py: the Key-step Image Generator, diffusers),
written out by report.py; keyframes.py reads key-step frames from a synthetic world."""
