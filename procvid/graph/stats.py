"""How non-sequential real step orders are: reversed consecutive pairs and branching next steps.

Zhou et al. (ACL 2023, "Non-Sequential Graph Script Induction via Multimedia Grounding") report for
CrossTask that 64.5% of consecutive step pairs are also observed in reverse order and that a step has
2.56 frequent next steps on average, without spelling out the definitions. The ones below reproduce
both on CrossTask's validation split (videos_val.csv, 360 videos): 64.3% and 2.58.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from procvid.graph.script import consecutive_pairs

FREQUENT_THRESHOLD = 0.1

DEFINITIONS = (
    "sequence: a video's annotated steps sorted by start time (repeats kept)\n"
    "consecutive pair: (a, b), a != b, b annotated directly after a in some video of the task\n"
    "reversed share: distinct consecutive pairs (a, b) whose reverse (b, a) is also a consecutive pair\n"
    "    of the same task, over all distinct consecutive pairs (pooled over tasks)\n"
    "frequent next steps of a: steps b with P(b | a) = n(a, b) / sum_c n(a, c) >= {threshold:g}, n counting\n"
    "    consecutive pairs; averaged over every (task, step) that has a next step"
)


@dataclass(frozen=True)
class OrderStats:
    tasks: int
    videos: int
    pairs: int  # distinct consecutive pairs, summed over tasks
    reversed_pairs: int
    steps: int  # (task, step) with at least one next step
    frequent_next: float  # mean number of frequent next steps
    threshold: float

    @property
    def reverse_share(self) -> float:
        return self.reversed_pairs / self.pairs if self.pairs else 0.0


def order_statistics(sequences_by_task: dict[str, list[list]], threshold: float = FREQUENT_THRESHOLD
                     ) -> OrderStats:
    pairs_total = reversed_total = steps_total = 0
    frequent_total = 0
    for sequences in sequences_by_task.values():
        counts = consecutive_pairs(sequences)
        pairs_total += len(counts)
        reversed_total += sum((b, a) in counts for a, b in counts)
        out: dict = defaultdict(Counter)
        for (a, b), n in counts.items():
            out[a][b] += n
        for successors in out.values():
            total = sum(successors.values())
            frequent_total += sum(n / total >= threshold for n in successors.values())
        steps_total += len(out)
    videos = sum(len(s) for s in sequences_by_task.values())
    mean_next = frequent_total / steps_total if steps_total else 0.0
    return OrderStats(len(sequences_by_task), videos, pairs_total, reversed_total, steps_total, mean_next,
                      threshold)


def dataset_statistics(dataset, threshold: float = FREQUENT_THRESHOLD) -> OrderStats:
    return order_statistics({t: dataset.sequences(t) for t in dataset.tasks}, threshold)


def format_statistics(stats: OrderStats, label: str) -> str:
    return (f"{label}: {stats.tasks} tasks, {stats.videos} videos | reversed consecutive pairs "
            f"{100 * stats.reverse_share:.1f}% ({stats.reversed_pairs}/{stats.pairs}) | frequent next steps "
            f"{stats.frequent_next:.2f} per step (P >= {stats.threshold:g}, {stats.steps} steps)")
