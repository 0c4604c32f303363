"""Every runtime kernel against the reference interpreter: odd shapes, broadcasting, dtypes.

Graphs are built so that many kernels are checked per compile (numba compiles are slow);
the kernel cache folder of the test session keeps later runs warm.
"""
import math

import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.runtime import codegen
from graphc.interpreter import evaluate
from graphc.ops.registry import OPS, apply
from kernel_checks import RNG, data, run_both

_POSITIVE = {"log", "sqrt", "rsqrt", "log1p", "reciprocal", "pow"}
_SKIP = {"identity", "stop_gradient", "cast", "fused_elementwise", "logical_not", "logical_and",
         "logical_or", "where", "sigmoid_cross_entropy_with_logits", "broadcast_like"}


def _ew_ops(arity):
    out = []
    for name, od in sorted(OPS.items()):
        if od.fusion != "elementwise" or name in _SKIP or od.scalar in (None, "<program>"):
            continue
        n = 2 if "{1}" in od.scalar else 1
        if n == arity:
            out.append(name)
    return out


def _attrs(name):
    return {"leaky_relu": {"alpha": 0.3}, "elu": {"alpha": 1.0}, "gelu": {"approximate": False}}.get(name, {})


def test_every_unary_float_op_size1_and_odd_sizes():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 1, 13), name="x")   # size-1 axis, 13 not a vector multiple
        fetches = []
        for op in _ew_ops(1):
            inp = gc.abs(x) + 0.5 if op in _POSITIVE else x
            fetches.append(apply(op, [inp], _attrs(op)))
        fetches.append(apply("gelu", [x], {"approximate": True}))
    exe, _, _ = run_both(fetches, {x: data((3, 1, 13))})
    assert not [s for s in exe.plan.kernel_calls if s.call.name.startswith("ref:")]


def test_every_binary_op_with_broadcasting_float32():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float32", (None, 1, 5), name="a")
        b = gc.placeholder("float32", (4, 1), name="b")
        fetches = []
        for op in _ew_ops(2):
            if op in _POSITIVE:
                fetches.append(apply(op, [gc.abs(a) + 0.5, b]))
            elif op in ("floordiv", "mod", "div"):
                fetches.append(apply(op, [a, gc.abs(b) + 0.5]))
            else:
                fetches.append(apply(op, [a, b]))
        fetches.append(gc.where(a > b, a, b))
        fetches.append(gc.nn.sigmoid_cross_entropy_with_logits(labels=gc.sigmoid(b), logits=a))
    run_both(fetches, {a: data((3, 1, 5)), b: data((4, 1))})


def test_broadcast_like_fuses_into_its_consumers():
    # broadcast_like is elementwise (input 1 lends its shape only): a layer norm's backward pattern
    # runs as one fused kernel, with no materialised broadcast and no reference op; alone, it is a
    # kernel too, also for a `like` of another dtype
    from graphc.passes import optimize
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 5, 7), name="x")
        m = gc.placeholder("int32", (None, 5, 7), name="m")
        s = gc.reduce_sum(x, axis=-1, keepdims=True)
        y = gc.broadcast_like(s, x) * x + 1.0
        alone = gc.broadcast_like(gc.reduce_max(x, axis=[1, 2], keepdims=True), m)
    g2, rep = optimize(g, [y.node, alone.node], feeds=[x.node, m.node])
    assert [g2.op(n) for n in g2.topo_order()].count("broadcast_like") == 1     # `alone` only
    fv = {x.node: data((4, 5, 7)), m.node: data((4, 5, 7), "int32")}
    exe = runtime.compile(g2, rep.fetches, [x.node, m.node])
    out, _ = exe.run(fv, {}, 0)
    ref = evaluate(g, [y.node, alone.node], fv, {})
    for a, b in zip(out, ref.values):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not [s for s in exe.plan.kernel_calls if s.call.name.startswith("ref:")]


