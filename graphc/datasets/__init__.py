"""Datasets: ``mnist`` (the MNIST test set installed with graphc, or IDX files from a path or
``$GRAPHC_DATA``) and ``digits`` (scikit-learn)."""
from . import digits, mnist

__all__ = ["mnist", "digits"]
