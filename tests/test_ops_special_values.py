"""Special values through the compiled kernels and the reference interpreter: NaN, +-inf, +-0, the
largest finite values, the smallest normal and subnormal values, in float32 and float64 (and the
integer and bool dtypes an op takes). Every elementwise op of the registry, every reduction, the
softmax family and fused chains; compiled (the default executor: passes, then generated and
hand-written kernels) against the reference interpreter.

Agreement means: NaN at the same positions, the same infinities, finite values within a few ulps
(the float32 fast-math exp/log/tanh are <= 5 ulp), and the same sign on a zero. What differs by
design is listed in docs/ops-contract.md ("Special values") and excluded here where the inputs are
made (``DOMAIN``) or checked on its own (``test_by_design_*``), each with its reason.

The ops are batched: one graph per dtype with one fetch per op, one small kernel each (the
plain single-op kernels the runtime binds); compiled together, ~50 per dtype cost 2-4 s cold and
0.2 s from the disk cache.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc as gc
from graphc import runtime
from graphc.errors import DtypeError
from graphc.interpreter import evaluate
from graphc.ops.registry import OPS, apply
from graphc.passes import optimize

FLOATS = ("float32", "float64")
DTYPES = ("float32", "float64", "int32", "int64", "bool")
RTOL = {"float32": 1e-6, "float64": 1e-14}       # ~8 ulp / ~45 ulp: the fast float32 math is <= 5 ulp


# -- values ----------------------------------------------------------------------------------------
def specials(dt) -> np.ndarray:
    """The special values of ``dt``: each paired with each in the binary ops."""
    dt = np.dtype(dt)
    if dt.kind == "f":
        fi = np.finfo(dt)
        return np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, -7.0,
                         fi.max, -fi.max, fi.tiny, -fi.tiny, fi.smallest_subnormal,
                         -fi.smallest_subnormal, 100.0, -104.5, 1e20], dt)
    if dt.kind == "i":
        ii = np.iinfo(dt)
        return np.array([0, 1, -1, 2, -3, 7, 100, ii.max, ii.min, ii.max - 1, ii.min + 1], dt)
    return np.array([True, False])


def sweep(dt) -> np.ndarray:
    """The specials plus every power of ten of the dtype's range (both signs) and the edges where
    exp overflows or underflows to a subnormal or to zero: what the unary ops see."""
    dt = np.dtype(dt)
    if dt.kind != "f":
        return specials(dt)
    fi = np.finfo(dt)
    lo, hi = int(np.floor(np.log10(fi.smallest_subnormal))), int(np.floor(np.log10(fi.max)))
    mags = [10.0 ** k for k in range(lo, hi + 1)]
    edges = ([88.72283, 88.7229, -87.33654, -87.3366, -103.97207, -103.9721, 0.7, 2.5e-4, 7.9, 8.0]
             if dt == np.float32 else [709.782712893384, 709.7827128933841, -708.3964185322641,
                                       -745.1332191019411, -745.1332191019412, 0.7, 2.5e-4])
    with np.errstate(over="ignore"):
        more = np.array(mags + edges, np.float64).astype(dt)
    return np.concatenate([specials(dt), more, -more, [fi.max / 4, fi.tiny * 3]]).astype(dt)


def pairs(dt):
    v = specials(dt)
    return np.repeat(v, len(v)), np.tile(v, len(v))


# -- comparing -------------------------------------------------------------------------------------
def mismatches(compiled: np.ndarray, ref: np.ndarray, signed_zeros: bool = True,
               rtol: float | None = None, atol: float = 0.0) -> np.ndarray:
    """Mask of the elements where ``compiled`` and ``ref`` disagree (see the module docstring)."""
    assert compiled.dtype == ref.dtype and compiled.shape == ref.shape, \
        (compiled.dtype, ref.dtype, compiled.shape, ref.shape)
    if compiled.dtype.kind != "f":
        return compiled != ref
    a, b = compiled.astype(np.float64), ref.astype(np.float64)
    bad = np.isnan(a) != np.isnan(b)
    inf = np.isinf(a) | np.isinf(b)
    bad |= inf & (a != b)
    fin = np.isfinite(a) & np.isfinite(b)
    tiny = float(np.finfo(compiled.dtype).smallest_subnormal)
    with np.errstate(invalid="ignore", over="ignore"):
        rtol = RTOL[compiled.dtype.name] if rtol is None else rtol
        bad |= fin & ~(np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b)) + tiny + atol)
    if signed_zeros:
        bad |= fin & (a == 0) & (b == 0) & (np.signbit(a) != np.signbit(b))
    return bad


def assert_agree(what: str, compiled, ref, inputs=(), signed_zeros: bool = True, rtol=None, atol=0.0):
    bad = mismatches(np.asarray(compiled), np.asarray(ref), signed_zeros, rtol, atol)
    if bad.any():
        idx = np.flatnonzero(bad)[:8]
        shown = [tuple(np.asarray(v).ravel()[i] for v in inputs) for i in idx]
        raise AssertionError(f"{what}: {bad.sum()} of {bad.size} elements differ; inputs {shown}, "
                             f"compiled {np.asarray(compiled).ravel()[idx]}, "
                             f"reference {np.asarray(ref).ravel()[idx]}")


def run_both(fetches: list, feeds: dict, allow_reference=(), expect_ops=()):
    """Compiled (optimized graph, default config) and reference values of ``fetches``; asserts no
    fetched op ran its numpy reference in the compiled plan except the ops in ``allow_reference``
    (cases their kernels leave to the reference), and that the optimized graph has ``expect_ops``."""
    g = fetches[0].graph
    nodes = [t.node for t in fetches]
    fv = {k.node: v for k, v in feeds.items()}
    g2, rep = optimize(g, nodes, feeds=list(fv))
    missing = set(expect_ops) - {g2.op(n) for n in g2.nodes()}
    assert not missing, f"the optimized graph has no {missing}"
    exe = runtime.compile(g2, rep.fetches, list(fv))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        out, _ = exe.run(fv, {}, 0)
        ref = evaluate(g, nodes, fv, {}).values
    refs = [s.op for s in exe.plan.kernel_calls if s.call.name.startswith("ref:")]
    assert set(refs) <= set(allow_reference), f"ran the numpy reference in the compiled plan: {refs}"
    return out, ref


# -- every elementwise op of the registry ------------------------------------------------------------
ATTRS = {"leaky_relu": [{"alpha": 0.2}], "elu": [{"alpha": 1.0}, {"alpha": 0.5}],
         "gelu": [{"approximate": False}, {"approximate": True}],
         "cast": [{"dtype": np.dtype(d)} for d in DTYPES]}


def _in_range_int(x, dt):
    ii = np.iinfo(dt)
    with np.errstate(invalid="ignore"):
        return np.isfinite(x) & (x > ii.min) & (x < ii.max)


# Input restrictions, each by design (docs/ops-contract.md, "Special values"): (op, dtype kind or
# None for all) -> mask over the op's inputs of the elements compared.
DOMAIN = {
    # numpy and TensorFlow raise on a negative integer exponent; a generated loop has no error path
    ("pow", "i"): lambda v, a: v[1] >= 0,
    # labels are probabilities (or NaN): with a label of 1.5 and logits of float32's max the
    # reference's x * z overflows, while float32 kernels with the fast exp are compiled with FMA
    # contraction (max(x, 0) - x * z rounds once) and stay finite
    ("sigmoid_cross_entropy_with_logits", "f"): lambda v, a: ~(np.abs(v[0] - 0.5) > 0.5),
    # NaN, +-inf or an out-of-range float cast to an integer is undefined (numpy warns and gives
    # the platform's value; LLVM's fptosi gives poison); TensorFlow leaves it undefined too
    ("cast", "f"): lambda v, a: _in_range_int(v[0], a["dtype"]) if a["dtype"].kind in "iu"
    else np.ones(v[0].shape, bool),
}


# Looser float32 tolerances, each by design: the tanh form of gelu computes 1 + tanh(u), which
# cancels for x < -2 (x = -2.5: 1 + tanh(u) = 0.012): one ulp of tanh, in the reference's np.tanh
# or in the kernel's, is ~5e-6 of the result there
RTOL_F32 = {("gelu", True): 3e-5}


def _build(op: str, attrs: dict, dt: str, g: gc.Graph):
    """The op over placeholders of ``dt`` (arity found from its shape rule), with its inputs'
    values; None where the op does not take ``dt``."""
    cond = np.arange(len(specials(dt)) ** 2) % 3 == 0
    candidates = [[sweep(dt)], list(pairs(dt)), [cond] + list(pairs(dt))]
    for values in candidates:
        with g.as_default():
            phs = [gc.placeholder(v.dtype, (None,)) for v in values]
        try:
            t = apply(op, phs, attrs)
        except DtypeError:
            return None
        except (ValueError, IndexError, TypeError):
            continue            # another arity
        keep = DOMAIN.get((op, np.dtype(dt).kind), lambda v, a: np.ones(v[0].shape, bool))(values, attrs)
        return t, dict(zip(phs, [v[keep] for v in values]))
    raise AssertionError(f"cannot build elementwise op {op} with 1, 2 or 3 inputs of {dt}")


def _transcendental(od) -> bool:
    """The op's template calls a function the float32 fast math replaces (exp, log, tanh)."""
    return od.scalar_f32 is not None or any(f"math.{f}(" in od.scalar for f in ("exp", "log", "tanh"))


