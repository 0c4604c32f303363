"""The ONNX emitter of each exportable graphc op, and the LSTM-layer rewrite ``export`` uses.

An emitter ``EMITTERS[op](ex, n, inputs, attrs) -> output name`` appends ONNX nodes to the
exporter ``ex`` for graphc node ``n`` whose inputs already have the ONNX names ``inputs``.
graphc convolutions and pools are NHWC, ONNX's NCHW: their emitters transpose around them.

    >>> "matmul" in EMITTERS and "conv2d" in EMITTERS
    True
"""
from __future__ import annotations

import numpy as np

from .errors import OnnxError
from .export import _ONNX_TYPE, EMITTERS, emitter  # noqa: F401  (EMITTERS: the table filled here)

_BIG = np.iinfo(np.int64).max


def _i64(ex, values, base="c"):
    return ex.const(np.asarray(values, np.int64), base)


def _simple(op, onnx_op):
    """Register the emitter of a graphc op that is one ONNX op with the same inputs."""
    EMITTERS[op] = lambda ex, n, ins, a: ex.node(onnx_op, ins, base=ex.g.name(n))


_simple("add", "Add")
_simple("sub", "Sub")
_simple("mul", "Mul")
_simple("div", "Div")
_simple("pow", "Pow")
_simple("maximum", "Max")
_simple("minimum", "Min")
_simple("relu", "Relu")
_simple("tanh", "Tanh")
_simple("sigmoid", "Sigmoid")
_simple("exp", "Exp")
_simple("log", "Log")
_simple("sqrt", "Sqrt")
_simple("neg", "Neg")
_simple("abs", "Abs")
_simple("erf", "Erf")
_simple("reciprocal", "Reciprocal")
_simple("floor", "Floor")
_simple("ceil", "Ceil")
_simple("sin", "Sin")
_simple("cos", "Cos")
_simple("sign", "Sign")
_simple("softplus", "Softplus")
_simple("softsign", "Softsign")
_simple("equal", "Equal")
_simple("less", "Less")
_simple("greater", "Greater")
_simple("less_equal", "LessOrEqual")
_simple("greater_equal", "GreaterOrEqual")
_simple("logical_and", "And")
_simple("logical_or", "Or")
_simple("logical_not", "Not")
_simple("where", "Where")
_simple("identity", "Identity")
_simple("stop_gradient", "Identity")
_simple("round", "Round")


@emitter("square")
def _square(ex, n, ins, a):
    return ex.node("Mul", [ins[0], ins[0]], base=ex.g.name(n))


@emitter("rsqrt")
def _rsqrt(ex, n, ins, a):
    return ex.node("Reciprocal", [ex.node("Sqrt", ins)], base=ex.g.name(n))


@emitter("squared_difference")
def _sqdiff(ex, n, ins, a):
    d = ex.node("Sub", ins)
    return ex.node("Mul", [d, d], base=ex.g.name(n))


@emitter("not_equal")
def _ne(ex, n, ins, a):
    return ex.node("Not", [ex.node("Equal", ins)], base=ex.g.name(n))


@emitter("leaky_relu")
def _leaky(ex, n, ins, a):
    return ex.node("LeakyRelu", ins, base=ex.g.name(n), alpha=float(a["alpha"]))


@emitter("elu")
def _elu(ex, n, ins, a):
    return ex.node("Elu", ins, base=ex.g.name(n), alpha=float(a["alpha"]))


@emitter("selu")
def _selu(ex, n, ins, a):
    return ex.node("Selu", ins, base=ex.g.name(n))


@emitter("gelu")
def _gelu(ex, n, ins, a):
    x = ins[0]
    dt = ex.g.spec(n).dtype
    c = lambda v: ex.const(np.asarray(v, dt))  # noqa: E731
    if a.get("approximate"):
        inner = ex.node("Mul", [c(0.7978845608028654), ex.node("Add", [x, ex.node("Mul", [c(0.044715), ex.node(
            "Mul", [x, ex.node("Mul", [x, x])])])])])
        t = ex.node("Tanh", [inner])
    else:
        t = ex.node("Erf", [ex.node("Mul", [x, c(0.7071067811865476)])])
    return ex.node("Mul", [ex.node("Mul", [c(0.5), x]), ex.node("Add", [c(1.0), t])], base=ex.g.name(n))


@emitter("cast")
def _cast(ex, n, ins, a):
    return ex.node("Cast", ins, base=ex.g.name(n), to=_ONNX_TYPE[np.dtype(a["dtype"]).name])


