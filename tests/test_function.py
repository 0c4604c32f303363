"""gc.function: trace once per (dtype, rank) signature, run for any size."""
import numpy as np
import pytest

import graphc as gc


def test_traces_once_per_dtype_and_rank():
    @gc.function(executor="reference")
    def f(x, y):
        return gc.reduce_sum(x * y, axis=-1)

    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_allclose(f(a, a), (a * a).sum(-1))
    b = np.ones((5, 7), np.float32)
    np.testing.assert_allclose(f(b, b), np.full(5, 7.0))
    assert f.trace_count == 1
    f(a.astype(np.float64), a.astype(np.float64))
    assert f.trace_count == 2


def test_static_python_arguments_are_part_of_the_signature():
    @gc.function(executor="reference")
    def scale(x, k):
        return x * k

    x = np.ones(3, np.float32)
    assert scale(x, 2.0).tolist() == [2.0, 2.0, 2.0]
    assert scale(x, 3.0).tolist() == [3.0, 3.0, 3.0]
    assert scale.trace_count == 2


def test_structured_outputs_and_variables_persist():
    @gc.function(executor="reference")
    def counter(x):
        v = gc.Variable(np.zeros((), np.float32), name="count")
        return {"new": v.assign_add(gc.reduce_sum(x)), "x2": [x * 2.0]}

    out = counter(np.ones(3, np.float32))
    assert out["new"] == 3.0 and out["x2"][0].tolist() == [2.0, 2.0, 2.0]
    assert counter(np.ones(2, np.float32))["new"] == 5.0


def test_non_tensor_return_is_a_clear_error():
    @gc.function
    def bad(x):
        return 3

    with pytest.raises(TypeError, match="must return tensors"):
        bad(np.ones(2, np.float32))


@pytest.mark.parametrize("value, traced", [
    (np.ones((2, 3), np.float16), "float32"), (np.arange(4, dtype=np.uint8), "int32"),
    (np.arange(4, dtype=np.uint32), "int64"), (np.float32(2.0), "float32"),
    (np.array(3, np.int64), "int64"), (np.ones((0, 2), np.float64), "float64")])
def test_array_arguments_trace_by_the_dtype_rules(value, traced):
    # the signature reads only dtype and rank (no copy of the argument): as TensorFlow converts
    @gc.function(executor="reference")
    def f(x):
        return x + x

    sig = f._signature((value,))
    assert sig == (("array", np.dtype(traced).str, np.ndim(value)),)
    assert f.get_graph(value) is not None
