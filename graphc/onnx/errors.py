"""Errors of graphc's ONNX interop; each message names the file, the node and the op.

    >>> from graphc.onnx.errors import UnsupportedError
    >>> str(UnsupportedError("m.onnx", "n1", "Foo", "op Foo is not supported"))
    "m.onnx: node 'n1' (Foo): op Foo is not supported"
"""
from __future__ import annotations

from ..errors import GraphcError


class OnnxError(GraphcError, ValueError):
    """A model graphc cannot read or write: malformed file, missing external data, bad graph."""

    def __init__(self, path, node=None, op=None, reason=""):
        self.path, self.node, self.op, self.reason = path, node, op, reason
        where = str(path)
        if node is not None or op is not None:
            where += f": node {node!r}" + (f" ({op})" if op else "")
        super().__init__(f"{where}: {reason}")


class UnsupportedError(OnnxError):
    """A valid ONNX model that uses an op, attribute, dtype or opset graphc does not support.

    ``kind`` is ``"op"``, ``"attribute"``, ``"dtype"``, ``"opset"``, ``"dynamic"`` (a value
    graphc needs at build time, e.g. a shape computed from data) or ``"build"`` (graphc's own
    shape/dtype checks refused the ops a converter built; the message carries graphc's error).
    """

    def __init__(self, path, node=None, op=None, reason="", kind="op"):
        self.kind = kind
        self.inputs = []   # kind "dynamic": the graph inputs whose values were needed
        super().__init__(path, node, op, reason)


def require_onnx():
    """Import and return the ``onnx`` module, or raise an ImportError naming the extra to install."""
    try:
        import onnx
    except ImportError as e:
        raise ImportError("graphc.onnx needs the onnx package: pip install graphc[onnx] "
                          f"(or pip install onnx) [{e}]") from None
    return onnx