@pytest.mark.parametrize("dtype", ["int32", "int64", "float64"])
def test_arithmetic_other_dtypes(dtype):
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder(dtype, (None, 6), name="a")
        b = gc.placeholder(dtype, (6,), name="b")
        ops_ = ["add", "sub", "mul", "maximum", "minimum", "squared_difference", "floordiv", "mod",
                "less", "greater_equal", "equal"]
        fetches = [apply(op, [a, b]) for op in ops_]
        fetches += [gc.abs(a), gc.negative(a), gc.square(a), gc.sign(a), gc.cast(a, "float32"),
                    gc.cast(gc.cast(a, "float32") * 1.5, dtype), gc.relu(a)]
    bv = data((6,), dtype)
    bv[bv == 0] = 3
    run_both(fetches, {a: data((5, 6), dtype), b: bv})


def test_int32_wraps_like_numpy_and_bool_logic():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("int32", (None,), name="a")
        p = gc.placeholder("bool", (None,), name="p")
        q = gc.placeholder("bool", (None,), name="q")
        fetches = [a * a * a, gc.logical_and(p, q), gc.logical_or(p, gc.logical_not(q)),
                   gc.where(p, a, -a), gc.cast(p, "float32"), gc.cast(gc.cast(a, "float32"), "bool"),
                   gc.equal(p, q)]
    run_both(fetches, {a: np.array([2 ** 20, -3, 7, 0], np.int32), p: data((4,), "bool"),
                       q: data((4,), "bool")})


@pytest.mark.parametrize("sa,sb", [((1, 1, 1), (2, 3, 4)), ((2, 1, 4), (1, 3, 1)), ((2, 3, 1), (4,)),
                                   ((), (2, 3, 4)), ((1,), (1, 1))])
def test_broadcasting_on_every_axis(sa, sb):
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float32", sa, name="a")
        b = gc.placeholder("float32", sb, name="b")
        y = a * b + a
    run_both([y], {a: data(sa), b: data(sb)})


def test_non_contiguous_and_readonly_feeds():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float32", (None, 5), name="a")
        y = gc.exp(a) * 2.0
        z = gc.matmul(a, a, transpose_b=True)
    base = data((10, 10))
    nc = base[::2, 1:6]
    ro = data((5, 5))
    ro.flags.writeable = False
    for feed in (nc, ro, np.asfortranarray(data((5, 5)))):
        run_both([y, z], {a: feed})


def test_fused_programs_against_reference():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3, 4), name="x")
        c = gc.constant(np.float32(0.5))
        bias = gc.constant(data((4,)))
        fe = apply("fused_elementwise", [x, c, bias],
                   {"program": (("mul", (0, 1), ()), ("add", (3, 2), ()), ("tanh", (4,), ()),
                                ("greater", (5, 1), ()), ("where", (6, 5, 1), ()),
                                ("cast", (7,), (("dtype", np.dtype("float64")),)))})
        fr = apply("fused_reduction", [x, bias],
                   {"program": (("sub", (0, 1), ()), ("square", (2,), ())), "reduce": "reduce_sum",
                    "r_attrs": (("axis", (0, 2)), ("keepdims", True))})
        fr2 = apply("fused_reduction", [x],
                    {"program": (("exp", (0,), ()),), "reduce": "reduce_max",
                     "r_attrs": (("axis", (1,)), ("keepdims", False))})
    run_both([fe, fr, fr2], {x: data((2, 3, 4))})


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_and_fused_contraction(ta, tb):
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float32", (None, 3) if not ta else (3, None), name="a")
        w = gc.constant(data((3, 5) if not tb else (5, 3)))
        b = gc.constant(data((5,)))
        y = gc.matmul(a, w, transpose_a=ta, transpose_b=tb)
        fc = apply("fused_contraction", [a, w, b],
                   {"contraction": "matmul", "n_c": 2,
                    "c_attrs": (("transpose_a", ta), ("transpose_b", tb)),
                    "program": (("add", (0, 1), ()), ("relu", (2,), ()))})
    run_both([y, fc], {a: data((1, 3) if not ta else (3, 1))})


