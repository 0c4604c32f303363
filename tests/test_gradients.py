"""Finite-difference checks (float64, central differences) of the gradient of every differentiable op.

``CASES`` maps each op name to builders over placeholders plus input arrays;
``test_every_differentiable_op_has_a_gradient_check`` fails when an op with a
gradient rule is registered without a case here (``fused_*`` ops are created by
passes after autodiff and are not differentiated). Each case also asserts that
its graph really contains the op it claims to check.
"""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.ops.registry import OPS, apply
from gradcheck import check_grad

RNG = np.random.default_rng(20240605)
F64 = np.float64


def u(*shape, lo=-1.0, hi=1.0):
    """Uniform float64 values in [lo, hi)."""
    return RNG.uniform(lo, hi, size=shape).astype(F64)


def away(*shape, gap=0.15, hi=1.0):
    """Values with |x| in [gap, hi] (no kinks of relu/abs/... nearby)."""
    return (RNG.uniform(gap, hi, size=shape) * RNG.choice([-1.0, 1.0], size=shape)).astype(F64)


def distinct(*shape, scale=1.0):
    """A random permutation of well-separated values (no ties for max/min/pooling)."""
    n = int(np.prod(shape))
    return (RNG.permutation(n).reshape(shape) * (scale / max(n, 1)) - 0.5 * scale).astype(F64)


CASES: dict[str, list] = {}


def case(op, fn, *arrays, atol=1e-6, rtol=1e-5, eps=1e-6, marks=()):
    lst = CASES.setdefault(op, [])
    lst.append(pytest.param(op, fn, [np.asarray(a) for a in arrays], dict(atol=atol, rtol=rtol, eps=eps),
                            id=f"{op}-{len(lst)}", marks=marks))


def op_attrs(build, xs):
    """The attrs of the node ``build(xs)`` creates (to call internal gradient ops with ``apply``)."""
    return dict(build(xs).op.attrs)


# -- sources ---------------------------------------------------------------------------------------
case("constant", lambda x: x[0] * gc.constant(np.array([1.5, -2.0, 0.5])) + gc.constant(3.0, "float64"), u(3))
case("placeholder", lambda x: x[0], u(2, 3))
# "variable" is checked by tests/test_autodiff.py::test_variable_gradient (variables cannot be check_grad inputs)

# -- unary elementwise -------------------------------------------------------------------------
case("neg", lambda x: gc.negative(x[0]), u(2, 3))
case("abs", lambda x: gc.abs(x[0]), away(2, 3))
case("exp", lambda x: gc.exp(x[0]), u(2, 3))
case("expm1", lambda x: gc.expm1(x[0]), u(2, 3))
case("log", lambda x: gc.log(x[0]), u(2, 3, lo=0.3, hi=2.0))
case("log1p", lambda x: gc.log1p(x[0]), u(2, 3, lo=-0.5, hi=2.0))
case("sqrt", lambda x: gc.sqrt(x[0]), u(2, 3, lo=0.3, hi=2.0))
case("rsqrt", lambda x: gc.rsqrt(x[0]), u(2, 3, lo=0.3, hi=2.0))
case("square", lambda x: gc.square(x[0]), u(2, 3))
case("reciprocal", lambda x: gc.reciprocal(x[0]), away(2, 3, gap=0.4))
case("sin", lambda x: gc.sin(x[0]), u(2, 3, lo=-3, hi=3))
case("cos", lambda x: gc.cos(x[0]), u(2, 3, lo=-3, hi=3))
case("tanh", lambda x: gc.tanh(x[0]), u(2, 3, lo=-2, hi=2))
case("sigmoid", lambda x: gc.sigmoid(x[0]), u(2, 3, lo=-4, hi=4))
case("sigmoid", lambda x: gc.sigmoid(x[0]), np.array([-30.0, -5.0, 5.0, 30.0]))  # saturated, stable
case("relu", lambda x: gc.nn.relu(x[0]), away(2, 3))
case("relu6", lambda x: gc.nn.relu6(x[0]), np.array([-1.0, 0.5, 3.0, 5.5, 6.5, 8.0]))
case("softplus", lambda x: gc.nn.softplus(x[0]), u(2, 3, lo=-4, hi=4))
case("softsign", lambda x: gc.nn.softsign(x[0]), away(2, 3))
case("erf", lambda x: gc.erf(x[0]), u(2, 3, lo=-2, hi=2))
case("identity", lambda x: gc.identity(x[0]), u(2, 3))
case("leaky_relu", lambda x: gc.nn.leaky_relu(x[0], alpha=0.3), away(2, 3))
case("elu", lambda x: gc.nn.elu(x[0], alpha=0.7), away(2, 3))
case("selu", lambda x: gc.nn.selu(x[0]), away(2, 3))
case("gelu", lambda x: gc.nn.gelu(x[0]), u(2, 3, lo=-3, hi=3))
case("gelu", lambda x: gc.nn.gelu(x[0], approximate=True), u(2, 3, lo=-3, hi=3))
case("cast", lambda x: gc.cast(gc.cast(x[0], "float32"), "float64"), u(2, 3), eps=1e-2, atol=1e-5, rtol=1e-4)
case("cast", lambda x: gc.cast(x[0], "float32") * 2.0, u(2, 3), eps=1e-2, atol=1e-5, rtol=1e-4)

