"""onnx's own backend node tests (shipped in the onnx wheel) through graphc.onnx.InferenceSession.

Every node test is sorted into passed / unsupported (UnsupportedError: op, attribute, dtype or
opset graphc does not support) / wrong (a result differs, or anything else raised). The suite
runs twice: on the compiled runtime (passes.optimize + numba kernels, what InferenceSession
uses; ~50 s with an empty kernel cache, a few seconds warm) and on the reference interpreter.
The counts and the unsupported ops are printed (``pytest -s``) and written to
``$GRAPHC_ONNX_REPORT`` if set.
"""
import json
import os
import re
from collections import Counter

import pytest

pytest.importorskip("onnx", reason="graphc.onnx needs onnx: pip install graphc[onnx]")

import onnx_node_runner as runner  # noqa: E402  (tests/ is on sys.path: conftest.py)

MIN_PASSED = 350


def _run(executor):
    if not runner.node_test_dirs():
        pytest.fail("the installed onnx has no backend node tests (onnx/backend/test/data/node); "
                    "onnx 1.23 stopped shipping them: pip install 'onnx<1.23' (graphc[onnx] pins it)")
    return runner.run_all(executor)


def _unsupported_ops(res):
    ops = Counter()
    for status, detail in res.values():
        m = re.search(r"op (\S+) is not supported", detail) if status == "unsupported" else None
        if m:
            ops[m.group(1).rstrip(";")] += 1
    return ops


def _check(results, executor):
    counts = Counter(s for s, _ in results.values())
    wrong = {k: d for k, (s, d) in results.items() if s == "wrong"}
    import onnx
    from graphc.onnx import supported_ops
    used = {n.op_type for p in runner.node_test_dirs()
            for n in onnx.load(p, load_external_data=False).graph.node}
    no_converter = sorted(used - set(supported_ops()))
    print(f"\nonnx node tests ({executor}): {dict(counts)}\nops without a converter ({len(no_converter)}): "
          f"{', '.join(no_converter)}")
    if os.environ.get("GRAPHC_ONNX_REPORT"):
        with open(f"{os.environ['GRAPHC_ONNX_REPORT']}.{executor}.json", "w") as f:
            json.dump({"counts": dict(counts), "unsupported_ops": dict(_unsupported_ops(results)),
                       "no_converter": no_converter,
                       "results": {k: list(v) for k, v in sorted(results.items())}}, f, indent=1)
    assert not wrong, f"{len(wrong)} wrong results: " + "; ".join(f"{k}: {d}" for k, d in sorted(wrong.items())[:10])
    assert counts["passed"] >= MIN_PASSED, dict(counts)
    for name, (status, detail) in results.items():   # each refusal names the file, node/op and what
        if status == "unsupported" and not detail.startswith("test data"):
            assert "model.onnx" in detail and "supported" in detail, (name, detail)
    return counts


def test_node_suite_compiled():
    """The acceptance run: every node test on the compiled runtime; 0 wrong, >= 350 passed."""
    _check(_run("compiled"), "compiled")


def test_node_suite_reference_interpreter():
    """The same tests on graphc's numpy reference interpreter (the oracle of graphc's own tests)."""
    _check(_run("reference"), "reference")
