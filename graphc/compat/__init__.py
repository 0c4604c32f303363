"""Compatibility namespaces: ``graphc.compat.v1`` holds TensorFlow-1 names (``import graphc.compat.v1 as tf``)."""
from . import v1

__all__ = ["v1"]