# -- binary elementwise, with broadcasting -----------------------------------------------------------
for _op, _fn, _a, _b in [
        ("add", gc.add, u, u), ("sub", gc.subtract, u, u), ("mul", gc.multiply, u, u),
        ("div", gc.divide, u, lambda *s: away(*s, gap=0.5)),
        ("maximum", gc.maximum, distinct, lambda *s: distinct(*s) + 0.013),
        ("minimum", gc.minimum, distinct, lambda *s: distinct(*s) + 0.013),
        ("squared_difference", gc.squared_difference, u, u)]:
    case(_op, lambda x, f=_fn: f(x[0], x[1]), _a(2, 3), _b(2, 3))
    case(_op, lambda x, f=_fn: f(x[0], x[1]), _a(2, 3), _b(3))        # trailing broadcast
    case(_op, lambda x, f=_fn: f(x[0], x[1]), _a(2, 1), _b(1, 3))     # both broadcast
    case(_op, lambda x, f=_fn: f(x[0], x[1]), _a(), _b(2, 2))         # scalar
case("mod", lambda x: gc.mod(x[0], x[1]), u(2, 3, lo=1.6, hi=1.9), u(2, 3, lo=1.0, hi=1.4))
case("mod", lambda x: gc.mod(x[0], x[1]), u(2, 3, lo=0.2, hi=0.8), u(3, lo=1.0, hi=1.4))
case("pow", lambda x: gc.pow(x[0], x[1]), u(2, 3, lo=0.5, hi=1.5), u(2, 3, lo=0.5, hi=2.5))
case("pow", lambda x: gc.pow(x[0], x[1]), u(2, 3, lo=0.5, hi=1.5), u(1, 3, lo=-1.0, hi=2.0))
case("pow", lambda x: x[0] ** 3.0, u(2, 3))  # negative base, constant integer exponent
case("where", lambda x: gc.where(x[0] > 0, x[1], x[2]), u(2, 3), u(2, 3), u(2, 3))
case("where", lambda x: gc.where(gc.constant(np.array([True, False, True])), x[0], x[1]), u(2, 3), u(3))
case("where", lambda x: gc.where(x[0], x[1], x[2]), np.array([[True, False], [False, True]]), u(2, 2), u(1, 2))

# -- reductions ----------------------------------------------------------------------------------------
for _op, _fn in [("reduce_sum", gc.reduce_sum), ("reduce_mean", gc.reduce_mean),
                 ("reduce_max", gc.reduce_max), ("reduce_min", gc.reduce_min)]:
    case(_op, lambda x, f=_fn: f(x[0]), distinct(2, 3))
    case(_op, lambda x, f=_fn: f(x[0], axis=1), distinct(2, 3, 2))
    case(_op, lambda x, f=_fn: f(x[0], axis=(0, 2), keepdims=True), distinct(2, 3, 2))