def elementwise_cases(dt: str, g: gc.Graph, only_fast_math: bool = False) -> list:
    """(label, tensor, feeds) for every elementwise op of the registry that takes ``dt`` (only
    those that fast math changes, with ``only_fast_math``)."""
    cases = []
    for op, od in sorted(OPS.items()):
        if od.fusion != "elementwise" or od.scalar == "<program>":
            continue
        if only_fast_math and not _transcendental(od):
            continue
        for attrs in ATTRS.get(op, [{}]):
            built = _build(op, attrs, dt, g)
            if built is not None:
                cases.append((f"{op}{attrs or ''}", built[0], built[1]))
    return cases


def test_every_elementwise_op_is_covered_by_some_dtype():
    ops = {op for op, od in OPS.items() if od.fusion == "elementwise" and od.scalar != "<program>"}
    covered = set()
    for dt in DTYPES:
        covered |= {t.op.type for _, t, _ in elementwise_cases(dt, gc.Graph())}
    assert ops - covered == set(), f"elementwise ops not run on special values: {ops - covered}"


# fast math changes float32 kernels only: float32 also runs with libm's exp/log/tanh
@pytest.mark.parametrize("dt, fast_math", [(dt, True) for dt in DTYPES] + [("float32", False)],
                         ids=list(DTYPES) + ["float32-libm"])
