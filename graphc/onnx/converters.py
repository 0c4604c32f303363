"""One converter per ONNX op: ``CONVERTERS[op_type](cx, inputs) -> Tensor | [Tensor]``.

A converter builds graphc ops (or a composition of them) for one ONNX node; ``cx`` is the
importer's ``Context`` (attributes, opset, constant values, errors naming the node). A missing
optional input is ``None``. Anything graphc cannot express raises ``cx.unsupported(...)``.

    >>> all(op in CONVERTERS for op in ("Conv", "MatMul", "Reshape", "Softmax", "LSTM"))
    True
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .importer import dtype_of

CONVERTERS: dict = {}


def op(*names):
    def deco(fn):
        for n in names:
            CONVERTERS[n] = fn
        return fn
    return deco


def _float(cx, x, what="input"):
    if x.dtype.kind != "f":
        raise cx.unsupported(f"{what} dtype {x.dtype.name} is not supported by this op in graphc "
                             "(float32/float64 only)", kind="dtype")
    return x


def _scalar(cx, like, v):
    return cx.constant(np.asarray(v, dtype=like.dtype))


def _ints(cx, t, what):
    return [int(v) for v in np.asarray(cx.value(t, what)).reshape(-1)]


# -- elementwise ------------------------------------------------------------------------------------------
_UNARY = {"Abs": gc.abs, "Neg": gc.negative, "Exp": gc.exp, "Log": gc.log, "Sqrt": gc.sqrt,
          "Reciprocal": gc.reciprocal, "Tanh": gc.tanh, "Sigmoid": gc.sigmoid, "Relu": gc.relu,
          "Ceil": gc.ceil, "Floor": gc.floor, "Round": gc.round, "Sin": gc.sin, "Cos": gc.cos,
          "Erf": gc.erf, "Softplus": gc.softplus, "Softsign": gc.softsign, "Not": gc.logical_not,
          "Sign": gc.sign}
_FLOAT_ONLY = {"Exp", "Log", "Sqrt", "Reciprocal", "Tanh", "Sigmoid", "Ceil", "Floor", "Round", "Sin", "Cos",
               "Erf", "Softplus", "Softsign"}


def _unary(name, fn):
    def conv(cx, ins):
        x = ins[0]
        if name in _FLOAT_ONLY:
            _float(cx, x)
        if name == "Relu" and x.dtype.kind != "f":
            return gc.maximum(x, _scalar(cx, x, 0))
        if name in ("Abs", "Neg", "Sign") and x.dtype.kind == "b":
            raise cx.unsupported("bool input is not supported", kind="dtype")
        return fn(x)
    CONVERTERS[name] = conv


for _n, _f in _UNARY.items():
    _unary(_n, _f)


@op("Identity")
def _identity(cx, ins):
    return gc.identity(ins[0])


@op("Tan")
def _tan(cx, ins):
    x = _float(cx, ins[0])
    return gc.sin(x) / gc.cos(x)


@op("Sinh", "Cosh")
def _sinh(cx, ins):
    x = _float(cx, ins[0])
    a, b = gc.exp(x), gc.exp(-x)
    return (a - b if cx.node.op_type == "Sinh" else a + b) * _scalar(cx, x, 0.5)


@op("Asinh")
def _asinh(cx, ins):
    x = _float(cx, ins[0])
    ax = gc.abs(x)
    return gc.sign(x) * gc.log(ax + gc.sqrt(ax * ax + _scalar(cx, x, 1.0)))


@op("Acosh")
def _acosh(cx, ins):
    x = _float(cx, ins[0])
    return gc.log(x + gc.sqrt(x * x - _scalar(cx, x, 1.0)))


@op("Atanh")
def _atanh(cx, ins):
    x = _float(cx, ins[0])
    one = _scalar(cx, x, 1.0)
    return gc.log((one + x) / (one - x)) * _scalar(cx, x, 0.5)


@op("Elu")
def _elu(cx, ins):
    return gc.elu(_float(cx, ins[0]), alpha=float(cx.attr("alpha", 1.0)))


@op("Celu")
def _celu(cx, ins):
    x = _float(cx, ins[0])
    a = float(cx.attr("alpha", 1.0))
    return gc.maximum(x, _scalar(cx, x, 0)) + gc.minimum(_scalar(cx, x, 0), gc.expm1(x / _scalar(cx, x, a))
                                                        * _scalar(cx, x, a))


@op("Selu")
def _selu(cx, ins):
    x = _float(cx, ins[0])
    a, s = float(cx.attr("alpha", 1.67326319217681884765625)), float(cx.attr("gamma", 1.05070102214813232421875))
    neg = _scalar(cx, x, s * a) * gc.expm1(gc.minimum(x, _scalar(cx, x, 0)))
    return gc.where(gc.greater(x, _scalar(cx, x, 0)), x * _scalar(cx, x, s), neg)


@op("LeakyRelu")
def _leaky(cx, ins):
    return gc.leaky_relu(_float(cx, ins[0]), alpha=float(cx.attr("alpha", 0.01)))


@op("PRelu")
def _prelu(cx, ins):
    x, s = ins
    return gc.where(gc.less(x, _scalar(cx, x, 0)), x * s, x)


@op("ThresholdedRelu")
def _thr(cx, ins):
    x = _float(cx, ins[0])
    return gc.where(gc.greater(x, _scalar(cx, x, cx.attr("alpha", 1.0))), x, _scalar(cx, x, 0))


@op("HardSigmoid")
def _hsig(cx, ins):
    x = _float(cx, ins[0])
    y = x * _scalar(cx, x, cx.attr("alpha", 0.2)) + _scalar(cx, x, cx.attr("beta", 0.5))
    return gc.minimum(gc.maximum(y, _scalar(cx, x, 0)), _scalar(cx, x, 1))


@op("HardSwish")
def _hswish(cx, ins):
    x = _float(cx, ins[0])
    y = x * _scalar(cx, x, 1 / 6) + _scalar(cx, x, 0.5)
    return x * gc.minimum(gc.maximum(y, _scalar(cx, x, 0)), _scalar(cx, x, 1))


@op("Mish")
def _mish(cx, ins):
    x = _float(cx, ins[0])
    return x * gc.tanh(gc.softplus(x))


@op("Swish")
def _swish(cx, ins):
    x = _float(cx, ins[0])
    return x * gc.sigmoid(x * _scalar(cx, x, cx.attr("alpha", 1.0)))


@op("Gelu")
def _gelu(cx, ins):
    approx = cx.attr("approximate", "none")
    return gc.gelu(_float(cx, ins[0]), approximate=(approx == "tanh"))


@op("Shrink")
def _shrink(cx, ins):
    x = _float(cx, ins[0])
    lam, bias = float(cx.attr("lambd", 0.5)), float(cx.attr("bias", 0.0))
    zero = _scalar(cx, x, 0)
    return gc.where(gc.less(x, _scalar(cx, x, -lam)), x + _scalar(cx, x, bias),
                    gc.where(gc.greater(x, _scalar(cx, x, lam)), x - _scalar(cx, x, bias), zero))


@op("IsNaN")
def _isnan(cx, ins):
    x = _float(cx, ins[0])
    return gc.not_equal(x, x)


@op("IsInf")
def _isinf(cx, ins):
    x = _float(cx, ins[0])
    pos, neg = cx.attr("detect_positive", 1), cx.attr("detect_negative", 1)
    out = gc.equal(x, _scalar(cx, x, np.inf)) if pos else None
    if neg:
        n = gc.equal(x, _scalar(cx, x, -np.inf))
        out = n if out is None else gc.logical_or(out, n)
    return out if out is not None else gc.less(x, x)   # neither sign asked for: all False


_BINARY = {"Add": gc.add, "Sub": gc.sub, "Mul": gc.mul, "Equal": gc.equal, "Less": gc.less,
           "Greater": gc.greater, "LessOrEqual": gc.less_equal, "GreaterOrEqual": gc.greater_equal,
           "And": gc.logical_and, "Or": gc.logical_or, "Xor": gc.not_equal}


def _binary(name, fn):
    def conv(cx, ins):
        a, b = ins
        if a.dtype != b.dtype:
            raise cx.error(f"inputs have different dtypes {a.dtype.name} and {b.dtype.name}")
        if name in ("Add", "Sub", "Mul") and a.dtype.kind == "b":
            raise cx.unsupported("bool inputs are not supported", kind="dtype")
        return fn(a, b)
    CONVERTERS[name] = conv


for _n, _f in _BINARY.items():
    _binary(_n, _f)


@op("Div")
def _div(cx, ins):
    a, b = ins
    if a.dtype.kind == "f":
        return gc.div(a, b)
    if a.dtype.kind == "b":
        raise cx.unsupported("bool inputs are not supported", kind="dtype")
    # integers: truncate toward zero (C), from floor division
    q = gc.floordiv(a, b)
    zero = _scalar(cx, a, 0)
    inexact = gc.not_equal(a - q * b, zero)
    signs = gc.not_equal(gc.less(a, zero), gc.less(b, zero))
    return gc.where(gc.logical_and(inexact, signs), q + _scalar(cx, a, 1), q)


@op("Mod")
def _mod(cx, ins):
    a, b = ins
    r = gc.mod(a, b)
    if not cx.attr("fmod", 0):
        if a.dtype.kind == "f":
            raise cx.unsupported("fmod=0 needs integer inputs (the ONNX spec)", kind="attribute")
        return r
    zero = _scalar(cx, a, 0)   # C fmod: the sign of the dividend
    fix = gc.logical_and(gc.not_equal(r, zero), gc.not_equal(gc.less(r, zero), gc.less(a, zero)))
    return gc.where(fix, r - b, r)


@op("Pow")
def _pow(cx, ins):
    a, b = ins
    if b.dtype != a.dtype:
        b = gc.cast(b, a.dtype)
    if a.dtype.kind == "b":
        raise cx.unsupported("bool Pow is not supported", kind="dtype")
    return gc.pow(a, b)


@op("Max", "Min", "Sum", "Mean")
def _variadic(cx, ins):
    fn = {"Max": gc.maximum, "Min": gc.minimum, "Sum": gc.add, "Mean": gc.add}[cx.node.op_type]
    out = ins[0]
    if len(ins) == 1:
        out = gc.identity(out)
    for t in ins[1:]:
        out = fn(out, t)
    if cx.node.op_type == "Mean":
        out = out / _scalar(cx, _float(cx, out), len(ins))
    return out


@op("Where")
def _where(cx, ins):
    c, x, y = ins
    return gc.where(c, x, y)


@op("Clip")
def _clip(cx, ins):
    x = ins[0]
    if cx.opset < 11:
        lo, hi = cx.attr("min"), cx.attr("max")
        lo = None if lo is None else _scalar(cx, x, lo)
        hi = None if hi is None else _scalar(cx, x, hi)
    else:
        lo = ins[1] if len(ins) > 1 else None
        hi = ins[2] if len(ins) > 2 else None
    if lo is not None:
        x = gc.maximum(x, lo)
    if hi is not None:
        x = gc.minimum(x, hi)
    return x if (lo is not None or hi is not None) else gc.identity(x)


@op("Cast")
def _cast(cx, ins):
    return gc.cast(ins[0], dtype_of(cx.attr("to"), cx.path, cx.node.name, "Cast"))


@op("CastLike")
def _castlike(cx, ins):
    return gc.cast(ins[0], ins[1].dtype)


# -- creation ---------------------------------------------------------------------------------------------
@op("Constant")
def _constant(cx, ins):
    a = cx.attrs
    if "value" in a:
        return cx.constant(a["value"])
    for key, dt in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64),
                    ("value_ints", np.int64)):
        if key in a:
            return cx.constant(np.asarray(a[key], dtype=dt))
    raise cx.unsupported(f"attribute {', '.join(a) or '(none)'} is not supported (value, value_float(s), "
                         "value_int(s) are)")


@op("ConstantOfShape")
def _const_of_shape(cx, ins):
    v = cx.attr("value")
    v = np.zeros(1, np.float32) if v is None else v
    src = _shape_source(ins[0])
    if src is not None and any(d is None for d in src.shape):
        # the run-time shape of a tensor (graphc's own zeros_like, as exported): no rebuild per shape
        z = gc.zeros_like(src, dtype=v.dtype)
        return z if v.reshape(-1)[0] == 0 else z + cx.constant(v.reshape(-1)[0])
    shape = _ints(cx, ins[0], "shape")
    return cx.constant(np.full(shape, v.reshape(-1)[0], dtype=v.dtype))


def _shape_source(t):
    """The tensor whose whole run-time shape ``t`` is (Shape, maybe cast or fully sliced), or None."""
    from ..ir import Tensor
    g, n = t.graph, t.node
    while True:
        op_name = g.op(n)
        if op_name == "shape":
            return Tensor(g, g.inputs(n)[0])
        key = g.attrs(n).get("key") if op_name == "strided_slice" else None
        full = key is not None and len(key) == 1 and isinstance(key[0], tuple) and \
            key[0][1] in (None, 0) and key[0][2] is None and key[0][3] in (None, 1)
        if op_name not in ("cast", "identity") and not full:
            return None
        n = g.inputs(n)[0]


@op("Range")
def _range(cx, ins):
    s, l, d = (np.asarray(cx.value(t, "start/limit/delta")).reshape(()) for t in ins)
    return cx.constant(np.arange(s, l, d, dtype=ins[0].dtype).astype(ins[0].dtype))


@op("EyeLike")
def _eyelike(cx, ins):
    x = ins[0]
    if any(d is None for d in x.shape):
        raise cx.unsupported("the input shape must be static", kind="dynamic")
    dt = dtype_of(cx.attr("dtype"), cx.path, cx.node.name, "EyeLike") if cx.attr("dtype") is not None else x.dtype
    return cx.constant(np.eye(x.shape[0], x.shape[1], k=int(cx.attr("k", 0)), dtype=dt))


@op("Shape")
def _shape(cx, ins):
    x = ins[0]
    shape = x.shape
    lo, hi = cx.attr("start", 0), cx.attr("end", None)
    part = list(shape)[slice(lo, hi)]
    if any(d is None for d in part):
        return gc.cast(gc.shape(x), "int64")[lo:hi]
    return cx.constant(np.asarray(part, dtype=np.int64))


@op("Size")
def _size(cx, ins):
    x = ins[0]
    if any(d is None for d in x.shape):
        return gc.cast(gc.size(x), "int64")
    return cx.constant(np.asarray(int(np.prod(x.shape, dtype=np.int64)), dtype=np.int64))


# -- layout -----------------------------------------------------------------------------------------------
@op("Reshape")
def _reshape(cx, ins):
    x = ins[0]
    if cx.opset < 5:
        shape = list(cx.attr("shape"))
    else:
        shape = _ints(cx, ins[1], "shape")
    allowzero = cx.attr("allowzero", 0)
    out = []
    for i, d in enumerate(shape):
        if d == 0 and not allowzero:
            d = x.shape[i]
            d = -1 if d is None else d
        out.append(d)
    if out.count(-1) > 1:
        raise cx.unsupported("the target shape has more than one unknown dimension", kind="dynamic")
    return gc.reshape(x, out)


@op("Flatten")
def _flatten(cx, ins):
    x = ins[0]
    ax = int(cx.attr("axis", 1))
    ax = ax + x.ndim if ax < 0 else ax
    lead, rest = x.shape[:ax], x.shape[ax:]
    if None in rest and None in lead:
        raise cx.unsupported("unknown dimensions on both sides of the axis", kind="dynamic")
    a = -1 if None in lead else int(np.prod(lead, dtype=np.int64))
    b = -1 if None in rest else int(np.prod(rest, dtype=np.int64))
    return gc.reshape(x, [a, b])


@op("Transpose")
def _transpose(cx, ins):
    perm = cx.attr("perm")
    return gc.transpose(ins[0], list(perm) if perm is not None else None)


def _axes(cx, ins, idx=1, attr="axes", since=13):
    if cx.opset >= since:
        return None if len(ins) <= idx or ins[idx] is None else _ints(cx, ins[idx], "axes")
    v = cx.attr(attr)
    return None if v is None else [int(a) for a in v]


@op("Squeeze")
def _squeeze(cx, ins):
    x = ins[0]
    axes = _axes(cx, ins)
    if axes is None:
        if any(d is None for d in x.shape):
            raise cx.unsupported("squeezing every size-1 dimension of a shape with unknown sizes", kind="dynamic")
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = sorted(a % x.ndim for a in axes)
    return gc.reshape(x, [(-1 if d is None else d) for i, d in enumerate(x.shape) if i not in axes]) \
        if sum(d is None for d in x.shape) <= 1 else gc.squeeze(x, axes)


@op("Unsqueeze")
def _unsqueeze(cx, ins):
    x = ins[0]
    axes = _axes(cx, ins)
    r = x.ndim + len(axes)
    axes = sorted(a % r for a in axes)
    for a in axes:
        x = gc.expand_dims(x, a)
    return x


@op("Concat")
def _concat(cx, ins):
    vals = [t for t in ins if t is not None]
    if len(vals) == 1:
        return gc.identity(vals[0])
    return gc.concat(vals, axis=int(cx.attr("axis")))


@op("Split")
def _split(cx, ins):
    x = ins[0]
    ax = int(cx.attr("axis", 0)) % x.ndim
    n_out = len(cx.node.output)
    if cx.opset >= 13 and len(ins) > 1 and ins[1] is not None:
        sizes = _ints(cx, ins[1], "split")
    elif cx.opset < 13 and cx.attr("split") is not None:
        sizes = list(cx.attr("split"))
    else:
        d = x.shape[ax]
        if d is None:
            raise cx.unsupported("splitting an unknown dimension", kind="dynamic")
        k = int(cx.attr("num_outputs", n_out))
        step = -(-d // k)
        sizes = [min(step, d - i * step) for i in range(k)]
    out, lo = [], 0
    for s in sizes:
        key = [slice(None)] * ax + [slice(lo, lo + s)]
        out.append(x[tuple(key)])
        lo += s
    return out


def _slice_key(cx, x, starts, ends, axes, steps):
    key = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.ndim
        d = x.shape[a]
        if st == 0:
            raise cx.error("a slice step is 0")
        big = 2 ** 62
        if d is None:
            s2 = None if (s >= big or s <= -big) else s
            e2 = None if (e >= big or e <= -big) else e
            key[a] = slice(s2, e2, st)
            continue
        # clamp like ONNX (and numpy), then express without sentinels
        s = max(-d, min(s, d)) if st > 0 else max(-d - 1, min(s, d - 1))
        e = max(-d - 1, min(e, d))
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = max(0, min(s, d)), max(0, min(e, d))
            key[a] = slice(s, e, st) if e > s else slice(0, 0, 1)
        else:
            s = min(s, d - 1)
            key[a] = slice(s, None if e < 0 else e, st) if s > e else slice(0, 0, 1)
    return tuple(key)


@op("Slice")
def _slice(cx, ins):
    x = ins[0]
    if cx.opset < 10:
        starts, ends = list(cx.attr("starts")), list(cx.attr("ends"))
        axes = list(cx.attr("axes", range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts, ends = _ints(cx, ins[1], "starts"), _ints(cx, ins[2], "ends")
        axes = _ints(cx, ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(len(starts)))
        steps = _ints(cx, ins[4], "steps") if len(ins) > 4 and ins[4] is not None else [1] * len(starts)
    return gc.identity(x[_slice_key(cx, x, starts, ends, axes, steps)])


@op("Gather")
def _gather(cx, ins):
    x, idx = ins
    ax = int(cx.attr("axis", 0)) % x.ndim
    d = x.shape[ax]
    try:
        iv = cx.value(idx)
    except Exception:
        iv = None
    if iv is not None:
        iv = np.asarray(iv)
        if d is not None:
            iv = np.where(iv < 0, iv + d, iv)
        idx = cx.constant(iv.astype(np.int64))
    elif d is not None:
        idx = gc.where(gc.less(idx, _scalar(cx, idx, 0)), idx + _scalar(cx, idx, d), idx)
    else:
        raise cx.unsupported("data-dependent indices into a dimension of unknown size", kind="dynamic")
    return gc.gather(x, idx, axis=ax)


@op("Expand")
def _expand(cx, ins):
    x = ins[0]
    shape = _ints(cx, ins[1], "shape")
    r = max(len(shape), x.ndim)
    xs = (1,) * (r - x.ndim) + tuple(x.shape)
    ss = (1,) * (r - len(shape)) + tuple(shape)
    out = []
    for a, b in zip(xs, ss):
        if a is None:
            if b != 1:
                raise cx.unsupported("expanding an unknown dimension", kind="dynamic")
            out.append(None)
        else:
            out.append(max(a, b) if 1 in (a, b) else a)
    if None in out:
        return gc.identity(x) if r == x.ndim else gc.reshape(x, [(-1 if d is None else d) for d in xs])
    if x.ndim < r:
        x = gc.reshape(x, list(xs))
    return gc.broadcast_to(x, out)


@op("Tile")
def _tile(cx, ins):
    return gc.tile(ins[0], _ints(cx, ins[1], "repeats"))


@op("Pad")
def _pad(cx, ins):
    x = ins[0]
    mode = cx.attr("mode", "constant")
    if cx.opset < 11:
        pads, value = list(cx.attr("pads")), float(cx.attr("value", 0.0))
        axes = list(range(x.ndim))
    else:
        pads = _ints(cx, ins[1], "pads")
        value = np.asarray(cx.value(ins[2], "constant_value")).reshape(-1)[0] if len(ins) > 2 and ins[2] is not None \
            else 0
        axes = _ints(cx, ins[3], "axes") if len(ins) > 3 and ins[3] is not None else list(range(x.ndim))
    if mode not in ("constant", "reflect", "edge", "wrap"):
        raise cx.unsupported(f"mode {mode!r} is not supported (constant, reflect, edge, wrap are)")
    k = len(axes)
    p = [[0, 0] for _ in range(x.ndim)]
    for i, a in enumerate(axes):
        p[a % x.ndim] = [pads[i], pads[i + k]]
    if any(v < 0 for pr in p for v in pr):
        raise cx.unsupported("negative pads (cropping) are not supported")
    if mode in ("edge", "wrap"):   # concatenate repeated edges (edge) or the far end's slices (wrap)
        for a, (lo, hi) in enumerate(p):
            if not (lo or hi):
                continue
            d, ones = x.shape[a], [1] * x.ndim
            if d is None or (mode == "wrap" and max(lo, hi) > d):
                raise cx.unsupported(f"{mode} padding of dimension {a} (size {d}) by {lo}, {hi}")
            pre = (slice(None),) * a
            if mode == "edge":
                left = gc.tile(x[pre + (slice(0, 1),)], ones[:a] + [lo] + ones[a + 1:])
                right = gc.tile(x[pre + (slice(d - 1, d),)], ones[:a] + [hi] + ones[a + 1:])
            else:
                left, right = x[pre + (slice(d - lo, d),)], x[pre + (slice(0, hi),)]
            x = gc.concat(([left] if lo else []) + [x] + ([right] if hi else []), axis=a)
        return gc.identity(x)
    return gc.pad(x, p, mode=mode.upper(), constant_values=np.asarray(value).astype(x.dtype).item())


@op("Trilu")
def _trilu(cx, ins):
    x = ins[0]
    k = int(np.asarray(cx.value(ins[1], "k")).reshape(())) if len(ins) > 1 and ins[1] is not None else 0
    if None in x.shape[-2:]:
        raise cx.unsupported("the last two dimensions must be static", kind="dynamic")
    n, m = x.shape[-2:]
    mask = np.triu(np.ones((n, m), bool), k) if cx.attr("upper", 1) else np.tril(np.ones((n, m), bool), k)
    return gc.where(cx.constant(mask), x, cx.constant(np.zeros((), x.dtype)))


@op("OneHot")
def _onehot(cx, ins):
    idx, depth, values = ins
    d = int(np.asarray(cx.value(depth, "depth")).reshape(-1)[0])
    vals = np.asarray(cx.value(values, "values"))
    if idx.dtype.kind == "f":
        idx = gc.cast(idx, "int64")
    idx = gc.where(gc.less(idx, _scalar(cx, idx, 0)), idx + _scalar(cx, idx, d), idx)
    return gc.one_hot(idx, d, on_value=vals[1], off_value=vals[0], axis=int(cx.attr("axis", -1)),
                      dtype=vals.dtype)


@op("Dropout")
def _dropout(cx, ins):
    x = ins[0]
    if len(ins) > 2 and ins[2] is not None and bool(np.asarray(cx.value(ins[2], "training_mode"))):
        raise cx.unsupported("training_mode=True (random dropout) is not supported; inference only")
    outs = [gc.identity(x)]
    if len(cx.node.output) > 1:
        outs.append(cx.constant(np.ones([d for d in x.shape], bool)) if None not in x.shape
                    else gc.greater_equal(gc.zeros_like(x), gc.zeros_like(x)))
    return outs


# -- nn ---------------------------------------------------------------------------------------------------
@op("MatMul")
def _matmul(cx, ins):
    a, b = ins
    if a.dtype.kind != "f":
        raise cx.unsupported(f"dtype {a.dtype.name} is not supported by MatMul in graphc", kind="dtype")
    squeeze = []
    if a.ndim == 1:
        a = gc.expand_dims(a, 0)
        squeeze.append(-2)
    if b.ndim == 1:
        b = gc.expand_dims(b, -1)
        squeeze.append(-1)
    y = gc.matmul(a, b)
    for ax in squeeze:
        y = gc.squeeze(y, [y.ndim + ax if len(squeeze) == 1 or ax == -1 else y.ndim - 2])
    return y


@op("Gemm")
def _gemm(cx, ins):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    _float(cx, a)
    y = gc.matmul(a, b, transpose_a=bool(cx.attr("transA", 0)), transpose_b=bool(cx.attr("transB", 0)))
    alpha, beta = float(cx.attr("alpha", 1.0)), float(cx.attr("beta", 1.0))
    if alpha != 1.0:
        y = y * _scalar(cx, y, alpha)
    if c is not None:
        y = y + (c if beta == 1.0 else c * _scalar(cx, c, beta))
    return y


def _softmax(cx, ins, fn):
    x = _float(cx, ins[0])
    if cx.opset >= 13:
        return fn(x, axis=int(cx.attr("axis", -1)))
    ax = int(cx.attr("axis", 1)) % max(x.ndim, 1)
    if ax == x.ndim - 1:
        return fn(x, axis=-1)
    if None in x.shape:
        raise cx.unsupported("opset < 13 softmax over several axes with unknown sizes", kind="dynamic")
    flat = gc.reshape(x, [int(np.prod(x.shape[:ax], dtype=np.int64)), -1])
    return gc.reshape(fn(flat, axis=-1), list(x.shape))


@op("Softmax")
def _softmax_op(cx, ins):
    return _softmax(cx, ins, gc.nn.softmax)


@op("LogSoftmax")
def _logsoftmax_op(cx, ins):
    return _softmax(cx, ins, gc.nn.log_softmax)


@op("Hardmax")
def _hardmax(cx, ins):
    x = _float(cx, ins[0])
    ax = int(cx.attr("axis", -1 if cx.opset >= 13 else 1)) % x.ndim
    if cx.opset < 13 and ax != x.ndim - 1:
        raise cx.unsupported("opset < 13 Hardmax over several axes")
    d = x.shape[ax]
    if d is None:
        raise cx.unsupported("an unknown size along the axis", kind="dynamic")
    return gc.one_hot(gc.argmax(x, axis=ax, output_type="int64"), d, axis=ax, dtype=x.dtype)


@op("GatherElements")
def _gather_elements(cx, ins):
    """Gathers of single elements: flat offsets (a constant grid plus the indices times the axis
    stride) into the flattened data; needs static shapes."""
    x, idx = ins
    ax = int(cx.attr("axis", 0)) % x.ndim
    if None in x.shape or None in idx.shape:
        raise cx.unsupported("unknown dimensions (GatherElements needs static shapes)", kind="dynamic")
    strides = [int(np.prod(x.shape[d + 1:], dtype=np.int64)) for d in range(x.ndim)]
    grid = np.indices(idx.shape, dtype=np.int64)
    base = sum(grid[d] * strides[d] for d in range(x.ndim) if d != ax)
    i = gc.cast(idx, "int64")
    i = gc.where(gc.less(i, _scalar(cx, i, 0)), i + _scalar(cx, i, x.shape[ax]), i)
    flat = cx.constant(np.asarray(base, np.int64)) + i * _scalar(cx, i, strides[ax])
    return gc.gather(gc.reshape(x, [-1]), flat, axis=0)