case("reduce_prod", lambda x: gc.reduce_prod(x[0], axis=1), u(2, 3, lo=0.5, hi=1.5))
case("reduce_prod", lambda x: gc.reduce_prod(x[0]), np.array([[0.5, -1.2, 0.0], [1.3, 0.9, -0.7]]))  # a zero
case("reduce_prod", lambda x: gc.reduce_prod(x[0], axis=0, keepdims=True),
     np.array([[0.0, 1.1, 0.0], [1.3, 0.0, -0.7]]))  # zeros in a column
case("reduce_logsumexp", lambda x: gc.reduce_logsumexp(x[0], axis=1), u(2, 3, 2, lo=-3, hi=3))
case("reduce_logsumexp", lambda x: gc.reduce_logsumexp(x[0], axis=(0, 2), keepdims=True), u(2, 3, 2))
case("reduce_logsumexp", lambda x: gc.reduce_logsumexp(x[0]), np.array([[500.0, 499.0], [-400.0, 0.0]]))
case("reduce_variance", lambda x: gc.reduce_variance(x[0], axis=1), u(2, 3, 2))
case("reduce_variance", lambda x: gc.reduce_variance(x[0], axis=(0, 2), keepdims=True), u(2, 3, 2))
case("reduce_variance", lambda x: gc.reduce_std(x[0]), u(2, 3))            # sqrt(variance)
case("cumsum", lambda x: gc.cumsum(x[0], axis=1), u(2, 4))
case("cumsum", lambda x: gc.cumsum(x[0], axis=0, exclusive=True, reverse=True), u(3, 2))
case("cumsum", lambda x: gc.cumsum(x[0], axis=-1, reverse=True), u(2, 2, 3))

# -- layout --------------------------------------------------------------------------------------------
case("reshape", lambda x: gc.reshape(x[0], (3, -1)), u(2, 3, 2))
case("reshape_like", lambda x: gc.reshape_like(x[0], x[1]), u(2, 3), u(3, 2))
case("transpose", lambda x: gc.transpose(x[0], (2, 0, 1)), u(2, 3, 2))
case("expand_dims", lambda x: gc.expand_dims(x[0], 1), u(2, 3))
case("squeeze", lambda x: gc.squeeze(x[0], axis=1), u(2, 1, 3))
case("concat", lambda x: gc.concat([x[0], x[1], x[0]], axis=1), u(2, 1), u(2, 3))  # fan-out too
case("concat", lambda x: gc.concat([x[0], x[1]], axis=0), u(1, 3), u(2, 3))
case("concat_split", lambda x: apply("concat_split", [x[0], x[1], x[2]], {"axis": 1, "index": 1}),
     u(2, 5), u(2, 2), u(2, 3))
case("stack", lambda x: gc.stack([x[0], x[1]], axis=1), u(2, 3), u(2, 3))
case("strided_slice", lambda x: gc.concat(gc.split(x[0], [1, -1, 2], axis=1)[::-1], axis=1), u(2, 6))  # split
case("strided_slice", lambda x: x[0][1:, ::2], u(3, 5))
case("strided_slice", lambda x: x[0][:, -1, None], u(3, 4))
case("strided_slice", lambda x: x[0][::-2, 1:3], u(5, 4))
case("strided_slice", lambda x: gc.concat(gc.unstack(x[0], axis=1), axis=0), u(2, 3))
case("strided_slice_grad",
     lambda x: apply("strided_slice_grad", [x[0], x[1]], op_attrs(lambda z: z[1][::2, 1:], x)),
     u(2, 2), u(3, 3))
case("strided_slice_grad_n",          # overlapping keys: the second and third both write row 1
     lambda x: apply("strided_slice_grad_n", [x[0], x[1], x[2], x[3]],
                     {"keys": ((0,), (("s", 1, None, None),), (("s", None, 2, None),))}),
     u(3), u(1, 3), u(2, 3), u(2, 3))
