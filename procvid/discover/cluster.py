"""Order-aware clustering of segment embeddings (`order-kmeans`).

Each segment is the vector [embedding, w * relative position] (embedding L2-normalised, position
the segment's middle as a share of the video), clustered with k-means. Then the once-per-video
prior: in each video a step keeps one contiguous run of segments (the run whose members are nearest
its prototype); its other runs go to their next-nearest step that is still free in that video, or to
background. Clusters that still recur within videos (more than `background_runs` runs per video on
average before the refinement, as idle gaps between steps do) are background.

K = auto: the mean silhouette of the k-means labels for K in MIN_K..max_k (segments subsampled to
at most 2000), the K with the best silhouette; the scores and the choice are returned for the output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from procvid.discover.base import BACKGROUND, MAX_K, MIN_K, Discoverer
from procvid.registry import DISCOVERERS

DESCRIPTION = ("k-means of segment embeddings with the relative position as a feature, refined so a step "
               "occurs once per video in one run; K by silhouette")


def kmeans(Z: np.ndarray, k: int, seed: int = 0, restarts: int = 4):
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=restarts, random_state=seed).fit(Z)
    return model.labels_.astype(np.int64), model.cluster_centers_


def silhouette(Z: np.ndarray, labels: np.ndarray, seed: int = 0, sample: int = 2000) -> float:
    from sklearn.metrics import silhouette_score

    if len(set(labels.tolist())) < 2 or len(set(labels.tolist())) >= len(Z):
        return -1.0
    return float(silhouette_score(Z, labels, sample_size=min(sample, len(Z)), random_state=seed))


def runs_per_video(labels: np.ndarray, vid: np.ndarray, k: int) -> np.ndarray:
    """Mean number of runs (maximal stretches of consecutive segments) of each cluster per video it occurs in."""
    runs, videos = np.zeros(k), np.zeros(k)
    for v in np.unique(vid):
        lab = labels[vid == v]
        starts = np.r_[True, lab[1:] != lab[:-1]]
        for c in range(k):
            n = int((starts & (lab == c)).sum())
            if n:
                runs[c] += n
                videos[c] += 1
    return runs / np.maximum(videos, 1)


def background_clusters(rpv: np.ndarray, threshold: float, num_steps: int | None) -> set:
    """Clusters that recur within videos (more than `threshold` runs per video): background. With K
    given (K + 1 clusters made), the most recurring cluster is background when none passes the threshold."""
    k = len(rpv)
    background = {c for c in range(k) if rpv[c] > threshold}
    if num_steps is not None and not background and k > num_steps:
        background = {int(np.argmax(rpv))}
    if len(background) == k:  # nothing is shared once per video: keep every cluster a step
        background = set()
    return background


def once_per_video(labels: np.ndarray, dist: np.ndarray, vid: np.ndarray, background: set) -> np.ndarray:
    """Keep one run of each step per video (the run nearest its prototype); reassign the other
    segments to the nearest step not yet used in that video, or to background."""
    out = labels.copy()
    for v in np.unique(vid):
        idx = np.flatnonzero(vid == v)
        lab = out[idx]
        runs = []  # (cluster, member positions)
        for i, c in enumerate(lab):
            if runs and runs[-1][0] == c:
                runs[-1][1].append(i)
            else:
                runs.append((int(c), [i]))
        kept, extra = {}, []
        for c, members in runs:
            if c in background:
                continue
            cost = dist[idx[members], c].mean()
            if c not in kept or cost < kept[c][0]:
                if c in kept:
                    extra.extend(kept[c][1])
                kept[c] = (cost, members)
            else:
                extra.extend(members)
        used = set(kept)
        for i in sorted(extra, key=lambda i: dist[idx[i]].min()):
            choices = [c for c in np.argsort(dist[idx[i]]) if c not in used and c not in background]
            # a free step only if the segment is adjacent in time to nothing of it (it is free in this video)
            lab[i] = choices[0] if choices and dist[idx[i], choices[0]] <= np.median(dist[idx, choices[0]]) else BACKGROUND
            if lab[i] != BACKGROUND:
                used.add(int(lab[i]))
        for c in background:
            lab[lab == c] = BACKGROUND
        out[idx] = lab
    return out


@DISCOVERERS.register("order-kmeans", DESCRIPTION)
@dataclass
class OrderKMeans(Discoverer):
    """k-means on [embedding, position_weight * relative position], once-per-video refinement."""

    position_weight: float = 1.0  # tuned on the seed-3 world (tools/bench_discover.py --tune)
    max_k: int = 12
    background_runs: float = 1.5  # clusters recurring more often per video are background
    refine: bool = True
    seed: int = 0

    name = "order-kmeans"

    def features(self, emb: np.ndarray, pos: np.ndarray) -> np.ndarray:
        return np.hstack([emb, self.position_weight * pos[:, None]])

    def cluster(self, emb, pos, vid, share, num_steps, num_videos):
        Z = self.features(emb, pos)
        if num_steps is None:
            k, choice = self.choose_k(Z, vid)
        else:
            k, choice = min(num_steps + 1, len(Z)), {"rule": "given", "k": num_steps,
                                                     "why": "K given; one more cluster is clustered for the background"}
        labels, centers = kmeans(Z, k, self.seed)
        rpv = runs_per_video(labels, vid, k)
        background = background_clusters(rpv, self.background_runs, num_steps)
        choice["background_clusters"] = len(background)
        if self.refine:
            dist = ((Z[:, None, :] - centers[None]) ** 2).sum(-1)
            labels = once_per_video(labels, dist, vid, background)
        else:
            labels = np.where(np.isin(labels, list(background)), BACKGROUND, labels)
        return labels, choice

    def choose_k(self, Z: np.ndarray, vid: np.ndarray) -> tuple[int, dict]:
        hi = max(MIN_K, min(self.max_k, MAX_K, len(Z) - 1))
        scores = {}
        for k in range(MIN_K, hi + 1):
            labels, _ = kmeans(Z, k, self.seed, restarts=2)
            scores[k] = round(silhouette(Z, labels, self.seed), 4)
        k = max(scores, key=lambda k: (scores[k], -k))
        return k, {"rule": "silhouette", "k": k, "scores": scores,
                   "why": f"K={k} has the highest mean silhouette of the k-means clusters of the segments "
                          f"(K from {MIN_K} to {hi}); background clusters, which recur within videos, are "
                          "then dropped from the steps"}