def test_in_place_epilogue_reads_its_input_through_out():
    # the GEMM writes the output buffer and the epilogue updates it in place: the generated loop
    # must read that operand as `out` (one name, so LLVM vectorizes it) and still match the reference
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float32", (None, 24), name="a")
        r = gc.placeholder("float32", (None, 37), name="r")
        fc = apply("fused_contraction", [a, gc.constant(data((24, 37))), gc.constant(data((37,))), r],
                   {"contraction": "matmul", "n_c": 2,
                    "c_attrs": (("transpose_a", False), ("transpose_b", False)),
                    "program": (("add", (0, 1), ()), ("mul", (3, 2), ()), ("relu", (4,), ()))})
    exe, _, _ = run_both([fc], {a: data((13, 24)), r: data((13, 37))})
    (step,) = exe.plan.kernel_calls
    fn, descs = step.call.steps[-1]
    assert descs[0] == descs[-1] and descs[1:-1] != [descs[-1]] * (len(descs) - 2)
    import inspect
    src = inspect.getsource(fn.py_func)
    assert "x0 = out[" in src and "a0[" not in src and "x2 = a2[" in src, src
    plain = codegen.ew_source((("add", (0, 1), ()),), ["float32"] * 2, "float32", ((False,), (False,)),
                              False)
    assert "x0 = a0[i0]" in plain and "x1 = a1[i0]" in plain      # no alias: each input by its name


def test_batched_and_integer_matmul():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float64", (None, 2, 3, 4), name="a")
        b = gc.placeholder("float64", (1, 4, 2), name="b")
        i = gc.placeholder("int32", (3, 3), name="i")
        y = gc.matmul(a, b)
        yi = gc.matmul(i, i)
    run_both([y, yi], {a: data((2, 2, 3, 4), "float64"), b: data((1, 4, 2), "float64"),
                       i: data((3, 3), "int32")})


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_leading_and_trailing_axis_sums_and_means(dtype):
    # sums and means over the leading axes (bias gradients), the trailing axes (layer norm), a
    # block of middle axes (a mean over tokens) or all axes (a loss) run numba kernels, also after a
    # fused prologue and for a few rows; axes that are not one block stay with numpy
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, 9, 7, 5), name="x")
        fetches = [gc.reduce_sum(x, axis=[0, 1, 2]), gc.reduce_mean(x, axis=[0, 1], keepdims=True),
                   gc.reduce_sum(x, axis=0), gc.reduce_sum(gc.relu(x) * 2.0, axis=[0, 1, 2]),
                   gc.reduce_mean(gc.transpose(x, (1, 0, 2, 3)), axis=[0, 1]),
                   gc.reduce_sum(x, axis=[2, 3]), gc.reduce_mean(x, axis=3, keepdims=True),
                   gc.reduce_sum(gc.exp(x) - 1.0, axis=[1, 2, 3]),
                   gc.reduce_sum(x, axis=[1, 2]), gc.reduce_sum(x[:, :1], axis=[0, 1, 2]),
                   gc.reduce_sum(x[:1, :1], axis=3), gc.reduce_mean(x[:, 0, 0, 0]), gc.reduce_sum(x, keepdims=True),
                   gc.reduce_mean(x, axis=2, keepdims=True), gc.reduce_sum(x, axis=[0, 2])]
    # float32: the reference sums in float32 (error ~ eps * 693 * 2), the kernel in float64
    exe, _, _ = run_both(fetches, {x: data((11, 9, 7, 5), dtype)}, rtol=1e-5,
                         atol=3e-4 if dtype == "float32" else 1e-12)
    kinds = [st.call.steps[-1][0].__name__ for st in exe.plan.kernel_calls
             if st.op in ("reduce_sum", "reduce_mean", "fused_reduction")]
    assert kinds == ["sum_rows"] * 5 + ["sum_each_row"] * 3 + ["sum_mid", "sum_rows"] + ["sum_each_row"] * 3 + \
        ["sum_mid", "reduce_sum_into"]


def test_argmax_argmin_over_the_last_axis():
    # the numba kernel: first maximum/minimum on ties, the first NaN wins, ints, int32 output,
    # one row or one column; another axis keeps the reference
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3, 6), name="x")
        i = gc.placeholder("int64", (None, 5), name="i")
        fetches = [gc.argmax(x, axis=2), gc.argmin(x, axis=-1, output_type="int32"), gc.argmax(i, axis=1),
                   gc.argmin(i, axis=1), gc.argmax(x[:, :, :1], axis=2), gc.argmax(x, axis=1)]
    xv = data((4, 3, 6))
    xv[0, 0] = [1, 3, 3, 0, 0, 2]                    # ties: the first
    xv[0, 1, 4] = xv[1, 2, 0] = np.nan               # a NaN: its index
    xv[2, 0, 2] = xv[2, 0, 5] = np.nan               # two NaNs: the first
    exe, out, _ = run_both(fetches, {x: xv, i: data((4, 5), "int64")})
    assert out[0][0, :2].tolist() == [1, 4] and out[1][0, :2].tolist() == [3, 4] and out[0][2, 0] == 2
    names = [st.call.name for st in exe.plan.kernel_calls if st.op in ("argmax", "argmin")]
    assert names == ["argmax", "argmin", "argmax", "argmin", "argmax", "ref:argmax"]


