"""Evaluation metrics, one module per family (segmentation, graph, ...), each documenting its definitions."""
