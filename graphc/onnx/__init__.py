"""ONNX interop: export graphc models to ONNX files, and run ONNX models through graphc's compiler.

Needs the ``onnx`` package (``pip install graphc[onnx]``).

    >>> import graphc.onnx as gco                                          # doctest: +SKIP
    >>> gco.export(model, "mlp.onnx")                                      # a Keras-style model
    >>> sess = gco.InferenceSession("mlp.onnx")                            # as onnxruntime's
    >>> probs, = sess.run(None, {sess.get_inputs()[0].name: x_test})

``export_graph(outputs, inputs, path)`` exports a TensorFlow-1 style graph.
"""
from __future__ import annotations

from .errors import OnnxError, UnsupportedError, require_onnx

require_onnx()

from . import converters, converters_nn  # noqa: E402,F401  (fill the converter table)
from .export import export, export_graph  # noqa: E402
from .session import InferenceSession, NodeArg  # noqa: E402


def supported_ops() -> list:
    """The ONNX op types graphc imports (some only for certain attributes or dtypes)."""
    return sorted(converters.CONVERTERS)


__all__ = ["export", "export_graph", "InferenceSession", "NodeArg", "OnnxError", "UnsupportedError",
           "supported_ops"]
