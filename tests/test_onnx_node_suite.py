"""onnx's own backend node tests (shipped in the onnx wheel) through graphc.onnx.InferenceSession.

Every node test is sorted into passed / unsupported (UnsupportedError: op, attribute, dtype or
opset graphc does not support) / wrong (a result differs, or anything else raised). The counts
and the unsupported ops are printed (``pytest -s``) and written to ``$GRAPHC_ONNX_REPORT`` if set.
"""
import json
import os
import re
from collections import Counter

import pytest

pytest.importorskip("onnx", reason="graphc.onnx needs onnx: pip install graphc[onnx]")

import onnx_node_runner as runner  # noqa: E402  (tests/ is on sys.path: conftest.py)

MIN_PASSED = 350


@pytest.fixture(scope="module")
def results():
    if not runner.node_test_dirs():
        pytest.fail("the installed onnx has no backend node tests (onnx/backend/test/data/node); "
                    "onnx 1.23 stopped shipping them: pip install 'onnx<1.23' (graphc[onnx] pins it)")
    return runner.run_all("reference")


def _unsupported_ops(res):
    ops = Counter()
    for status, detail in res.values():
        m = re.search(r"op (\S+) is not supported", detail) if status == "unsupported" else None
        if m:
            ops[m.group(1).rstrip(";")] += 1
    return ops


def test_node_suite_passes_and_never_wrong(results):
    counts = Counter(s for s, _ in results.values())
    wrong = {k: d for k, (s, d) in results.items() if s == "wrong"}
    ops = _unsupported_ops(results)
    import onnx
    from graphc.onnx import supported_ops
    used = {n.op_type for p in runner.node_test_dirs()
            for n in onnx.load(p, load_external_data=False).graph.node}
    no_converter = sorted(used - set(supported_ops()))
    print(f"\nonnx node tests: {dict(counts)}\nops without a converter ({len(no_converter)}): "
          f"{', '.join(no_converter)}\nops named by unsupported tests ({len(ops)}): {', '.join(sorted(ops))}")
    if os.environ.get("GRAPHC_ONNX_REPORT"):
        with open(os.environ["GRAPHC_ONNX_REPORT"], "w") as f:
            json.dump({"counts": dict(counts), "unsupported_ops": dict(ops), "no_converter": no_converter,
                       "results": {k: list(v) for k, v in sorted(results.items())}}, f, indent=1)
    assert not wrong, f"{len(wrong)} wrong results: " + "; ".join(f"{k}: {d}" for k, d in sorted(wrong.items())[:10])
    assert counts["passed"] >= MIN_PASSED, dict(counts)


def test_unsupported_reasons_name_file_node_and_op(results):
    for name, (status, detail) in results.items():
        if status == "unsupported" and not detail.startswith("test data"):
            assert "model.onnx" in detail and "supported" in detail, (name, detail)


# the compiled runtime on a sample of node tests, one per op family (the suite runs the
# reference interpreter: numba-compiling ~600 tiny graphs would take minutes)
COMPILED_SAMPLE = ["test_add_bcast", "test_relu", "test_matmul_3d", "test_gemm_all_attributes",
                   "test_conv_with_strides_padding", "test_maxpool_2d_pads", "test_averagepool_2d_pads",
                   "test_softmax_axis_1", "test_reduce_sum_keepdims_example", "test_slice_neg_steps",
                   "test_transpose_all_permutations_3", "test_layer_normalization_3d_axis1_epsilon",
                   "test_lstm_defaults", "test_gather_negative_indices", "test_where_example",
                   "test_cast_FLOAT_to_DOUBLE"]


@pytest.mark.parametrize("name", COMPILED_SAMPLE)
def test_node_sample_compiled(name, results):
    path = [p for p in runner.node_test_dirs() if os.path.basename(os.path.dirname(p)) == name]
    assert path and results[name][0] == "passed", results.get(name)
    status, detail = runner.run_one(path[0], executor="compiled")
    assert status == "passed", detail