@emitter("softmax", "log_softmax")
def _softmax(ex, n, ins, a):
    kind = "Softmax" if ex.g.op(n) == "softmax" else "LogSoftmax"
    return ex.node(kind, ins, base=ex.g.name(n), axis=int(a.get("axis", -1)))


@emitter("matmul")
def _matmul(ex, n, ins, a):
    x, y = ins
    g = ex.g
    xs, ys = g.inputs(n)
    for flag, nm, node in (("transpose_a", 0, xs), ("transpose_b", 1, ys)):
        if a.get(flag):
            r = len(g.spec(node).shape)
            perm = list(range(r - 2)) + [r - 1, r - 2]
            t = ex.node("Transpose", [ins[nm]], perm=perm)
            x, y = (t, y) if nm == 0 else (x, t)
    return ex.node("MatMul", [x, y], base=g.name(n))


@emitter("reshape")
def _reshape(ex, n, ins, a):
    return ex.node("Reshape", [ins[0], ex.shape_input(a["shape"])], base=ex.g.name(n))


@emitter("reshape_like")
def _reshape_like(ex, n, ins, a):
    return ex.node("Reshape", [ins[0], ex.node("Shape", [ins[1]])], base=ex.g.name(n))


@emitter("transpose")
def _transpose(ex, n, ins, a):
    return ex.node("Transpose", ins, base=ex.g.name(n), perm=[int(p) for p in a["perm"]])


@emitter("expand_dims")
def _expand_dims(ex, n, ins, a):
    return ex.node("Unsqueeze", [ins[0], _i64(ex, [int(a["axis"])])], base=ex.g.name(n))


@emitter("squeeze")
def _squeeze(ex, n, ins, a):
    axes = a.get("axis")
    if axes is None:
        return ex.node("Squeeze", [ins[0]], base=ex.g.name(n))
    return ex.node("Squeeze", [ins[0], _i64(ex, list(axes))], base=ex.g.name(n))


@emitter("concat")
def _concat(ex, n, ins, a):
    return ex.node("Concat", ins, base=ex.g.name(n), axis=int(a["axis"]))


@emitter("stack")
def _stack(ex, n, ins, a):
    ax = _i64(ex, [int(a["axis"])])
    return ex.node("Concat", [ex.node("Unsqueeze", [t, ax]) for t in ins], base=ex.g.name(n), axis=int(a["axis"]))


@emitter("gather")
def _gather(ex, n, ins, a):
    return ex.node("Gather", ins, base=ex.g.name(n), axis=int(a["axis"]))


@emitter("tile")
def _tile(ex, n, ins, a):
    return ex.node("Tile", [ins[0], _i64(ex, list(a["multiples"]))], base=ex.g.name(n))


@emitter("broadcast_to")
def _broadcast_to(ex, n, ins, a):
    return ex.node("Expand", [ins[0], ex.shape_input([1 if d is None else d for d in a["shape"]])],
                   base=ex.g.name(n))


@emitter("pad")
def _pad(ex, n, ins, a):
    p = [int(v) for v in np.asarray(a["paddings"]).reshape(-1, 2)[:, 0]] + \
        [int(v) for v in np.asarray(a["paddings"]).reshape(-1, 2)[:, 1]]
    mode = {"CONSTANT": "constant", "REFLECT": "reflect"}.get(a.get("mode", "CONSTANT"))
    if mode is None:
        raise ex.fail(n, f"pad mode {a.get('mode')!r} has no ONNX equivalent")
    cv = ex.const(np.asarray(a.get("constant_values", 0), ex.g.spec(n).dtype))
    return ex.node("Pad", [ins[0], _i64(ex, p), cv], base=ex.g.name(n), mode=mode)


def _reduction(op, kind):
    """Register the emitter of graphc reduction ``op`` as ONNX ``kind`` (axes an input from opset 13
    for ReduceSum, 18 for the others)."""
    EMITTERS[op] = lambda ex, n, ins, a: _reduce(ex, n, ins, a, kind)


def _reduce(ex, n, ins, a, kind):
    axes = a.get("axis")
    keep = int(bool(a.get("keepdims", False)))
    if axes is None:
        return ex.node(kind, ins, base=ex.g.name(n), keepdims=keep)
    if kind == "ReduceSum" or ex.opset >= 18:
        return ex.node(kind, [ins[0], _i64(ex, list(axes))], base=ex.g.name(n), keepdims=keep)
    return ex.node(kind, ins, base=ex.g.name(n), axes=[int(v) for v in axes], keepdims=keep)


