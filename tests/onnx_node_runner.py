"""Run onnx's backend node tests (shipped in the onnx wheel) through graphc.onnx.InferenceSession.

Each test is sorted into ``passed``, ``unsupported`` (graphc.onnx raised UnsupportedError: the op,
attribute, dtype or opset is not supported) or ``wrong`` (a result differs, or anything else raised).

    python tests/onnx_node_runner.py [-v] [--compiled]
"""
from __future__ import annotations

import glob
import os
import sys
import time
from collections import Counter

import numpy as np

RTOL, ATOL = 1e-3, 1e-5


def node_test_dirs():
    import onnx
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    return sorted(glob.glob(os.path.join(root, "*", "model.onnx")))


def _load_pb(path, onnx):
    from onnx import numpy_helper
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        data = f.read()
    t.ParseFromString(data)
    if t.data_type == 0 and not t.dims:   # a sequence, optional or map: not a tensor
        raise ValueError("not a tensor")
    return numpy_helper.to_array(t)


def compare(expected, got):
    """'' when ``got`` matches ``expected`` (dtype, shape, values within RTOL/ATOL), else why not."""
    if got.dtype != expected.dtype:
        return f"dtype {got.dtype} != {expected.dtype}"
    if got.shape != expected.shape:
        return f"shape {got.shape} != {expected.shape}"
    if expected.dtype.kind in "fc":
        ok = np.allclose(got, expected, rtol=RTOL, atol=ATOL, equal_nan=True)
    else:
        ok = np.array_equal(got, expected)
    return "" if ok else f"values differ (max abs diff {np.max(np.abs(got.astype(float) - expected.astype(float)))})"


def run_one(model_path, executor="reference"):
    """('passed' | 'unsupported' | 'wrong', detail) for one node test folder's model."""
    import onnx
    import graphc.onnx as gco
    folder = os.path.dirname(model_path)
    try:
        sets = sorted(glob.glob(os.path.join(folder, "test_data_set_*")))
        cases = []
        for s in sets:
            ins = [_load_pb(p, onnx) for p in sorted(glob.glob(os.path.join(s, "input_*.pb")),
                                                      key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
            outs = [_load_pb(p, onnx) for p in sorted(glob.glob(os.path.join(s, "output_*.pb")),
                                                       key=lambda p: int(p.rsplit("_", 1)[1][:-3]))]
            cases.append((ins, outs))
    except (ValueError, TypeError):
        return "unsupported", "test data holds sequences/optionals/maps (not tensors)"
    try:
        sess = gco.InferenceSession(model_path, executor=executor)
        in_names = [i.name for i in sess.get_inputs()]
        for ins, outs in cases:
            got = sess.run(None, dict(zip(in_names, ins)))
            for k, (e, g) in enumerate(zip(outs, got)):
                why = compare(e, g)
                if why:
                    return "wrong", f"output {k}: {why}"
    except gco.UnsupportedError as e:
        return "unsupported", str(e)
    except Exception as e:  # noqa: BLE001 - anything else is a failure of the importer
        return "wrong", f"{type(e).__name__}: {e}"
    return "passed", ""


def run_all(executor="reference", verbose=False):
    """{name: (status, detail)} over every node test."""
    res = {}
    for p in node_test_dirs():
        name = os.path.basename(os.path.dirname(p))
        res[name] = run_one(p, executor)
        if verbose and res[name][0] != "passed":
            print(name, *res[name])
    return res


if __name__ == "__main__":
    t0 = time.perf_counter()
    r = run_all("compiled" if "--compiled" in sys.argv else "reference", verbose="-v" in sys.argv)
    c = Counter(s for s, _ in r.values())
    print(dict(c), f"{time.perf_counter() - t0:.1f} s")