def test_every_elementwise_op_on_special_values(dt, fast_math, configure):
    configure(fast_math=fast_math)
    g = gc.Graph()
    cases = elementwise_cases(dt, g, only_fast_math=not fast_math)
    feeds = {ph: v for _, _, fd in cases for ph, v in fd.items()}
    out, ref = run_both([t for _, t, _ in cases], feeds)
    errors = []
    for (label, t, fd), o, r in zip(cases, out, ref):
        rtol = RTOL_F32.get((t.op.type, t.op.attrs.get("approximate"))) if dt == "float32" else None
        try:
            assert_agree(f"{label} {dt}", o, r, list(fd.values()), rtol=rtol)
        except AssertionError as e:
            errors.append(str(e))
    assert not errors, "\n".join(errors)


def test_the_reported_cases():
    # issue #21: sign(NaN) was 0 compiled; maximum(1, NaN) was 1 (Python's max keeps the first)
    x = gc.placeholder("float32", (None,))
    y = gc.placeholder("float32", (None,))
    fv = {x: np.array([np.nan, 1.0, np.nan, 2.0, -0.0], np.float32),
          y: np.array([1.0, np.nan, np.nan, np.inf, 0.0], np.float32)}
    out, ref = run_both([gc.sign(x), gc.maximum(x, y), gc.minimum(x, y), gc.relu(x)], fv)
    np.testing.assert_array_equal(out[0], [np.nan, 1.0, np.nan, 1.0, 0.0])
    np.testing.assert_array_equal(out[1], [np.nan, np.nan, np.nan, np.inf, 0.0])
    np.testing.assert_array_equal(out[2], [np.nan, np.nan, np.nan, 2.0, 0.0])
    assert not np.signbit(out[1][4]) and not np.signbit(out[3][4])    # max(-0.0, 0.0), relu(-0.0)
    for o, r in zip(out, ref):
        assert_agree("reported", o, r)


def test_integer_pow_with_large_exponents_wraps_like_numpy():
    # numba's int ** int went through the float pow for exponents above 2**16
    for dt in ("int32", "int64"):
        g = gc.Graph()
        with g.as_default():
            a, b = gc.placeholder(dt, (None,)), gc.placeholder(dt, (None,))
            big = np.iinfo(dt).max
            av = np.array([-1, 2, 7, -3, 3, 0, 1], dt)
            bv = np.array([big, big, big - 1, 65537, 40, big, big], dt)
            out, ref = run_both([gc.pow(a, b)], {a: av, b: bv})
        np.testing.assert_array_equal(out[0], np.power(av, bv))
        assert out[0][0] == -1