case("lstm_cell", lambda x: gc.nn.lstm_cell(x[0] * 2.0, x[1]), u(2, 8), u(2, 2))
case("lstm_cell", lambda x: gc.nn.lstm_cell(x[0] * 2.0), u(3, 4))                   # first step: no c
case("lstm_cell_grad",                                                                # second order
     lambda x: apply("lstm_cell_grad", [x[0], x[1], gc.nn.lstm_cell(x[0], x[1]) + x[2], x[3]], {}),
     u(2, 8), u(2, 2), u(2, 4), u(2, 4))
case("lstm_cell_grad", lambda x: apply("lstm_cell_grad", [x[0], x[1], x[2]], {}), u(3, 4), u(3, 2), u(3, 2))
# one process: the reduction over the job is the identity (tests/test_distributed.py runs two)
case("allreduce", lambda x: gc.distributed.allreduce(x[0] * x[0], op="mean"), u(2, 3))
case("allreduce", lambda x: gc.distributed.allreduce(x[0], op="sum") * x[0], u(4))
case("gather", lambda x: gc.gather(x[0], gc.constant(np.array([2, 0, 2, 1], np.int32))), u(3, 2))
case("gather", lambda x: gc.gather(x[0], x[1], axis=1), u(2, 4), np.array([[3, 0], [3, 3]], np.int32))
case("scatter_add", lambda x: apply("scatter_add", [x[0], x[1], x[2]], {"axis": 0}),
     u(4, 2), np.array([1, 3, 1], np.int64), u(3, 2))
case("unsorted_segment_sum", lambda x: gc.unsorted_segment_sum(x[0], x[1], 3),
     u(5, 2), np.array([0, 2, 0, 7, -1], np.int32))
case("pad", lambda x: gc.pad(x[0], [[1, 0], [2, 1]]), u(2, 3))
case("pad", lambda x: gc.pad(x[0], [[1, 1], [2, 1]], mode="REFLECT"), u(3, 4))
case("pad", lambda x: gc.pad(x[0], [[0, 2], [1, 1]], mode="SYMMETRIC"), u(3, 4))
case("pad_grad", lambda x: apply("pad_grad", [x[0], x[1]], {"paddings": ((1, 1), (2, 1)), "mode": "REFLECT"}),
     u(5, 7), u(3, 4))
case("pad_grad", lambda x: apply("pad_grad", [x[0], x[1]], {"paddings": ((1, 0), (0, 2)), "mode": "CONSTANT"}),
     u(3, 5), u(2, 3))
case("broadcast_to", lambda x: gc.broadcast_to(x[0], (2, 3, 4)), u(3, 1))
case("broadcast_like", lambda x: gc.broadcast_like(x[0], x[1]), u(1, 3), u(2, 3))
case("tile", lambda x: gc.tile(x[0], [2, 3]), u(2, 2))
case("tile_grad", lambda x: apply("tile_grad", [x[0], x[1]], {"multiples": (2, 3)}), u(4, 6), u(2, 2))
case("zeros_like", lambda x: gc.zeros_like(x[0]) + x[0] * 2.0, u(2, 3))
case("ones_like", lambda x: gc.ones_like(x[0]) * x[0], u(2, 3))

# -- linear algebra -----------------------------------------------------------------------------------
for _ta in (False, True):
    for _tb in (False, True):
        case("matmul", lambda x, ta=_ta, tb=_tb: gc.matmul(x[0], x[1], transpose_a=ta, transpose_b=tb),
             u(*((4, 3) if _ta else (3, 4))), u(*((2, 4) if _tb else (4, 2))))
case("matmul", lambda x: gc.matmul(x[0], x[1]), u(2, 3, 4), u(2, 4, 2))          # batched
case("matmul", lambda x: gc.matmul(x[0], x[1]), u(2, 3, 4), u(4, 2))             # broadcast batch
case("matmul", lambda x: gc.matmul(x[0], x[1], transpose_b=True), u(1, 3, 4), u(2, 2, 4))

