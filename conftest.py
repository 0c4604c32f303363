"""Collection settings for the whole repository (doctests included)."""
import importlib.util

# graphc.onnx needs the optional onnx package (pip install graphc[onnx]); without it its modules'
# doctests cannot be imported, and tests/test_onnx*.py skip with that reason
collect_ignore_glob = [] if importlib.util.find_spec("onnx") else ["graphc/onnx/*.py"]
