"""The baseline tier of tiered execution (``runtime/baseline.py``): fused programs run as numpy
ufuncs into preallocated buffers, with the references' values bit for bit; the seed models'
training steps on that tier agree with the reference interpreter."""
import numpy as np
import pytest

import graphc as gc
from graphc.ops.fused import _multi_ref, run_program
from graphc.ops.registry import get_op
from graphc.runtime import baseline, cache, executor, lower

F32 = np.float32


def _run(program, ins, outputs=None, final="out"):
    fn, scratch = baseline.program_function(program, [(v.shape, v.dtype) for v in ins], outputs, final)
    bufs = [np.full(s, np.nan, d) if np.dtype(d).kind == "f" else np.zeros(s, d) for d, s in scratch]
    if final == "return":
        return fn(*ins, *bufs), fn
    if outputs is None:
        spec = run_program(program, ins)
        out = np.full(np.shape(spec), 7, np.asarray(spec).dtype)
    else:
        ref = _multi_ref(ins, {"program": program, "outputs": outputs})
        out = np.full(ref.shape, 7, ref.dtype)
    fn(*ins, out, *bufs)
    return out, fn


def test_adam_like_multi_output_program_equals_the_reference_bit_for_bit(rng):
    n = (33, 7)
    ins = [rng.standard_normal(n).astype(F32), rng.standard_normal(n).astype(F32), np.asarray(0.1, F32),
           rng.random(n).astype(F32), np.asarray(1e-3, F32), np.asarray(2e-3, F32),
           np.asarray(1e-7, F32), rng.standard_normal(n).astype(F32)]
    prog = (("sub", (0, 1), ()), ("mul", (8, 2), ()), ("add", (1, 9), ()), ("square", (0,), ()),
            ("sub", (11, 3), ()), ("mul", (12, 4), ()), ("add", (3, 13), ()), ("mul", (10, 5), ()),
            ("sqrt", (14,), ()), ("add", (16, 6), ()), ("div", (15, 17), ()), ("sub", (7, 18), ()))
    out, fn = _run(prog, ins, (10, 14, 19))
    np.testing.assert_array_equal(out, _multi_ref(ins, {"program": prog, "outputs": (10, 14, 19)}))
    assert "out=out[0]" in fn.source and "np.stack" not in fn.source
    # intermediates share scratch buffers once dead: fewer buffers than intermediate steps
    assert len(baseline.program_function(prog, [(v.shape, v.dtype) for v in ins], (10, 14, 19))[1]) < 6


def test_copy_forms_reference_steps_and_views_equal_the_reference(rng):
    x = rng.standard_normal((4, 5)).astype(F32)
    b = rng.standard_normal((5,)).astype(F32)
    lab = rng.integers(0, 3, (4, 5)).astype(np.int64)
    prog = (("greater", (0, 1), ()),                       # 3: bool, a ufunc into a bool buffer
            ("where", (3, 0, 1), ()),                      # 4: copies
            ("cast", (2,), (("dtype", np.dtype(F32)),)),   # 5: astype
            ("broadcast_like", (1, 0), ()),                # 6: a broadcast copy
            ("identity", (4,), ()),                        # 7: a reference returning its input
            ("sigmoid", (7,), ()),                         # 8: a reference (np.where inside)
            ("leaky_relu", (8,), (("alpha", 0.2),)),       # 9: a reference with attrs
            ("relu", (5,), ()),                            # 10: maximum(x, 0)
            ("mul", (10, 6), ()), ("add", (11, 7), ()), ("add", (12, 9), ()))
    ins = [x, b, lab]
    out, fn = _run(prog, ins)
    np.testing.assert_array_equal(out, run_program(prog, ins))
    assert "casting='unsafe'" in fn.source and "where=" in fn.source
    # a value returned by a reference (identity: its very argument) keeps its buffer alive
    outm, _ = _run(prog, ins, outputs=(7, 13, 0))
    np.testing.assert_array_equal(outm, _multi_ref(ins, {"program": prog, "outputs": (7, 13, 0)}))
    red, _ = _run(prog, ins, final="return")
    np.testing.assert_array_equal(red, run_program(prog, ins))


def test_ufunc_forms_only_where_no_cast_follows():
    assert baseline._ufunc_form("add", (), [F32, F32], F32) is not None
    assert baseline._ufunc_form("relu", (), [F32], F32) == (np.maximum, (0,))
    assert baseline._ufunc_form("less", (), [F32, F32], np.bool_) is not None
    assert baseline._ufunc_form("div", (), [np.int32, np.int32], np.int32) is None    # true divide
    assert baseline._ufunc_form("leaky_relu", (("alpha", 0.2),), [F32], F32) is None
    assert get_op("add").reference.ufunc is np.add and not hasattr(get_op("sigmoid").reference, "ufunc")