_reduction("reduce_sum", "ReduceSum")
_reduction("reduce_mean", "ReduceMean")
_reduction("reduce_max", "ReduceMax")
_reduction("reduce_min", "ReduceMin")
_reduction("reduce_prod", "ReduceProd")


@emitter("argmax", "argmin")
def _arg(ex, n, ins, a):
    kind = "ArgMax" if ex.g.op(n) == "argmax" else "ArgMin"
    y = ex.node(kind, ins, axis=int(a["axis"]), keepdims=0)
    dt = ex.g.spec(n).dtype
    return y if dt == np.int64 else ex.node("Cast", [y], base=ex.g.name(n), to=_ONNX_TYPE[dt.name])


@emitter("strided_slice")
def _strided_slice(ex, n, ins, a):
    g = ex.g
    x = ins[0]
    starts, ends, axes, steps, squeeze, newaxes = [], [], [], [], [], []
    dim, out_pos = 0, 0
    for k in a["key"]:
        if k is None:
            newaxes.append(out_pos)
            out_pos += 1
            continue
        if isinstance(k, tuple):
            s, e, st = k[1], k[2], (1 if k[3] is None else k[3])
            if not (s in (None, 0) and e is None and st == 1):
                starts.append(s if s is not None else (0 if st > 0 else _BIG))
                ends.append(e if e is not None else (_BIG if st > 0 else -_BIG - 1))
                axes.append(dim)
                steps.append(st)
            out_pos += 1
        else:
            starts.append(int(k))
            ends.append(int(k) + 1 if k != -1 else _BIG)
            axes.append(dim)
            steps.append(1)
            squeeze.append(dim)
        dim += 1
    y = x
    if axes:
        y = ex.node("Slice", [y, _i64(ex, starts), _i64(ex, ends), _i64(ex, axes), _i64(ex, steps)])
    if squeeze:
        y = ex.node("Squeeze", [y, _i64(ex, squeeze)])
    if newaxes:
        y = ex.node("Unsqueeze", [y, _i64(ex, newaxes)])
    return ex.node("Identity", [y], base=g.name(n))


def _nchw(ex, x):
    return ex.node("Transpose", [x], perm=[0, 3, 1, 2])