# -- fused chains -------------------------------------------------------------------------------------
@pytest.mark.parametrize("dt", FLOATS)
def test_fused_chains_on_special_values(dt):
    g = gc.Graph()
    xa, ya = pairs(dt)
    with g.as_default():
        x, y = gc.placeholder(dt, (None,)), gc.placeholder(dt, (None,))
        fetches = [
            gc.maximum(x, 0.0) * y + gc.sign(x),                      # the chain
            gc.minimum(gc.exp(x), y) - gc.relu(y) / (gc.abs(x) + 1.0),
            gc.where(x > y, gc.sqrt(gc.abs(x)), gc.log1p(gc.abs(y))) * gc.tanh(x),
            gc.sigmoid(x) * gc.nn.softplus(y) + gc.maximum(gc.sign(y), x),
            gc.clip_by_value(x * y, -1.0, 1.0) + gc.square(gc.sign(x - y)),
        ]
    out, ref = run_both(fetches, {x: xa, y: ya}, expect_ops={"fused_elementwise"})
    for k, (o, r) in enumerate(zip(out, ref)):
        assert_agree(f"chain {k} {dt}", o, r, [xa, ya])


@pytest.mark.parametrize("dt", FLOATS)
def test_fused_multi_output_and_epilogue_on_special_values(dt):
    # one loop nest computing several results (fused_multi_output: static shapes), and a matmul's
    # bias + relu epilogue run in place on the GEMM's output
    v = sweep(dt)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dt, v.shape)
        s = gc.sign(x)
        m = gc.maximum(x, s)
        a = gc.minimum(m * 2.0, x)
        w = gc.placeholder(dt, (3, 4))
        b = gc.placeholder(dt, (4,))
        h = gc.placeholder(dt, (None, 3))
        z = gc.nn.relu(gc.matmul(h, w) + b)
    hv = specials(dt)[:18].reshape(6, 3)
    wv = np.arange(12, dtype=dt).reshape(3, 4) - 5
    bv = np.array([np.nan, -0.0, np.inf, 1.0], dt)
    out, ref = run_both([a, m * 3.0 + 1.0, z], {x: v, w: wv, b: bv, h: hv},
                        expect_ops={"fused_multi_output", "fused_contraction"})
    for k, (o, r) in enumerate(zip(out, ref)):
        assert_agree(f"result {k} {dt}", o, r)


@pytest.mark.parametrize("dt", FLOATS)
@pytest.mark.parametrize("channels", [1, 4])
def test_conv_epilogue_and_pooling_on_special_values(dt, channels):
    # hand-written kernels: the single-channel direct conv with its fused bias + relu, im2col + GEMM
    # with a generated epilogue, max/avg pooling (NaN propagates through max windows). A conv's
    # finite values depend on its summation order: compared to 1e-4 of the output's scale; and so
    # does whether products of finite inputs overflow (-max * 1.1 + max * 1.7 is NaN summed one
    # way, -inf with an FMA): +-max are not among the conv's inputs (by design, docs/ops-contract.md)
    rng = np.random.default_rng(3)
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder(dt, (2, 6, 6, channels))
        f = gc.placeholder(dt, (3, 3, channels, 4))
        b = gc.placeholder(dt, (4,))
        fetches = [gc.nn.relu(gc.nn.conv2d(x, f, padding="SAME") + b),
                   gc.nn.relu(gc.nn.bias_add(gc.nn.conv2d(x, f, padding="VALID"), b)),
                   gc.nn.max_pool2d(x, 2), gc.nn.max_pool2d(x, 3, 2, padding="SAME"),
                   gc.nn.avg_pool2d(x, 3, 2, padding="SAME")]
    fi = np.finfo(dt)
    values = [v for v in specials(dt) if abs(v) != fi.max]
    xv = rng.choice(values, size=(2, 6, 6, channels)).astype(dt)
    xv[0] = rng.standard_normal((6, 6, channels))         # one image of ordinary values
    fv = rng.standard_normal((3, 3, channels, 4)).astype(dt)
    bv = np.array([-0.0, np.nan, 1.0, -1e30], dt)
    out, ref = run_both(fetches, {x: xv, f: fv, b: bv}, expect_ops={"fused_contraction"})
    for k, (o, r) in enumerate(zip(out, ref)):
        scale = np.abs(r[np.isfinite(r)]).max(initial=1.0)
        assert_agree(f"result {k} {dt}", o, r, rtol=1e-4, atol=1e-4 * scale if k < 2 else 0.0)


