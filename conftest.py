"""Collection settings for the whole repository (doctests included)."""


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
    except ImportError:
        return False
    return True


# graphc.onnx needs the optional onnx package (pip install graphc[onnx]); without it its modules'
# doctests cannot be imported, and tests/test_onnx*.py skip with that reason
collect_ignore_glob = [] if _has_onnx() else ["graphc/onnx/*.py"]