# -- nn ---------------------------------------------------------------------------------------------------
case("softmax", lambda x: gc.nn.softmax(x[0]), u(2, 4, lo=-3, hi=3))
case("softmax", lambda x: gc.nn.softmax(x[0], axis=0), u(3, 2, lo=-3, hi=3))
case("log_softmax", lambda x: gc.nn.log_softmax(x[0]), u(2, 4, lo=-3, hi=3))
case("log_softmax", lambda x: gc.nn.log_softmax(x[0]), np.array([[200.0, -100.0, 0.0]]))  # stable
case("softmax_cross_entropy_with_logits",
     lambda x: gc.nn.softmax_cross_entropy_with_logits(labels=x[0], logits=x[1]),
     np.array([[0.2, 0.5, 0.3], [0.0, 1.0, 0.0]]), u(2, 3, lo=-3, hi=3))
case("softmax_cross_entropy_with_logits",
     lambda x: gc.nn.softmax_cross_entropy_with_logits(labels=x[0], logits=x[1], axis=0),
     np.array([[0.7, 0.5], [0.3, 0.5]]), u(2, 2, lo=-3, hi=3))
case("sparse_softmax_cross_entropy_with_logits",
     lambda x: gc.nn.sparse_softmax_cross_entropy_with_logits(labels=x[0], logits=x[1]),
     np.array([2, 0, 1], np.int32), u(3, 4, lo=-3, hi=3))
case("sigmoid_cross_entropy_with_logits",
     lambda x: gc.nn.sigmoid_cross_entropy_with_logits(labels=x[0], logits=x[1]),
     u(2, 3, lo=0, hi=1), u(2, 3, lo=-4, hi=4))
case("sigmoid_cross_entropy_with_logits",
     lambda x: gc.nn.sigmoid_cross_entropy_with_logits(labels=x[0], logits=x[1]),
     u(3, lo=0, hi=1), u(2, 3, lo=-4, hi=4))  # broadcast labels

_CONV_CONFIGS = [dict(strides=1, padding="VALID"), dict(strides=2, padding="SAME"),
                 dict(strides=1, padding="SAME", dilations=2)]
for _kw in _CONV_CONFIGS:
    case("conv2d", lambda x, kw=_kw: gc.nn.conv2d(x[0], x[1], **kw), u(1, 5, 5, 2), u(3, 3, 2, 2))
case("conv2d", lambda x: gc.nn.conv2d(x[0], x[1], strides=(1, 2), padding="VALID"), u(2, 4, 5, 1), u(2, 2, 1, 3))


def _conv_bp(op, kw):
    def build(x):
        attrs = op_attrs(lambda z: gc.nn.conv2d(z[0], z[1], **kw), x)
        attrs = {k: attrs[k] for k in ("strides", "padding", "dilations")}
        return apply(op, [x[0], x[1], x[2]], attrs)
    return build


for _op in ("conv2d_backprop_input", "conv2d_backprop_filter"):
    case(_op, _conv_bp(_op, dict(strides=1, padding="VALID")), u(1, 4, 4, 2), u(2, 2, 2, 3), u(1, 3, 3, 3))
    case(_op, _conv_bp(_op, dict(strides=2, padding="SAME")), u(1, 5, 5, 1), u(3, 3, 1, 2), u(1, 3, 3, 2))

_POOLS = [dict(ksize=2, strides=2, padding="VALID"), dict(ksize=3, strides=2, padding="SAME")]
for _kw in _POOLS:
    case("max_pool2d", lambda x, kw=_kw: gc.nn.max_pool2d(x[0], **kw), distinct(1, 4, 5, 2))
    case("avg_pool2d", lambda x, kw=_kw: gc.nn.avg_pool2d(x[0], **kw), u(1, 4, 5, 2))


def _pool_op(op, pool, kw):
    def build(x):
        attrs = op_attrs(lambda z: pool(z[0], **kw), x)
        return apply(op, [x[0], x[1]], attrs)
    return build


def _masked_pool_grad(kw):
    # max_pool2d_grad with relu_mask (the folded relu gradient): linear in dy, masked by input > 0
    def build(x):
        attrs = op_attrs(lambda z: gc.nn.max_pool2d(z[0], **kw), x)
        return apply("max_pool2d_grad", [x[0], x[1]], {**attrs, "relu_mask": True})
    return build


