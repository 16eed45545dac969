"""Recompute the v2 synthetic world's timing summaries (procvid/data/synthetic/timing.json) from the
shared annotations (CrossTask, COIN, CaptainCook4D) and print them per dataset.

    python tools/synth_timing.py            # prints; exit 1 when the stored file differs
    python tools/synth_timing.py --write    # rewrites timing.json
"""

from procvid.data.synthetic.timing import main

if __name__ == "__main__":
    raise SystemExit(main())