def test_reductions_softmax_crossentropy():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 1, 7), name="x")
        i = gc.placeholder("int32", (None, 1, 7), name="i")
        lab = gc.placeholder("int64", (None, 1), name="lab")
        x2 = gc.reshape(x, (-1, 7))
        fetches = [gc.reduce_sum(x, axis=[0, 2]), gc.reduce_mean(x, axis=2, keepdims=True),
                   gc.reduce_max(x, axis=0), gc.reduce_min(x), gc.reduce_prod(x, axis=1),
                   gc.reduce_any(x > 0, axis=2), gc.reduce_all(x > -1), gc.reduce_sum(i, axis=2),
                   gc.reduce_mean(i, axis=2), gc.argmax(x, axis=2),
                   gc.nn.softmax(x), gc.nn.log_softmax(x), gc.nn.softmax(x, axis=0),
                   gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=x),
                   gc.nn.softmax_cross_entropy_with_logits(labels=gc.nn.softmax(x2), logits=x2)]
    run_both(fetches, {x: data((4, 1, 7)), i: data((4, 1, 7), "int32"),
                       lab: np.array([[0], [6], [3], [1]], np.int64)})


def test_sparse_crossentropy_bad_label_raises_reference_error():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        lab = gc.placeholder("int32", (None,), name="lab")
        y = gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=x)
    exe = runtime.compile(g, [y.node], [x.node, lab.node])
    with pytest.raises(ValueError, match="out of"):
        exe.run({x.node: data((2, 3)), lab.node: np.array([0, 3], np.int32)}, {}, 0)


def test_array_kernels():
    ALL = ("s", None, None, None)       # the key item of ':'
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3, 2), name="x")
        idx = gc.placeholder("int32", (None,), name="idx")
        gi = gc.placeholder("int64", (2, None), name="gi")
        fetches = [gc.transpose(x, (2, 0, 1)), gc.concat([x, x * 2.0], axis=1),
                   gc.gather(x, gi, axis=1), gc.gather(x, idx * 0 + 1), gc.one_hot(idx, 4), gc.one_hot(idx, 3, axis=0),
                   gc.pad(x, [[1, 0], [0, 2], [1, 1]], constant_values=7.0), x[:, 1:, ::-1],
                   gc.reshape(x, (-1,)), gc.expand_dims(x, 0),
                   apply("strided_slice_grad_n", [x[:, 0], x[:, :2, ::-1] * 2.0, x[:, 1], x],    # overlaps
                         {"keys": ((ALL, 2), (ALL, ("s", 1, None, None)), (ALL, 0))}),
                   gc.stack([x[:, 0], x[:, 2] * 3.0, x[:, 1]], axis=0),          # strided pieces
                   gc.stack([x[:, :, 1], x[:, :, 0]], axis=2)]
    exe, _, _ = run_both(fetches, {x: data((2, 3, 2)), idx: np.array([2, 0, 1, 1, 5], np.int32),
                                   gi: np.array([[0, 2, -1], [1, 1, 0]], np.int64)})
    assert {"strided_slice_grad_n", "stack"} <= {st.call.name for st in exe.plan.kernel_calls}


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32"])
@pytest.mark.parametrize("shape,perm", [((37, 53), (1, 0)), ((8, 16), (1, 0)), ((1, 5), (1, 0)),
                                        ((0, 3), (1, 0)), ((3, 9, 17), (0, 2, 1)),
                                        ((2, 2, 8, 11), (0, 1, 3, 2)), ((4, 3, 2), (2, 1, 0)),
                                        ((3, 5, 4, 6), (0, 2, 1, 3)), ((5, 3, 7), (1, 0, 2)),
                                        ((2, 3, 4, 5), (2, 0, 1, 3)), ((2, 3, 4, 5, 2), (0, 2, 1, 3, 4))])