for _kw, _out in zip(_POOLS, [(1, 2, 2, 2), (1, 2, 3, 2)]):
    case("max_pool2d_grad", _pool_op("max_pool2d_grad", gc.nn.max_pool2d, _kw), distinct(1, 4, 5, 2), u(*_out))
    case("max_pool2d_grad", _masked_pool_grad(_kw), distinct(1, 4, 5, 2), u(*_out))
    case("max_pool2d_grad_grad", _pool_op("max_pool2d_grad_grad", gc.nn.max_pool2d, _kw),
         distinct(1, 4, 5, 2), u(1, 4, 5, 2))
    case("avg_pool2d_grad", _pool_op("avg_pool2d_grad", gc.nn.avg_pool2d, _kw), u(1, 4, 5, 2), u(*_out))


# -- control flow (loops differentiated through the values they save per step) ------------------------
def _rnn(x):
    seq, w, h0 = x        # h_t = tanh(h_{t-1} * w + x_t), every h stacked
    return gc.scan(lambda h, xt: gc.tanh(h * w + xt), seq, initializer=h0)


def _scan_final(x):
    from graphc.ops.control_flow import part
    seq, w = x            # the final carry and a per-step product, scanned last step first
    out = gc.scan(lambda a, xt: a * gc.sin(xt) + w, seq, initializer=w, reverse=True)
    node = out.op.inputs[0]
    return out * 2.0 + gc.reduce_sum(part(node, 0))


def _nested(x):
    seq, w = x            # a scan over rows whose body scans the row's elements
    return gc.scan(lambda acc, row: acc + gc.reduce_sum(
        gc.scan(lambda a, e: a * w + e, row, initializer=w)), seq, initializer=gc.zeros_like(w))


case("scan", _rnn, u(5, 3), u(3), u(3))
case("scan", _scan_final, u(4, 2), u(2))
case("scan", _nested, u(3, 4), u())
case("scan", _rnn, u(0, 3), u(3), u(3))     # no steps: the gradient reaches nothing but h0's use
case("tuple_get", lambda x: gc.map_fn(lambda r: gc.reduce_sum(r * r) * x[1], x[0]), u(3, 2), u())
case("while_loop", lambda x: gc.while_loop(lambda i, p: i < 3, lambda i, p: (i + 1, p * x[0] + x[1]),
                                           (0, x[1]))[1], u(2), u(2))
case("while_loop", lambda x: gc.while_loop(lambda i, p: i < 0, lambda i, p: (i + 1, p * x[0]),
                                           (0, x[1] * 3.0))[1], u(2), u(2))       # zero iterations
case("while_loop", lambda x: gc.while_loop(lambda p: gc.reduce_sum(p) < 1e9, lambda p: p * x[0],
                                           x[1], maximum_iterations=4), away(2) + 1.5, u(2))
case("while_loop", lambda x: gc.while_loop(          # a loop nested in a loop's body
    lambda i, p: i < 2, lambda i, p: (i + 1, gc.while_loop(lambda j, q: j < 2,
                                                           lambda j, q: (j + 1, q * x[0]), (0, p))[1]),
    (0, x[1]))[1], u(2), u(2))
case("cond", lambda x: gc.cond(gc.reduce_sum(x[0]) > 0.0, lambda: x[0] * x[1], lambda: x[1] - x[0]),
     away(3) + 1.2, u(3))
case("cond", lambda x: gc.cond(gc.reduce_sum(x[0]) > 0.0, lambda: x[0] * x[1], lambda: x[1] - x[0]),
     away(3) - 1.2, u(3))
# the forms the save_lstm_gates / split_lstm_grad_inputs passes make (appended: earlier cases keep their data)
case("lstm_cell", lambda x: apply("lstm_cell", [x[0] * 2.0, x[1]], {"gates": True}), u(2, 8), u(2, 2))  # + gates
case("lstm_cell", lambda x: apply("lstm_cell", [x[0], x[1], x[2] * 2.0], {"z_sum": True, "gates": True}),
     u(2, 8), u(2, 2), u(2, 8))                                                     # z = x0 + 2 x2