def test_winograd_conv_on_non_finite_inputs_by_design():
    # Winograd F(4x4, 3x3) mixes a whole 6x6 input tile in its transforms: a NaN or inf input makes
    # its 4x4 output tile NaN, where the reference spoils only the outputs whose window holds it
    # (and keeps +-inf). By design (docs/ops-contract.md, README): a non-finite result is never
    # made finite, and every output of a tile whose 6x6 window is finite agrees.
    x = gc.placeholder("float32", (1, 8, 8, 4))
    f = gc.placeholder("float32", (3, 3, 4, 4))
    y = gc.nn.conv2d(x, f, padding="SAME")
    xv = np.ones((1, 8, 8, 4), np.float32)
    xv[0, 0, 0, 0] = np.nan
    xv[0, 7, 7, 1] = np.inf
    g2, rep = optimize(y.graph, [y.node], feeds=[x.node, f.node])
    plan = runtime.compile(g2, rep.fetches, [x.node, f.node]).prepare({x.node: xv.shape, f.node: (3, 3, 4, 4)})
    if [s.call.name for s in plan.kernel_calls] != ["conv2d[winograd]"]:
        raise RuntimeError("this case no longer runs the Winograd kernel; update the test")
    out, ref = run_both([y], {x: xv, f: np.ones((3, 3, 4, 4), np.float32)})
    out, ref = out[0][0], ref[0][0]
    bad_in = ~np.isfinite(xv[0]).all(axis=-1)
    assert not np.isfinite(out[~np.isfinite(ref)]).any()            # never made finite
    clean = np.zeros(out.shape[:2], bool)
    for i in range(8):
        for j in range(8):
            r0, c0 = 4 * (i // 4) - 1, 4 * (j // 4) - 1                 # the tile's 6x6 input window
            clean[i, j] = not bad_in[max(r0, 0):r0 + 6, max(c0, 0):c0 + 6].any()
    assert clean.sum() > 0
    np.testing.assert_allclose(out[clean], ref[clean], rtol=1e-4)
    assert np.isnan(out[~clean]).any()                               # the documented spread is real


# -- reductions -----------------------------------------------------------------------------------------
def reduction_rows(dt) -> np.ndarray:
    """Rows of 6 whose reductions meet special values. Their sums are what every summation order
    gives; their means too, except those of the rows of +-max (``OVERFLOWING``): an overflow of a
    partial sum that the exact result does not have is a by-design difference
    (test_by_design_sums_accumulate_in_float64)."""
    fi = np.finfo(dt)
    big, t, s, n, i = fi.max, fi.tiny, fi.smallest_subnormal, np.nan, np.inf
    return np.array([[n, 1, 2, 3, 4, 5], [1, 2, n, i, -i, 0], [i, 1, 2, 3, 4, 5], [-i, 1, 2, 3, 4, 5],
                     [i, -i, 1, 1, 1, 1], [-0.0] * 6, [0.0, -0.0, -0.0, 0, -0.0, 0], [s] * 6,
                     [t, -t, s, -s, s, 0], [-1, -2, -3, -4, -5, -6], [2, 2, 1, 2, -7, 2], [n] * 6,
                     [-i] * 6, [i] * 6, [big, big, big, big, big, big], [-big] * 6,
                     [1e30, 1e30, 1e30, 1, 1, 1], [1e-30, 1e-30, 1e-30, 1, 1, 1], [5, n, 7, n, 1, 1],
                     [-0.0, -1, 2, 0, 3, -4], [-0.0, -0.0, 1e-45, -0.0, 0.0, 0.0], [3, 1, 4, 1, 5, 9]],
                    dt)


OVERFLOWING = [14, 15]          # the rows of reduction_rows whose float32 partial sums overflow
REDUCE = ("reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod")


@pytest.mark.parametrize("dt", FLOATS + ("int32", "int64"))
def test_every_reduction_on_special_values(dt):
    if dt in FLOATS:
        rows = reduction_rows(dt)
        mean_rows = np.delete(rows, OVERFLOWING, axis=0)
    else:
        ii = np.iinfo(dt)
        rows = mean_rows = np.array([[0, 1, -1, 2, -3, 7], [ii.max, 1, 1, 0, 0, 0],
                                     [ii.min, -1, 0, 0, 0, 0], [ii.max, ii.max, 2, 3, 5, 7],
                                     [ii.min] * 6, [-1] * 6], dt)
    g = gc.Graph()
    feeds, fetches, labels = {}, [], []
    with g.as_default():
        for op in REDUCE + (("reduce_logsumexp", "reduce_variance") if dt in FLOATS else ()):
            r = mean_rows if op in ("reduce_mean", "reduce_variance") else rows
            x, xt, x3 = (gc.placeholder(dt, s) for s in [(None, 6), (6, None), (2, None, 6)])
            feeds.update({x: r, xt: np.ascontiguousarray(r.T), x3: np.stack([r, r[::-1]])})
            f = getattr(gc, op)
            # the last axis, the leading axis, a middle axis, all axes, keepdims over two: the numba
            # sum kernels (rows, columns, middle block, everything) and numpy's loops; then a
            # reduction with an elementwise prologue (fused_reduction)
            for what, t in [("last", f(x, axis=1)), ("lead", f(xt, axis=0)), ("mid", f(x3, axis=1)),
                            ("all", f(x3)), ("kd", f(x3, axis=(0, 2), keepdims=True)),
                            ("fused", f(gc.abs(xt) * 2, axis=0))]:
                fetches.append(t)
                labels.append(f"{op}/{what}")
        for op in ("argmax", "argmin"):
            f = getattr(gc, op)
            fetches += [f(x, axis=1), f(x3, axis=2)]
            labels += [f"{op}/last", f"{op}/3d"]
        fetches += [gc.cumsum(x, 1), gc.cumsum(xt, 0, exclusive=True), gc.cumsum(x3, 1, reverse=True)]
        labels += ["cumsum/last", "cumsum/lead/exclusive", "cumsum/mid/reverse"]
    # the integer mean (TensorFlow's truncating one) has no kernel: its reference runs, by design
    ints = {"reduce_mean", "fused_reduction"} if dt.startswith("int") else ()
    out, ref = run_both(fetches, feeds, allow_reference=ints, expect_ops={"fused_reduction"})
    for label, o, r in zip(labels, out, ref):
        assert_agree(f"{label} {dt}", o, r)


def test_logical_reductions_and_softmax_family_on_special_values():
    errors = []
    for dt in FLOATS:
        rows = reduction_rows(dt)
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder(dt, (None, 6))
            xt = gc.placeholder(dt, (6, None))
            bx = gc.placeholder("bool", (None, 6))
            lab = gc.placeholder("int32", (None,))
            probs = gc.placeholder(dt, (None, 6))
            fetches = {
                "softmax": gc.nn.softmax(x), "log_softmax": gc.nn.log_softmax(x),
                "softmax/axis0": gc.nn.softmax(xt, axis=0),
                "xent": gc.nn.softmax_cross_entropy_with_logits(labels=probs, logits=x),
                "sparse_xent": gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=x),
                "any": gc.reduce_any(bx, axis=1), "all": gc.reduce_all(bx, axis=1),
                "any/all-axes": gc.reduce_any(bx), "all/lead": gc.reduce_all(bx, axis=0)}
        pv = np.tile(np.array([0.5, 0.25, 0.0, 0.125, 0.125, 0.0], dt), (len(rows), 1))
        fv = {x: rows, xt: np.ascontiguousarray(rows.T), bx: np.isnan(rows) | (rows > 1),
              lab: (np.arange(len(rows)) % 6).astype(np.int32), probs: pv}
        # softmax over axis 0 has no kernel (its reference runs, by design of the binder)
        out, ref = run_both(list(fetches.values()), fv, allow_reference={"softmax"})
        for label, o, r in zip(fetches, out, ref):
            try:
                assert_agree(f"{label} {dt}", o, r)
            except AssertionError as e:
                errors.append(str(e))
    assert not errors, "\n".join(errors)


# -- by design ---------------------------------------------------------------------------------------
def test_by_design_sums_accumulate_in_float64():
    # float sums and means over the leading, trailing, a middle block or all axes run numba loops
    # accumulating in float64 (runtime/kernels_reduce.py): where numpy's float32 partial sums
    # overflow but the exact result does not, the compiled result is the finite, exact one
    big = np.finfo(np.float32).max
    rows = np.array([[big, big, 1, 1, 1, 1], [big, big, -big, 1, 1, 1]], np.float32)
    x = gc.placeholder("float32", (None, 6))
    out, ref = run_both([gc.reduce_mean(x, axis=1), gc.reduce_sum(x, axis=1)], {x: rows})
    assert np.isinf(ref[0]).all() and np.isinf(ref[1][1])
    np.testing.assert_allclose(out[0], [big / 3, big / 6], rtol=1e-6)
    np.testing.assert_allclose(out[1], [np.inf, big], rtol=1e-6)