def _same_pads(ex, n, x_node, k, s, d):
    h, w = ex.g.spec(x_node).shape[1:3]
    if h is None or w is None:
        raise ex.fail(n, "SAME padding over an unknown spatial size")
    pads = []
    for size, kk, ss, dd in ((h, k[0], s[0], d[0]), (w, k[1], s[1], d[1])):
        out = -(-size // ss)
        total = max(0, (out - 1) * ss + (kk - 1) * dd + 1 - size)
        pads.append((total // 2, total - total // 2))   # TensorFlow: the extra one at the end
    return [pads[0][0], pads[1][0], pads[0][1], pads[1][1]]


@emitter("conv2d")
def _conv2d(ex, n, ins, a):
    g = ex.g
    x_node, f_node = g.inputs(n)
    kh, kw = g.spec(f_node).shape[:2]
    s, d = list(a["strides"]), list(a.get("dilations", (1, 1)))
    pads = _same_pads(ex, n, x_node, (kh, kw), s, d) if a["padding"] == "SAME" else [0, 0, 0, 0]
    w = ex.node("Transpose", [ins[1]], perm=[3, 2, 0, 1])   # HWIO -> OIHW
    y = ex.node("Conv", [_nchw(ex, ins[0]), w], kernel_shape=[kh, kw], strides=s, dilations=d, pads=pads)
    return ex.node("Transpose", [y], base=g.name(n), perm=[0, 2, 3, 1])


@emitter("max_pool2d", "avg_pool2d")
def _pool(ex, n, ins, a):
    g = ex.g
    k, s = list(a["ksize"]), list(a["strides"])
    pads = _same_pads(ex, n, g.inputs(n)[0], k, s, (1, 1)) if a["padding"] == "SAME" else [0, 0, 0, 0]
    kind = "MaxPool" if g.op(n) == "max_pool2d" else "AveragePool"
    y = ex.node(kind, [_nchw(ex, ins[0])], kernel_shape=k, strides=s, pads=pads)
    return ex.node("Transpose", [y], base=g.name(n), perm=[0, 2, 3, 1])


@emitter("lstm_cell")
def _lstm_cell(ex, n, ins, a):
    """[h | c] from the gate pre-activations z = [i f g o] and the cell state (graphc's fused step)."""
    g = ex.g
    a = g.attrs(n)
    z = ins[0]
    if a.get("z_bias"):         # (z + b) + w: the order the unrolled graph adds them in
        z, ins = ex.node("Add", [z, ins[-1]]), ins[:-1]
    if a.get("z_sum"):
        z, ins = ex.node("Add", [z, ins[-1]]), ins[:-1]
    u = g.spec(g.inputs(n)[0]).shape[1] // 4
    parts = ex.node("Split", [z, _i64(ex, [u] * 4)], n_out=4, axis=1)
    i, f, gg, o = (ex.node("Sigmoid", [parts[0]]), ex.node("Sigmoid", [parts[1]]), ex.node("Tanh", [parts[2]]),
                   ex.node("Sigmoid", [parts[3]]))
    c = ex.node("Mul", [i, gg])
    if len(ins) == 2:
        c = ex.node("Add", [ex.node("Mul", [f, ins[1]]), c])
    h = ex.node("Mul", [o, ex.node("Tanh", [c])])
    return ex.node("Concat", [h, c] + ([i, f, gg, o] if a.get("gates") else []), base=g.name(n), axis=1)


# -- LSTM layers as one ONNX LSTM node ---------------------------------------------------------------------
def _in_scope(name, scope):
    return name.startswith(scope + "/") or ("/" + scope + "/") in name


def absorb_lstm_layers(model, g, feeds, fetches, state, path):
    """{output node: (emit, covered nodes, [input node])} for each LSTM layer of ``model`` (default activations) in
    the program: its scan (or unrolled steps) becomes one ONNX LSTM node over a symbolic time axis."""
    from ..layers.recurrent import LSTM
    out = {}
    order = g.topo_order(fetches, stop=set(feeds))
    fetch_set, needed = set(fetches), set(order)
    for layer in getattr(model, "layers", []):
        if not isinstance(layer, LSTM) or not layer._fused() or layer.go_backwards or layer.return_state:
            continue
        nodes = [n for n in order if g.op(n) not in ("variable", "constant") and _in_scope(g.name(n), layer.name)]
        if not nodes:
            continue
        ns = set(nodes)
        srcs = {i for n in nodes for i in g.inputs(n) if i not in ns and g.op(i) not in ("variable", "constant")}
        sinks = [n for n in nodes if n in fetch_set or any(c not in ns and c in needed for c, _ in g.consumers(n))]
        if len(srcs) != 1 or len(sinks) != 1:
            raise OnnxError(path, layer.name, "LSTM", f"cannot find the layer's single input and output in the "
                            f"graph ({len(srcs)} inputs, {len(sinks)} outputs)")
        weights = {}
        for w, key in ((layer.kernel, "W"), (layer.recurrent_kernel, "R"), (layer.bias, "B")):
            if w is None:
                continue
            name = w.name if hasattr(w, "name") else None
            name = name.split(":")[0] if name else None
            if name not in state:
                raise OnnxError(path, layer.name, "LSTM", f"no value for weight {name!r}")
            weights[key] = np.asarray(state[name])
        (src,) = srcs
        out[sinks[0]] = (_lstm_emit(layer, src, weights), ns, [src])
    return out


def _lstm_emit(layer, src, weights):
    u = layer.units

    def iofc(m):   # Keras gate order i f c o -> ONNX's i o f c, along the last axis
        return np.concatenate([m[..., :u], m[..., 3 * u:], m[..., u:2 * u], m[..., 2 * u:3 * u]], axis=-1)

    def emit(ex):
        x = ex.names[src]
        xt = ex.node("Transpose", [x], perm=[1, 0, 2])
        w = ex.const(iofc(weights["W"]).T[None].astype(np.float32), f"{layer.name}/W")
        r = ex.const(iofc(weights["R"]).T[None].astype(np.float32), f"{layer.name}/R")
        ins = [xt, w, r]
        if "B" in weights:
            b = iofc(weights["B"]).astype(np.float32)
            ins.append(ex.const(np.concatenate([b, np.zeros_like(b)])[None], f"{layer.name}/B"))
        y, y_h, _ = ex.node("LSTM", ins, n_out=3, base=layer.name, hidden_size=u)
        if layer.return_sequences:
            y = ex.node("Squeeze", [y, _i64(ex, [1])])
            return ex.node("Transpose", [y], base=layer.name, perm=[1, 0, 2])
        return ex.node("Squeeze", [y_h, _i64(ex, [0])], base=layer.name)
    return emit


from . import emitters_control  # noqa: E402,F401  (scan, while_loop, cond: their emitters)