def test_transpose_kernels(monkeypatch, dtype, shape, perm):
    # matrices and batches of matrices take the tiled kernel (tile edges at 37 and 53, none at
    # 8 and 16); permutations of rank 3-4 that keep the last axis copy whole rows; any other
    # permutation keeps numpy's copy (as do small transposes, unless the threshold is lowered)
    from graphc.runtime import kernels_array
    assert math.prod(shape) < kernels_array.MIN_KERNEL_TRANSPOSE
    monkeypatch.setattr(kernels_array, "MIN_KERNEL_TRANSPOSE", 0)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None,) + shape[1:], name="x")
        fetches = [gc.transpose(x, perm), gc.transpose(x[::-1], perm)]   # the second: a strided input
    exe, out, _ = run_both(fetches, {x: data(shape, dtype)})
    tiled = perm[-2:] == (len(perm) - 1, len(perm) - 2) and perm[:-2] == tuple(range(len(perm) - 2))
    rows = 3 <= len(perm) <= 4 and perm[-1] == len(perm) - 1
    names = {getattr(f, "__name__", "") for st in exe.plan.kernel_calls for f, _ in st.call.steps}
    assert ("transpose_last2" in names) == tiled and ("transpose_rows" in names) == rows, names


def test_small_transposes_keep_numpys_copy():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 64, 256), name="x")
        fetches = [gc.transpose(x, (0, 2, 1)), gc.transpose(x, (1, 0, 2))]
    exe, _, _ = run_both(fetches, {x: data((1, 64, 256))})      # 16k elements: numpy
    names = {getattr(f, "__name__", "") for st in exe.plan.kernel_calls for f, _ in st.call.steps}
    assert names == {"transpose_into"}, names
    exe, _, _ = run_both(fetches, {x: data((2, 64, 256))})      # 32k elements: the kernels
    names = {getattr(f, "__name__", "") for st in exe.plan.kernel_calls for f, _ in st.call.steps}
    assert names == {"transpose_last2", "transpose_rows"}, names


@pytest.mark.parametrize("dtype", ["float32", "int32"])
def test_slice_gradients_of_column_blocks_run_one_kernel(dtype):
    # [:, a:b] blocks tiling a matrix (an LSTM step's [dh | dc], here out of order, of uneven widths
    # and with a strided piece) are copied by one numba call; anything else keeps the numpy path
    ALL = ("s", None, None, None)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, 9), name="x")
        p0, p1, p2 = x[:, 5:] * 2, x[:, :2] + 1, gc.transpose(gc.transpose(x[:, 2:5]) * 3)
        cols = apply("strided_slice_grad_n", [p0, p1, p2, x],
                     {"keys": ((ALL, ("s", 5, None, None)), (ALL, ("s", None, 2, None)), (ALL, ("s", 2, 5, None)))})
        rows = apply("strided_slice_grad_n", [x[:1], x[1:], x],
                     {"keys": ((("s", None, 1, None),), (("s", 1, None, None),))})
    exe, _, _ = run_both([cols, rows], {x: data((4, 9), dtype)})
    names = [f.__name__ for st in exe.plan.kernel_calls if st.op == "strided_slice_grad_n"
             for f, _ in st.call.steps]
    assert names == ["copy_column_blocks", "slice_grads_into"], names


