"""Shared machinery of the batch stages (embed, segment, ground, ...): sharding, failure logs,
summaries and progress bars."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from procvid.errors import ProcvidError
from procvid.outputs import append_line, prepare_output_dir

log = logging.getLogger(__name__)

FAILURES_FILE = "failures.jsonl"


def parse_shard(text: str | None) -> tuple[int, int]:
    """'I/N' (0-based I) -> (I, N); None -> (0, 1)."""
    if not text:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ProcvidError(f"--shard {text!r}: expected I/N, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise ProcvidError(f"--shard {text!r}: need 0 <= I < N")
    return i, n


def in_shard(key: str, shard: tuple[int, int]) -> bool:
    """Stable, disjoint split: depends only on the item's key, not on the input order or size."""
    i, n = shard
    return int(hashlib.sha1(key.encode()).hexdigest(), 16) % n == i


class FailureLog:
    """Append-only JSON-lines log of failed items in an output folder, flushed per line so a killed
    run keeps it. Runs append (each line names its run: start time and process id); nothing is ever
    truncated. Creating it prepares the folder (procvid.outputs.prepare_output_dir: lock, checks)."""

    def __init__(self, out_dir: Path):
        self.path = prepare_output_dir(out_dir) / FAILURES_FILE
        self.run = f"{time.strftime('%Y-%m-%dT%H:%M:%S')} pid {os.getpid()}"
        self.count = 0

    def add(self, item: str, reason: str) -> None:
        append_line(self.path, json.dumps({"item": item, "reason": reason, "run": self.run}))
        self.count += 1


@dataclass
class RunSummary:
    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    frames: int = 0
    started: float = field(default_factory=time.perf_counter)
    reasons: dict = field(default_factory=dict)  # failed item -> reason
    messages: int = 0  # decoder log messages (damaged streams), counted in the items' decode records
    messages_in: int = 0  # items that had any

    def fail(self, failures: FailureLog, item: str, reason: str, logged: bool = False) -> None:
        """Count a failed item, log it (one line on stderr, unless an earlier stage `logged` it) and
        record it in the failures file."""
        failures.add(item, reason)
        self.failed += 1
        self.reasons[item] = reason
        if not logged:
            log.warning("%s: %s", item, reason)

    def line(self, what: str = "videos") -> str:
        secs = time.perf_counter() - self.started
        rate = f", {self.frames / secs:.1f} frames/s" if self.frames and secs > 0 else ""
        noisy = (f"; {self.messages} decoder messages from {self.messages_in} damaged {what} (counts in their "
                 "feature sidecars: decode.messages)") if self.messages else ""
        return (
            f"{self.total} {what}: {self.done} processed, {self.skipped} already done, "
            f"{self.failed} failed; {self.frames} frames in {secs:.1f} s{rate}{noisy}"
        )


class Progress:
    """A stage's progress bar over its items (skipped and failed ones count as done at the start)."""

    def __init__(self, summary: RunSummary, desc: str, enabled: bool = True, unit: str = "video"):
        self.summary, self.desc, self.enabled, self.unit = summary, desc, enabled, unit

    def __enter__(self) -> Progress:
        from tqdm import tqdm

        s = self.summary
        self.bar = tqdm(total=s.total, initial=s.skipped + s.failed, unit=self.unit, desc=self.desc,
                        disable=not self.enabled or not s.total, dynamic_ncols=True)
        return self

    def update(self) -> None:
        self.bar.update(1)
        if self.summary.frames:
            rate = self.summary.frames / max(self.bar.format_dict["elapsed"], 1e-9)
            self.bar.set_postfix_str(f"{rate:.1f} frames/s")

    def __exit__(self, *exc) -> None:
        self.bar.close()
