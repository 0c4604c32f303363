"""ONNX interop: export graphc models to ONNX files, and run ONNX models through graphc's compiler.

Needs the ``onnx`` package (``pip install graphc[onnx]``; the tests also use onnxruntime).

    >>> import os, tempfile, numpy as np
    >>> import graphc.onnx as gco
    >>> from graphc.models import Sequential; from graphc.layers import Dense
    >>> model = Sequential([Dense(2, input_dim=3, activation="softmax")])
    >>> path = os.path.join(tempfile.mkdtemp(), "m.onnx")
    >>> gco.export(model, path)                        # a Keras-style model; export_graph for TF-1 graphs
    >>> sess = gco.InferenceSession(path)              # onnxruntime's API: swap the import to switch
    >>> x = np.ones((4, 3), np.float32)
    >>> y, = sess.run(None, {sess.get_inputs()[0].name: x})
    >>> bool(np.allclose(y, model.predict(x), atol=1e-6))
    True
"""
from __future__ import annotations

from .errors import OnnxError, UnsupportedError, require_onnx

require_onnx()

from . import converters, converters_control, converters_nn, converters_reduce  # noqa: E402,F401  (the converter table)
from .export import export, export_graph  # noqa: E402
from .session import InferenceSession, NodeArg  # noqa: E402


def supported_ops() -> list:
    """The ONNX op types graphc imports (some only for certain attributes or dtypes)."""
    return sorted(converters.CONVERTERS)


__all__ = ["export", "export_graph", "InferenceSession", "NodeArg", "OnnxError", "UnsupportedError",
           "supported_ops"]