def test_slice_gradients_of_single_elements_and_repeated_runs():
    # all-integer keys (0-d pieces), tiling and overlapping, run twice on the same planned buffer
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2, 2), name="x")
        e = [x[i, j] * float(1 + i + 2 * j) for i in range(2) for j in range(2)]
        tiling = apply("strided_slice_grad_n", e + [x], {"keys": ((0, 0), (0, 1), (1, 0), (1, 1))})
        overlapping = apply("strided_slice_grad_n", [e[0], e[3], x[1] * 3.0, x],
                            {"keys": ((0, 0), (1, 1), (1,))})
        fetches = [tiling, overlapping * 1.0]
    exe, _, _ = run_both(fetches, {x: data((2, 2))})
    xv = data((2, 2))           # the same Executable again: the cached views see the new values
    got, _ = exe.run({x.node: xv}, {}, 0)
    want = evaluate(g, [f.node for f in fetches], {x.node: xv}, {}).values
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_slices_tiling_slice_gradients_and_strided_matmul_inputs(configure):
    # slicing is a view with its key prebuilt (all-int keys give 0-d arrays); slice gradients that
    # tile their buffer are plain copies; matmul takes row-strided slices without a copy (read from
    # the Python driver's lines: no jitted segments)
    configure(driver="python")
    ALL = ("s", None, None, None)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4, 6), name="x")
        w = gc.constant(data((3, 5)))
        a = x[:, 1, 3:]                                   # (n, 3): row stride 6
        fetches = [x[0, 2, 5], x[:, 1:, ::2], gc.matmul(a, w), gc.matmul(a, a, transpose_a=True),
                   apply("strided_slice_grad_n", [x[:, :, :2] * 2.0, x[:, :, 2:], x],   # tiles x
                         {"keys": ((ALL, ALL, ("s", None, 2, None)), (ALL, ALL, ("s", 2, None, None)))}),
                   apply("strided_slice_grad_n", [x[:, t] for t in range(4)] + [x],
                         {"keys": tuple((ALL, t) for t in range(4))})]
    exe, out, _ = run_both(fetches, {x: data((3, 4, 6))})
    assert out[0].shape == () and type(out[0]) is np.ndarray
    b = exe._last
    mm_lines = [ln for ln in b.source.splitlines() if "(" in ln and getattr(
        b.globals.get(ln.split("(")[0].split()[-1]), "__name__", "").startswith(("_mm", "gemm_into"))]
    assert len(mm_lines) == 2 and not any("_c0(" in ln for ln in mm_lines)
    assert {st.call.name for st in exe.plan.kernel_calls} >= {"strided_slice", "strided_slice_grad_n"}
    xv = data((3, 4, 6))                                          # one element is a copy, as in
    one = runtime.compile(g, [fetches[0].node], [x.node]).run({x.node: xv}, {}, 0)[0][0]
    xv[0, 2, 5] += 1.0                                            # the reference
    assert one != xv[0, 2, 5]
    many = apply("strided_slice_grad_n", [x * float(i) for i in range(257)] + [x],   # 257 writes per
                 {"keys": ((("s", None, None, None),),) * 257})      # element: counted in int64
    run_both([many], {x: data((3, 4, 6))}, rtol=1e-5)
    exe2 = runtime.compile(g, [x[:, 3].node], [x.node])         # a bad run-time index: the
    with pytest.raises(gc.ShapeError, match="strided_slice"):   # reference's error
        exe2.run({x.node: data((2, 2, 6))}, {}, 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_cell_kernels(dtype):
    # the fused LSTM cell and its gradient, with and without a cell state, against the references
    g = gc.Graph()
    with g.as_default():
        z = gc.placeholder(dtype, (None, 4 * 19), name="z")       # 19 units: a vector remainder
        c = gc.placeholder(dtype, (None, 19), name="c")
        d = gc.placeholder(dtype, (None, 38), name="d")
        hc, h1 = gc.nn.lstm_cell(z, c), gc.nn.lstm_cell(z)
        fetches = [hc, h1, apply("lstm_cell_grad", [z, c, hc, d], {}),
                   apply("lstm_cell_grad", [z, h1, d], {})]
    zv = data((5, 76), dtype) * 4.0                   # saturating gates too
    dv = data((5, 38), dtype)
    dv[2, 21] = np.inf                                # a non-finite gradient propagates as the reference's
    with np.errstate(all="ignore"):
        exe, _, _ = run_both(fetches, {z: zv, c: data((5, 19), dtype), d: dv}, rtol=2e-5, atol=2e-6)
    assert [st.call.name for st in exe.plan.kernel_calls] == ["lstm_cell", "lstm_cell", "lstm_cell_grad",
                                                             "lstm_cell_grad"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_lstm_cell_kernels_with_saved_gates_and_split_gradient(dtype):
    # lstm_cell(gates=True) stores [h | c | i f g o]; lstm_cell_grad reads those gates, and with
    # split_d takes dh and dc apart (dc a strided column block): the same bits as recomputing them
    g = gc.Graph()
    with g.as_default():
        z = gc.placeholder(dtype, (None, 4 * 19), name="z")
        c = gc.placeholder(dtype, (None, 19), name="c")
        d = gc.placeholder(dtype, (None, 38), name="d")
        e = gc.placeholder(dtype, (None, 60), name="e")
        dd = gc.placeholder(dtype, (None, 38), name="dd")
        bias = gc.placeholder(dtype, (4 * 19,), name="bias")
        hc, hcg = gc.nn.lstm_cell(z, c), apply("lstm_cell", [z, c], {"gates": True})
        h1g = apply("lstm_cell", [z], {"gates": True})
        dc = e[:, 41:]                                                     # strided: 19 of 60 columns
        fetches = [hcg, h1g, apply("lstm_cell_grad", [z, c, hc, d], {}),
                   apply("lstm_cell_grad", [z, c, hcg, d], {}),
                   apply("lstm_cell_grad", [z, c, hcg, d[:, :19], dc], {"split_d": True}),
                   apply("lstm_cell_grad", [z, h1g, d[:, :19], dc], {"split_d": True}),
                   apply("lstm_cell_grad", [z, c, hc, d[:, :19], dc], {"split_d": True}),
                   apply("lstm_cell_grad", [z, c, hc, dd], {}),
                   apply("lstm_cell", [z * 0.25, c, z * 0.75], {"z_sum": True, "gates": True}),
                   apply("lstm_cell", [z * 0.25, z * 0.75], {"z_sum": True}),
                   gc.nn.lstm_cell(z * 0.25 + z * 0.75, c),
                   apply("lstm_cell", [z * 0.25, c, z * 0.75, bias], {"z_sum": True, "z_bias": True}),
                   gc.nn.lstm_cell((z * 0.25 + bias) + z * 0.75, c),
                   apply("lstm_cell", [z * 0.25, bias], {"z_bias": True, "gates": True}),
                   apply("lstm_cell", [z * 0.25 + bias], {"gates": True})]
    feeds = {z: data((5, 76), dtype) * 4.0, c: data((5, 19), dtype), d: data((5, 38), dtype),
             e: data((5, 60), dtype), bias: data((76,), dtype)}
    feeds[dd] = np.concatenate([feeds[d][:, :19], feeds[e][:, 41:]], axis=1)
    exe, got, _ = run_both(fetches, feeds, rtol=2e-5, atol=2e-6)
    assert got[0].shape == (5, 6 * 19) and got[1].shape == (5, 6 * 19)
    np.testing.assert_array_equal(got[2], got[3])         # saved gates: bit-identical gradient
    np.testing.assert_array_equal(got[4], got[7])         # dh, dc apart: the same as [dh | dc]
    np.testing.assert_array_equal(got[6], got[7])
    np.testing.assert_array_equal(got[8][:, :38], got[10])     # the cell adds z + w as the add op does
    np.testing.assert_array_equal(got[11], got[12])            # and (z + b) + w as the add ops do
    np.testing.assert_array_equal(got[13], got[14])
    assert "lstm_cell_grad" in [st.call.name for st in exe.plan.kernel_calls]


def test_random_ops_match_reference():
    g = gc.Graph()
    with g.as_default():
        r1 = gc.random_uniform((3, 4), seed=3)
        r2 = gc.random_normal((5,), seed=4) * 2.0
    run_both([r1, r2], {}, run_key=11)


# -- vectorizable float32 transcendentals (issue #4) and multi-output kernels (issue #5) ---------------
_SPECIAL = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1e-40, 1.1754942e-38, 3e-38,
                     1e-30, 0.0003, -0.0004, 0.5, 0.625, -0.625, 1.0, 7.9, 9.1, -20.0, 44.0, 87.0,
                     88.72, 88.73, 89.5, -87.3, -87.4, -100.0, -103.9, -104.5, -200.0, 1e30, 3.4e38,
                     -3.4e38, 2.0, 0.6931472, 1e-7], np.float32)