case("lstm_cell", lambda x: apply("lstm_cell", [x[0], x[1]], {"z_sum": True}), u(3, 4), u(3, 4))   # no c
case("lstm_cell", lambda x: apply("lstm_cell", [x[0], x[1], x[2], x[3] * 2.0],                  # + a bias row
                                  {"z_sum": True, "z_bias": True, "gates": True}),
     u(2, 8), u(2, 2), u(2, 8), u(8))
case("lstm_cell", lambda x: apply("lstm_cell", [x[0], x[1]], {"z_bias": True}), u(3, 4), u(4))     # bias only
case("lstm_cell_grad",                                                                # dh, dc apart
     lambda x: apply("lstm_cell_grad", [x[0], x[1], gc.nn.lstm_cell(x[0], x[1]) + x[2], x[3], x[4]],
                     {"split_d": True}),
     u(2, 8), u(2, 2), u(2, 4), u(2, 2), u(2, 2))


# -- the tests ---------------------------------------------------------------------------------------
SPECIAL = {"variable"}  # checked by test_autodiff.py::test_variable_gradient


def differentiable_ops():
    return sorted(n for n, o in OPS.items()
                  if o.differentiable and (o.grad is not None or o.composite is not None)
                  and not n.startswith("fused_"))


def test_every_differentiable_op_has_a_gradient_check():
    missing = [n for n in differentiable_ops() if n not in CASES and n not in SPECIAL]
    assert not missing, (f"ops with a gradient rule but no finite-difference check: {missing}; "
                         "add cases for them to CASES in tests/test_gradients.py")
    stale = [n for n in CASES if n not in OPS]
    assert not stale, f"CASES names ops that are not registered: {stale}"


ALL_CASES = [p for name in sorted(CASES) for p in CASES[name]]


@pytest.mark.parametrize("op, fn, arrays, tol", ALL_CASES)
def test_gradient(op, fn, arrays, tol):
    seen = set()

    def build(xs):
        y = fn(xs)
        g = xs[0].graph
        seen.update(g.op(n) for n in g.nodes())
        return y

    check_grad(build, arrays, **tol)
    assert op in seen, f"the case for {op} does not build a {op} node (ops seen: {sorted(seen)})"


# -- composite checks ----------------------------------------------------------------------------------
def test_small_conv_net_end_to_end():
    """conv2d -> relu -> max_pool -> reshape -> matmul -> softmax cross-entropy, w.r.t. every weight."""
    labels = np.eye(3)[[0, 2]]

    def net(x):
        img, f, w, b = x
        h = gc.nn.relu(gc.nn.conv2d(img, f, strides=1, padding="SAME"))
        p = gc.nn.max_pool2d(h, 2)
        flat = gc.reshape(p, (2, -1))
        logits = gc.matmul(flat, w) + b
        return gc.reduce_mean(gc.nn.softmax_cross_entropy_with_logits(labels=gc.constant(labels), logits=logits))

    check_grad(net, [u(2, 4, 4, 1), u(3, 3, 1, 2), u(8, 3), u(3)], atol=1e-6, rtol=1e-4)


def test_lstm_like_cell_over_three_steps():
    """An LSTM cell unrolled for 3 steps (matmul, sigmoid, tanh, multiply, add), w.r.t. all inputs."""
    n_in, n_h = 2, 3

    def lstm(x):
        seq, wx, wh, b = x
        h = gc.zeros((2, n_h), "float64")
        c = gc.zeros((2, n_h), "float64")
        for t in range(3):
            z = gc.matmul(seq[t], wx) + gc.matmul(h, wh) + b
            i, f, o, g = (z[:, k * n_h:(k + 1) * n_h] for k in range(4))
            c = gc.sigmoid(f) * c + gc.sigmoid(i) * gc.tanh(g)
            h = gc.sigmoid(o) * gc.tanh(c)
        return h

    check_grad(lstm, [u(3, 2, n_in), u(n_in, 4 * n_h), u(n_h, 4 * n_h), u(4 * n_h)], atol=1e-6, rtol=1e-4)
