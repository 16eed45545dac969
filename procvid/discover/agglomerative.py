"""BUDS-style bottom-up discovery (`agglomerative`): a hierarchy over the segments of all videos
(scipy.cluster.hierarchy, Ward linkage on [embedding, w * relative position]); recurring patterns
across demonstrations are the clusters of the hierarchy cut at K. K = auto: the cut at the largest
mean silhouette over the cuts into MIN_K..max_k clusters (the largest merge-height gap, tried first,
cuts far too coarsely: K = 2 on the tuning world). Clusters that recur within videos are background, as in order-kmeans.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from procvid.discover.base import BACKGROUND, MAX_K, MIN_K, Discoverer
from procvid.discover.cluster import background_clusters, once_per_video, runs_per_video, silhouette
from procvid.registry import DISCOVERERS

DESCRIPTION = "BUDS-style agglomerative hierarchy (Ward) over segment embeddings and positions, cut at K"


@DISCOVERERS.register("agglomerative", DESCRIPTION)
@dataclass
class Agglomerative(Discoverer):
    position_weight: float = 1.0
    linkage: str = "ward"
    max_k: int = 12
    background_runs: float = 1.5
    refine: bool = True

    name = "agglomerative"

    def cluster(self, emb, pos, vid, share, num_steps, num_videos):
        from scipy.cluster.hierarchy import fcluster, linkage

        Z = np.hstack([emb, self.position_weight * pos[:, None]])
        if len(Z) < 2:
            return np.zeros(len(Z), dtype=np.int64), {"rule": "single segment", "k": 1}
        tree = linkage(Z, method=self.linkage)
        if num_steps is None:
            hi = max(MIN_K, min(self.max_k, MAX_K, len(Z) - 1))
            scores = {k: round(silhouette(Z, fcluster(tree, k, criterion="maxclust") - 1), 4)
                      for k in range(MIN_K, hi + 1)}
            k = max(scores, key=lambda k: (scores[k], -k))
            choice = {"rule": "silhouette", "k": k, "scores": scores,
                      "why": f"cutting the hierarchy into K={k} clusters gives the highest mean silhouette "
                             f"(K from {MIN_K} to {hi}); background clusters, which recur within videos, are "
                             "then dropped from the steps"}
        else:
            k, choice = min(num_steps + 1, len(Z)), {"rule": "given", "k": num_steps,
                                                     "why": "K given; one more cluster is clustered for the background"}
        labels = fcluster(tree, k, criterion="maxclust").astype(np.int64) - 1
        k = int(labels.max()) + 1
        rpv = runs_per_video(labels, vid, k)
        background = background_clusters(rpv, self.background_runs, num_steps)
        choice["background_clusters"] = len(background)
        if self.refine:
            centers = np.stack([Z[labels == c].mean(0) for c in range(k)])
            dist = ((Z[:, None, :] - centers[None]) ** 2).sum(-1)
            labels = once_per_video(labels, dist, vid, background)
        else:
            labels = np.where(np.isin(labels, list(background)), BACKGROUND, labels)
        return labels, choice