def test_fast_float32_math_matches_numpy_on_special_values_and_sweeps():
    from runtime import codegen
    rng = np.random.default_rng(3)
    sweep = np.concatenate([_SPECIAL, rng.standard_normal(20000).astype(np.float32) * 30,
                            np.exp(rng.uniform(-87, 88, 20000)).astype(np.float32)])
    xs = np.concatenate([sweep, -sweep])
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None,), name="x")
        ops = ["exp", "log", "tanh", "sigmoid"]
        fetches = [apply(op, [x]) for op in ops]
        fetches.append(apply("gelu", [x], {"approximate": True}))   # math.tanh inside a template
    exe = runtime.compile(g, [f.node for f in fetches], [x.node])
    with np.errstate(all="ignore"):
        got = exe.run({x.node: xs}, {}, 0)[0]
        want = evaluate(g, [f.node for f in fetches], {x.node: xs}).values
    for op, a, b in zip(ops + ["gelu"], got, want):
        assert a.dtype == b.dtype == np.float32
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=op)
        np.testing.assert_array_equal(a[np.isinf(b)], b[np.isinf(b)], err_msg=op)   # overflow, -inf
        np.testing.assert_array_equal(a[b == 0], b[b == 0], err_msg=op)             # underflow
        atol = 1e-6 if op == "gelu" else 1e-37   # gelu's 1 + tanh(.) cancels: absolute accuracy only
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=atol, equal_nan=True, err_msg=op)
    for s in exe.plan.kernel_calls:
        src = s.call.steps[0][0].py_func.__code__.co_filename
        text = open(src).read()
        assert "math.exp(" not in text.split("def kernel")[1] and "math.tanh(" not in text.split("def kernel")[1]
    with gc.config.override(fast_math=False):   # the libm fallback (GRAPHC_FAST_MATH=0): same values
        exe2 = runtime.compile(g, [fetches[2].node], [x.node])
    np.testing.assert_allclose(exe2.run({x.node: xs}, {}, 0)[0][0], want[2], rtol=1e-6, atol=1e-37)


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_family_extremes(fast, dtype):
    # softmax / log_softmax / cross-entropy rows with huge, tiny, -inf and NaN entries and 37 classes
    # (vector width plus a remainder), with the vectorized float32 exp and libm's (GRAPHC_FAST_MATH=0)
    from graphc.runtime import codegen
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dtype, (None, 37), name="x")
        lab = gc.placeholder("int32", (None,), name="lab")
        fetches = [gc.nn.softmax(x), gc.nn.log_softmax(x),
                   gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=x),
                   gc.nn.softmax_cross_entropy_with_logits(labels=gc.nn.softmax(x * 0.5), logits=x)]
    xv = (RNG.standard_normal((6, 37)) * 4).astype(dtype)
    xv[1] *= 1e3                      # exp underflows for all but the max
    xv[2, 5] = -np.inf
    xv[3, :] = 0.0                    # uniform
    xv[4, 7] = np.nan
    xv[5] = np.linspace(-120, 80, 37)
    with gc.config.override(fast_math=fast), np.errstate(all="ignore"):
        run_both(fetches, {x: xv, lab: RNG.integers(0, 37, 6).astype(np.int32)},
                 rtol=2e-6 if dtype == "float32" else 1e-12,        # log_softmax near 0 cancels:
                 atol=5e-7 if dtype == "float32" else 1e-15)         # absolute accuracy there


def test_multi_output_kernel_with_broadcasting_and_views():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (2, 3, 4), name="x")
        b = gc.constant(data((4,)))
        prog = (("mul", (0, 1), ()), ("tanh", (2,), ()), ("add", (3, 1), ()), ("exp", (4,), ()))
        m = apply("fused_multi_output", [x, b], {"program": prog, "outputs": (3, 5, 0)})
        outs = [apply("fused_output", [m], {"index": k}) for k in range(3)]
        z = outs[0] + outs[1]
    exe, got, _ = run_both([m] + outs + [z], {x: data((2, 3, 4))})
    assert m.shape == (3, 2, 3, 4) and outs[2].shape == (2, 3, 4)
    np.testing.assert_array_equal(got[3], got[0][2])
    names = [s.call.name for s in exe.plan.kernel_calls]
    assert names.count("view") == 3 and sum(n.startswith("ew3[") for n in names) == 1