def _seed(kind):
    from graphc.layers import Conv2D, Dense, Flatten, MaxPooling2D
    from graphc.models import Sequential
    if kind == "mlp":
        layers = [Dense(64, activation="relu", input_dim=784), Dense(10, activation="softmax")]
    else:
        layers = [Conv2D(8, (3, 3), activation="relu", input_shape=(28, 28, 1)), MaxPooling2D((2, 2)),
                  Conv2D(16, (3, 3), activation="relu"), MaxPooling2D((2, 2)), Flatten(),
                  Dense(32, activation="relu"), Dense(10, activation="softmax")]
    m = Sequential(layers)
    m.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_seed_training_steps_on_the_baseline_tier_equal_the_reference_interpreter(kind, monkeypatch,
                                                                                 tmp_path):
    # every plan stays on its baseline tier: its kernels count as cold and never swap in
    monkeypatch.setattr(cache, "can_compile_in_background", lambda: True)
    monkeypatch.setattr(lower.Bindings, "kernels", lambda self: ["never compiled"])
    monkeypatch.setattr(cache, "cold", lambda pairs: list(pairs))
    monkeypatch.setattr(executor.Executable, "_swap_in", lambda self, *args: None)
    rng = np.random.default_rng(0)
    shape = (784,) if kind == "mlp" else (28, 28, 1)
    x = rng.random((32,) + shape).astype(F32)
    y = np.eye(10, dtype=F32)[rng.integers(0, 10, 32)]
    with gc.config.override(executor="reference"):
        ref = _seed(kind)
    with gc.config.override(tiered=True, cache_dir=str(tmp_path)):
        tier = _seed(kind)
        tier.set_weights(ref.get_weights())
        got = [tier.train_on_batch(x, y) for _ in range(3)]
    want = [ref.train_on_batch(x, y) for _ in range(3)]
    np.testing.assert_allclose(np.array(got, dtype=np.float64), np.array(want, dtype=np.float64),
                               rtol=1e-5, atol=1e-6)
    for a, b in zip(tier.get_weights(), ref.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    exes = [p.__self__ for p in tier.session._programs.values()]
    names = {s.call.name for e in exes for s in e.bound.plan.steps if s.kind == "call"}
    assert all(n.startswith("ref:") for n in names) and "ref:np-fused_multi_output" in names


@pytest.mark.parametrize("op,dtype,shape,axis,keepdims", [
    ("reduce_sum", "float32", (32, 10), (0,), False), ("reduce_sum", "float32", (4, 5, 6), (0, 2), True),
    ("reduce_mean", "float32", (32,), (0,), False), ("reduce_mean", "float64", (3, 7), (1,), True),
    ("reduce_mean", "float32", (4, 5, 6), (0, 2), False),
    ("reduce_max", "float32", (6, 5), (1,), False), ("reduce_min", "int32", (6, 5), (0,), False),
    ("reduce_prod", "float64", (4, 3), (0, 1), False), ("reduce_any", "bool", (4, 3), (1,), False),
    ("reduce_all", "bool", (4, 3), (0,), True)])
def test_reductions_run_numpy_into_the_buffer_with_the_reference_bits(op, dtype, shape, axis, keepdims, rng):
    from graphc.runtime.kernels import NodeCtx
    x = (rng.standard_normal(shape) * 3).astype(dtype) if dtype != "bool" else rng.random(shape) > 0.5
    x = np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1) if len(shape) > 1 else x   # strided
    attrs = {"axis": axis, "keepdims": keepdims}
    want = get_op(op).reference([x], attrs)
    ctx = NodeCtx(0, op, attrs, [shape], [np.dtype(dtype)], want.shape, want.dtype, want.shape, [shape])
    call = baseline.baseline_call(ctx)
    assert call.name == f"ref:np-{op}" and call.mode == "out"
    (fn, _), = call.steps
    out = np.full(want.shape, 7, want.dtype)
    fn(x, out)
    np.testing.assert_array_equal(out, want)


def test_reductions_numpy_cannot_match_keep_the_reference():
    from graphc.runtime.kernels import NodeCtx
    for op, dtype, shape in [("reduce_mean", "int32", (4, 3)), ("reduce_mean", "float16", (4, 3)),
                             ("reduce_max", "float32", (0, 3)),
                             ("reduce_sum", "float32", (0, 3))]:
        out_shape = (3,)
        ctx = NodeCtx(0, op, {"axis": (0,), "keepdims": False}, [shape], [np.dtype(dtype)], out_shape,
                      np.dtype(dtype), out_shape, [shape])
        assert baseline.baseline_call(ctx).name == f"ref:{op}"


@pytest.mark.parametrize("program,dtypes,reduce,plain", [
    # the accuracy metric: mean(cast(equal(argmax(y), argmax(p)), float32))
    ((("equal", (0, 1), ()), ("cast", (2,), (("dtype", np.dtype("float32")),))), ("int64", "int64"),
     "reduce_mean", True),
    ((("mul", (0, 1), ()),), ("float64", "float64"), "reduce_sum", True),
    ((("sub", (0, 1), ()),), ("float32", "float32"), "reduce_max", True),
    ((("add", (0, 1), ()),), ("int32", "int32"), "reduce_mean", False),      # TensorFlow's integer mean
    ((("add", (0, 1), ()),), ("float16", "float16"), "reduce_mean", False)])  # numpy divides in float16
def test_fused_reductions_reduce_with_numpy_where_it_has_the_reference_bits(program, dtypes, reduce, plain,
                                                                             rng):
    from graphc.runtime.kernels import NodeCtx
    shape = (32, 10)
    ins = [(rng.standard_normal(shape) * 3).astype(d) if np.dtype(d).kind == "f"
           else rng.integers(0, 4, shape).astype(d) for d in dtypes]
    ins[1] = ins[1].T.copy().T                      # a strided operand
    attrs = {"program": program, "reduce": reduce, "r_attrs": (("axis", (0,)), ("keepdims", False))}
    want = get_op("fused_reduction").reference(ins, attrs)
    ctx = NodeCtx(0, "fused_reduction", attrs, [shape] * 2, [np.dtype(d) for d in dtypes], want.shape,
                  want.dtype, want.shape, [shape] * 2)
    call = baseline.baseline_call(ctx)
    (fn, _), = call.steps
    assert (fn.__name__ == f"fused_{reduce}_into") == plain
    out = np.full(want.shape, 7, want.dtype)
    fn(*ins, out, *[np.full(s, 9, d) for d, s in call.scratch])
    assert out.dtype == want.dtype and out.tobytes() == want.tobytes()
