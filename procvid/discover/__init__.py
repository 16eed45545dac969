"""Step discovery without labels: the key steps a task's videos share (see procvid.discover.base).

    from procvid.discover import get_discoverer, VideoUnits
    result = get_discoverer("order-kmeans").discover([VideoUnits(stem, X, units), ...])

Methods are registered in procvid.registry.DISCOVERERS (`procvid list discovery-methods`); the stage
over files is procvid.discover.stage.discover_batch (`procvid discover`).
"""

from __future__ import annotations

from procvid.discover.base import BACKGROUND, Discoverer, Discovery, VideoUnits, discoverer_class, get_discoverer

__all__ = ["BACKGROUND", "Discoverer", "Discovery", "VideoUnits", "discoverer_class", "get_discoverer"]
