"""Converters of ONNX's neural-network ops (Conv, pooling, normalizations), added to ``CONVERTERS``.

ONNX is NCHW, graphc's convolutions and pools NHWC: a converter transposes around them (the
optimizer removes transpose pairs between consecutive layers). Explicit pads become a ``gc.pad``.

    >>> from graphc.onnx.converters import CONVERTERS
    >>> "Conv" in CONVERTERS and "BatchNormalization" in CONVERTERS
    True
"""
from __future__ import annotations

import numpy as np

import graphc as gc

from .converters import _float, _scalar, op


def _spatial(cx, x, what):
    if x.ndim not in (3, 4):
        raise cx.unsupported(f"{what} over {x.ndim - 2} spatial dimensions is not supported (1 or 2 are)")
    return x.ndim - 2


def _pads(cx, x, kernel, strides, dil, nsp):
    auto = cx.attr("auto_pad", "NOTSET")
    pads = list(cx.attr("pads", [0] * (2 * nsp)))
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        pads = [0] * (2 * nsp)
        for i in range(nsp):
            d = x.shape[2 + i]
            if d is None:
                raise cx.unsupported("auto_pad with an unknown spatial size", kind="dynamic")
            out = -(-d // strides[i])
            total = max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dil[i] + 1 - d)
            lo = total // 2 if auto == "SAME_UPPER" else total - total // 2
            pads[i], pads[i + nsp] = lo, total - lo
    elif auto == "VALID":
        pads = [0] * (2 * nsp)
    elif auto != "NOTSET":
        raise cx.unsupported(f"auto_pad {auto!r} is not supported")
    return pads


def _to_nhwc(x, nsp):
    if nsp == 1:
        x = gc.expand_dims(x, 2)
    return gc.transpose(x, [0, 2, 3, 1])


def _from_nhwc(y, nsp):
    y = gc.transpose(y, [0, 3, 1, 2])
    return gc.squeeze(y, [2]) if nsp == 1 else y


def _pad_nhwc(x, pads, nsp, value=0.0):
    if not any(pads):
        return x
    if nsp == 1:
        p = [[0, 0], [0, 0], [pads[0], pads[1]], [0, 0]]
    else:
        p = [[0, 0], [pads[0], pads[2]], [pads[1], pads[3]], [0, 0]]
    return gc.pad(x, p, constant_values=np.asarray(value).astype(x.dtype).item())


@op("Conv")
def _conv(cx, ins):
    x, w = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    _float(cx, x)
    nsp = _spatial(cx, x, "Conv")
    groups = int(cx.attr("group", 1))
    if groups != 1:   # one convolution per group of channels (a grouped conv op would be one kernel)
        cin, cout = x.shape[1], w.shape[0]
        if cin is None or cin % groups or cout % groups:
            raise cx.unsupported(f"group={groups} with {cin} input / {cout} output channels")
        ci, co = cin // groups, cout // groups
        outs = []
        for k in range(groups):
            cx.attrs = {**cx.attrs, "group": 1}
            outs.append(_conv(cx, [x[:, k * ci:(k + 1) * ci], w[k * co:(k + 1) * co],
                                   None if b is None else b[k * co:(k + 1) * co]]))
        cx.attrs = {**cx.attrs, "group": groups}
        return gc.concat(outs, axis=1)
    kernel = list(cx.attr("kernel_shape", w.shape[2:]))
    strides = list(cx.attr("strides", [1] * nsp))
    dil = list(cx.attr("dilations", [1] * nsp))
    if any(s != 1 for s in strides) and any(d != 1 for d in dil):
        raise cx.unsupported("strides and dilations both > 1 are not supported")
    pads = _pads(cx, x, kernel, strides, dil, nsp)
    xh = _pad_nhwc(_to_nhwc(x, nsp), pads, nsp)
    wf = gc.transpose(gc.expand_dims(w, 2) if nsp == 1 else w, [2, 3, 1, 0])   # OIHW -> HWIO
    if nsp == 1:
        strides, dil = [1] + strides, [1] + dil
    y = gc.nn.conv2d(xh, wf, strides=tuple(strides), padding="VALID", dilations=tuple(dil))
    if b is not None:
        y = y + b
    return _from_nhwc(y, nsp)


def _pool_common(cx, x, what):
    nsp = _spatial(cx, x, what)
    kernel = list(cx.attr("kernel_shape"))
    strides = list(cx.attr("strides", [1] * nsp))
    if any(d != 1 for d in cx.attr("dilations", [1] * nsp)):
        raise cx.unsupported("dilations are not supported for pooling")
    pads = _pads(cx, x, kernel, strides, [1] * nsp, nsp)
    if cx.attr("ceil_mode", 0):
        if what != "MaxPool":   # the partial last window would average fewer elements
            raise cx.unsupported("ceil_mode=1 is not supported (it is for MaxPool)")
        for i in range(nsp):    # pad the end so the last, partial window exists (-inf never wins)
            size, k, st = x.shape[2 + i], kernel[i], strides[i]
            if size is None:
                raise cx.unsupported("ceil_mode=1 over an unknown spatial size", kind="dynamic")
            total = size + pads[i] + pads[nsp + i]
            out = -(-(total - k) // st) + 1
            if (out - 1) * st >= size + pads[i]:   # a window may not start in the end padding
                out -= 1
            pads[nsp + i] += max(0, (out - 1) * st + k - total)
    if nsp == 1:
        kernel, strides = [1] + kernel, [1] + strides
    return nsp, kernel, strides, pads


@op("MaxPool")
def _maxpool(cx, ins):
    x = _float(cx, ins[0])
    if len(cx.node.output) > 1 and cx.node.output[1]:
        raise cx.unsupported("the Indices output is not supported")
    if cx.attr("storage_order", 0):
        raise cx.unsupported("storage_order=1 is not supported")
    nsp, k, s, pads = _pool_common(cx, x, "MaxPool")
    xh = _pad_nhwc(_to_nhwc(x, nsp), pads, nsp, value=-np.inf)
    return _from_nhwc(gc.nn.max_pool2d(xh, tuple(k), tuple(s), padding="VALID"), nsp)


@op("AveragePool")
def _avgpool(cx, ins):
    x = _float(cx, ins[0])
    nsp, k, s, pads = _pool_common(cx, x, "AveragePool")
    xh = _to_nhwc(x, nsp)
    if any(pads) and not cx.attr("count_include_pad", 0):
        # average of the real elements only: divide window sums of the padded input by window counts
        ones = gc.ones_like(xh)
        num = gc.nn.avg_pool2d(_pad_nhwc(xh, pads, nsp), tuple(k), tuple(s), padding="VALID")
        den = gc.nn.avg_pool2d(_pad_nhwc(ones, pads, nsp), tuple(k), tuple(s), padding="VALID")
        return _from_nhwc(num / den, nsp)
    y = gc.nn.avg_pool2d(_pad_nhwc(xh, pads, nsp), tuple(k), tuple(s), padding="VALID")
    return _from_nhwc(y, nsp)


@op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(cx, ins):
    x = _float(cx, ins[0])
    axes = tuple(range(2, x.ndim))
    fn = gc.reduce_mean if cx.node.op_type == "GlobalAveragePool" else gc.reduce_max
    return fn(x, axis=axes, keepdims=True)


def _bcast_channel(t, ndim):
    """A per-channel (C,) tensor shaped (C, 1, ..., 1) to broadcast against (N, C, ...)."""
    return gc.reshape(t, [-1] + [1] * (ndim - 2)) if ndim > 2 else t


@op("BatchNormalization")
def _batchnorm(cx, ins):
    x, scale, bias, mean, var = ins[:5]
    _float(cx, x)
    if cx.attr("training_mode", 0) or len([o for o in cx.node.output if o]) > 1:
        raise cx.unsupported("training mode (batch statistics outputs) is not supported; inference only")
    eps = _scalar(cx, x, cx.attr("epsilon", 1e-5))
    r = x.ndim
    inv = gc.rsqrt(_bcast_channel(var, r) + eps) * _bcast_channel(scale, r)
    return (x - _bcast_channel(mean, r)) * inv + _bcast_channel(bias, r)


@op("InstanceNormalization")
def _instnorm(cx, ins):
    x, scale, bias = ins
    _float(cx, x)
    axes = tuple(range(2, x.ndim))
    m = gc.reduce_mean(x, axis=axes, keepdims=True)
    v = gc.reduce_mean(gc.square(x - m), axis=axes, keepdims=True)
    y = (x - m) * gc.rsqrt(v + _scalar(cx, x, cx.attr("epsilon", 1e-5)))
    return y * _bcast_channel(scale, x.ndim) + _bcast_channel(bias, x.ndim)


@op("LayerNormalization")
def _layernorm(cx, ins):
    x, scale = ins[0], ins[1]
    b = ins[2] if len(ins) > 2 else None
    _float(cx, x)
    if int(cx.attr("stash_type", 1)) != 1 and x.dtype != np.float64:
        raise cx.unsupported("stash_type other than float32 is not supported")
    ax = int(cx.attr("axis", -1)) % x.ndim
    axes = tuple(range(ax, x.ndim))
    m = gc.reduce_mean(x, axis=axes, keepdims=True)   # a moments op would compute both in one pass
    d = x - m
    v = gc.reduce_mean(d * d, axis=axes, keepdims=True)
    inv = gc.rsqrt(v + _scalar(cx, x, cx.attr("epsilon", 1e-5)))
    y = d * inv * scale
    return [y + b if b is not None else y, m, inv]


@op("RMSNormalization")
def _rmsnorm(cx, ins):
    x, scale = ins[0], ins[1]
    _float(cx, x)
    ax = int(cx.attr("axis", -1)) % x.ndim
    if int(cx.attr("stash_type", 1)) != 1 and x.dtype != np.float64:
        raise cx.unsupported("stash_type other than float32 is not supported")
    axes = tuple(range(ax, x.ndim))
    ms = gc.reduce_mean(x * x, axis=axes, keepdims=True)
    return x * gc.rsqrt(ms + _scalar(cx, x, cx.attr("epsilon", 1e-5))) * scale


@op("MeanVarianceNormalization")
def _mvn(cx, ins):
    x = _float(cx, ins[0])
    axes = tuple(a % x.ndim for a in cx.attr("axes", [0, 2, 3]))
    m = gc.reduce_mean(x, axis=axes, keepdims=True)
    d = x - m
    v = gc.reduce_mean(d * d, axis=axes, keepdims=True)
    return d / (gc.sqrt(v) + _scalar(cx, x, 1e-9))


@op("LpNormalization")
def _lpnorm(cx, ins):
    x = _float(cx, ins[0])
    ax, p = int(cx.attr("axis", -1)), int(cx.attr("p", 2))
    if p == 1:
        n = gc.reduce_sum(gc.abs(x), axis=ax, keepdims=True)
    elif p == 2:
        n = gc.sqrt(gc.reduce_sum(x * x, axis=ax, keepdims=True))
    else:
        raise cx.unsupported(f"p={p} is not supported (1 or 2)")
    return gc.where(gc.equal(n, _scalar(cx, x, 0)), gc.zeros_like(x), x / n)


def _rnn_inputs(cx, ins, gates):
    """Common checks and inputs of RNN/GRU/LSTM: time-major x (T, B, D), W, R, B, initial h (or None)."""
    ins = list(ins) + [None] * (8 - len(ins))
    x, w, r, b, seq_lens, h0 = ins[:6]
    _float(cx, x)
    for a in ("clip", "activation_alpha", "activation_beta"):
        if cx.attr(a) is not None:
            raise cx.unsupported(f"attribute {a} is not supported")
    if cx.attr("direction", "forward") != "forward":
        raise cx.unsupported(f"direction {cx.attr('direction')!r} is not supported (forward is)")
    acts = cx.attr("activations")
    default = {1: ["tanh"], 3: ["sigmoid", "tanh"], 4: ["sigmoid", "tanh", "tanh"]}[gates]
    if acts is not None and [a.lower() for a in acts] != default:
        raise cx.unsupported(f"activations {acts} are not supported ({default} are)")
    if cx.attr("layout", 0):
        x = gc.transpose(x, [1, 0, 2])
        h0 = None if h0 is None else gc.transpose(h0, [1, 0, 2])
    t_len = x.shape[0]
    if t_len is None:
        raise cx.unsupported("an unknown sequence length (graphc unrolls the time loop)", kind="dynamic")
    if seq_lens is not None:
        lens = np.asarray(cx.value(seq_lens, "sequence_lens"))
        if not np.all(lens == t_len):
            raise cx.unsupported("sequence_lens shorter than the time axis are not supported")
    u = int(cx.attr("hidden_size", r.shape[-1]))
    return x, w, r, b, (None if h0 is None else h0[0]), t_len, u, ins[6:]


def _rnn_outputs(cx, hs, h, extra=()):
    """Y (T, 1, B, u) and Y_h (1, B, u) (and more final states), in the node's layout."""
    y = gc.expand_dims(gc.stack(hs, axis=0), 1)
    finals = [gc.expand_dims(t, 0) for t in (h,) + tuple(extra)]
    if cx.attr("layout", 0):
        y = gc.transpose(y, [2, 0, 1, 3])
        finals = [gc.transpose(t, [1, 0, 2]) for t in finals]
    return [y] + finals


def _input_part(x, w, d, t_len, k, u):
    """x @ W_k^T + Wb_k for gate block k, time-major (T, B, u)."""
    z = gc.matmul(gc.reshape(x, [-1, d]), gc.transpose(w[0][k * u:(k + 1) * u]))
    return gc.reshape(z, [t_len, -1, u])


@op("RNN")
def _rnn(cx, ins):
    x, w, r, b, h, t_len, u, _ = _rnn_inputs(cx, ins, 1)
    d = x.shape[2]
    zx = _input_part(x, w, d, t_len, 0, u)
    if b is not None:
        zx = zx + (b[0][:u] + b[0][u:])
    rt = gc.transpose(r[0])
    hs = []
    for t in range(t_len):
        z = zx[t] if h is None else zx[t] + gc.matmul(h, rt)
        h = gc.tanh(z)
        hs.append(h)
    return _rnn_outputs(cx, hs, h)


@op("GRU")
def _gru(cx, ins):
    x, w, r, b, h, t_len, u, _ = _rnn_inputs(cx, ins, 3)
    d = x.shape[2]
    lbr = int(cx.attr("linear_before_reset", 0))
    xz, xr, xh = (_input_part(x, w, d, t_len, k, u) for k in range(3))
    if b is not None:   # ONNX gate order z, r, h; B = [Wb | Rb]
        wb, rb = b[0][:3 * u], b[0][3 * u:]
        xz, xr = xz + (wb[:u] + rb[:u]), xr + (wb[u:2 * u] + rb[u:2 * u])
        xh = xh + wb[2 * u:]
        rbh = rb[2 * u:]
    else:
        rbh = None
    rz, rr, rh = (gc.transpose(r[0][k * u:(k + 1) * u]) for k in range(3))
    one = _scalar(cx, x, 1.0)
    hs = []
    for t in range(t_len):
        if h is None:
            h = gc.zeros_like(xz[t])
        z = gc.sigmoid(xz[t] + gc.matmul(h, rz))
        rg = gc.sigmoid(xr[t] + gc.matmul(h, rr))
        if lbr:
            hr = gc.matmul(h, rh)
            hr = hr + rbh if rbh is not None else hr
            hh = gc.tanh(xh[t] + rg * hr)
        else:
            hr = gc.matmul(rg * h, rh)
            hh = gc.tanh(xh[t] + (hr + rbh if rbh is not None else hr))
        h = (one - z) * hh + z * h
        hs.append(h)
    return _rnn_outputs(cx, hs, h)


@op("LSTM")
def _lstm(cx, ins):
    """Unrolled over the (static) time axis; each step is graphc's fused ``lstm_cell``."""
    x, w, r, b, h, t_len, u, (c0, peep) = _rnn_inputs(cx, ins, 4)
    if cx.attr("input_forget", 0):
        raise cx.unsupported("input_forget=1 is not supported")
    if peep is not None:
        raise cx.unsupported("peephole weights (input P) are not supported")
    d = x.shape[2]

    def ifco(m):   # ONNX gate order i o f c (rows) -> graphc's lstm_cell columns i f c o
        return gc.concat([m[:, :u], m[:, 2 * u:3 * u], m[:, 3 * u:], m[:, u:2 * u]], axis=1)

    wt = ifco(gc.transpose(w[0]))           # (d, 4u)
    rt = ifco(gc.transpose(r[0]))           # (u, 4u)
    zx = gc.matmul(gc.reshape(x, [-1, d]), wt)
    if b is not None:
        bias = b[0][None, :]
        zx = zx + ifco(bias[:, :4 * u] + bias[:, 4 * u:])
    zx = gc.reshape(zx, [t_len, -1, 4 * u])
    c = None if c0 is None else (gc.transpose(c0, [1, 0, 2]) if cx.attr("layout", 0) else c0)[0]
    hs = []
    for t in range(t_len):
        z = zx[t]
        if h is not None:
            z = z + gc.matmul(h, rt)
        hc = gc.nn.lstm_cell(z, c)
        h, c = hc[:, :u], hc[:, u:]
        hs.append(h)
    return _rnn_outputs(cx, hs, h, (c,))


@op("DepthToSpace", "SpaceToDepth")
def _depth_space(cx, ins):
    x = ins[0]
    bs = int(cx.attr("blocksize"))
    if x.ndim != 4 or None in x.shape[1:]:
        raise cx.unsupported("needs a 4-D input with static C, H, W", kind="dynamic")
    _, c, h, w = x.shape
    if cx.node.op_type == "SpaceToDepth":
        y = gc.reshape(x, [-1, c, h // bs, bs, w // bs, bs])
        y = gc.transpose(y, [0, 3, 5, 1, 2, 4])
        return gc.reshape(y, [-1, c * bs * bs, h // bs, w // bs])
    if cx.attr("mode", "DCR") == "DCR":
        y = gc.transpose(gc.reshape(x, [-1, bs, bs, c // (bs * bs), h, w]), [0, 3, 4, 1, 5, 2])
    else:
        y = gc.transpose(gc.reshape(x, [-1, c // (bs * bs), bs, bs, h, w]), [0, 1, 4, 2, 5, 3])
    return gc.reshape(y, [-1, c // (bs * bs), h * bs, w * bs])


@op("GroupNormalization")
def _groupnorm(cx, ins):
    x, scale, bias = ins
    _float(cx, x)
    g = int(cx.attr("num_groups"))
    if None in x.shape[1:]:
        raise cx.unsupported("needs static channel and spatial sizes", kind="dynamic")
    c = x.shape[1]
    if int(cx.attr("stash_type", 1)) != 1 and x.dtype != np.float64:
        raise cx.unsupported("stash_type other than float32 is not supported")
    xg = gc.reshape(x, [-1, g, int(np.prod(x.shape[1:], dtype=np.int64)) // g])
    m = gc.reduce_mean(xg, axis=2, keepdims=True)
    dlt = xg - m
    v = gc.reduce_mean(dlt * dlt, axis=2, keepdims=True)
    y = gc.reshape(dlt * gc.rsqrt(v + _scalar(cx, x, cx.attr("epsilon", 1e-5))), [-1] + list(x.shape[1:]))
    if cx.opset < 21:   # scale and bias per group
        scale = gc.reshape(gc.tile(gc.reshape(scale, [g, 1]), [1, c // g]), [c])
        bias = gc.reshape(gc.tile(gc.reshape(bias, [g, 1]), [1, c // g]), [c])
    return y * _bcast_channel(scale, x.ndim) + _bcast_channel(bias, x.ndim)


# -- Resize / Upsample: separable, one (out, in) interpolation matrix per resized axis -------------------
def _source_coords(mode, out_len, in_len, scale):
    """ONNX's coordinate_transformation_mode: each output index's position in the input."""
    y = np.arange(out_len, dtype=np.float64)
    out_w = scale * in_len
    if mode == "align_corners":
        return np.zeros(out_len) if out_w == 1 else y * (in_len - 1) / (out_w - 1)
    if mode == "asymmetric":
        return y / scale
    if mode == "pytorch_half_pixel":
        return np.full(out_len, -0.5) if out_w == 1 else (y + 0.5) / scale - 0.5
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / out_w)
        return offset + (y + 0.5) / scale - 0.5
    raise ValueError(mode)


def _kernel(mode, ratio, nearest, a):
    """Weights of the window around a source position, ``ratio`` its distance past the window's left
    centre (1.0 at exact integers: the left pixel wins)."""
    if mode == "nearest":
        if ratio == 1.0:
            return [0.0, 1.0]
        right = {"round_prefer_floor": ratio > 0.5, "round_prefer_ceil": ratio >= 0.5, "floor": False,
                 "ceil": True}[nearest]
        return [0.0, 1.0] if right else [1.0, 0.0]
    if mode == "linear":
        return [1 - ratio, ratio]
    r, s = ratio, 1 - ratio   # cubic convolution (Keys), coefficient a
    return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
            ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * s - (a + 3)) * s * s + 1,
            ((a * (s + 1) - 5 * a) * (s + 1) + 8 * a) * (s + 1) - 4 * a]


def resize_matrix(mode, coord, in_len, out_len, scale, nearest="round_prefer_floor", a=-0.75, exclude=False):
    """The (out_len, in_len) matrix of a 1-D resize (edge samples repeat past the borders).

        >>> resize_matrix("linear", "align_corners", 2, 3, 1.5).tolist()
        [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]
    """
    x = _source_coords(coord, out_len, in_len, scale)
    m = np.zeros((out_len, in_len))
    for i, xo in enumerate(x):
        fl = np.floor(xo)
        exact = xo == fl
        w = np.asarray(_kernel(mode, 1.0 if exact else xo - fl, nearest, a))
        n = len(w)
        start = int(fl) - n // 2 + (0 if exact else 1)
        idx = np.arange(start, start + n)
        if exclude:
            w = np.where((idx < 0) | (idx >= in_len), 0.0, w)
            w = w / (w.sum() or 1.0)
        np.add.at(m[i], np.clip(idx, 0, in_len - 1), w)
    return m


@op("Resize", "Upsample")
def _resize(cx, ins):
    x = ins[0]
    if None in x.shape:
        raise cx.unsupported("Resize needs static input shapes", kind="dynamic")
    legacy = cx.node.op_type == "Upsample" or cx.opset < 11
    mode = cx.attr("mode", "nearest")
    if mode not in ("nearest", "linear", "cubic") or (legacy and mode == "cubic"):
        raise cx.unsupported(f"mode {mode!r} is not supported")
    coord = "asymmetric" if legacy else cx.attr("coordinate_transformation_mode", "half_pixel")
    nearest = "floor" if legacy else cx.attr("nearest_mode", "round_prefer_floor")
    if coord == "tf_crop_and_resize":
        raise cx.unsupported("coordinate_transformation_mode 'tf_crop_and_resize' is not supported")
    if cx.attr("antialias", 0):
        raise cx.unsupported("antialias=1 is not supported")
    if legacy:
        scales = list(cx.attr("scales")) if cx.attr("scales") is not None else \
            [float(v) for v in np.asarray(cx.value(ins[1], "scales")).reshape(-1)]
        sizes = None
    else:
        sc = ins[2] if len(ins) > 2 else None
        sz = ins[3] if len(ins) > 3 else None
        scales = None if sc is None or 0 in sc.shape else [float(v) for v in np.asarray(cx.value(sc, "scales")).reshape(-1)]
        sizes = None if sz is None else [int(v) for v in np.asarray(cx.value(sz, "sizes")).reshape(-1)]
    axes = [a % x.ndim for a in cx.attr("axes", range(x.ndim))]
    if sizes is not None:
        factors = [s / x.shape[a] for s, a in zip(sizes, axes)]
        policy = cx.attr("keep_aspect_ratio_policy", "stretch")
        if policy != "stretch":
            f = min(factors) if policy == "not_larger" else max(factors)
            factors = [f] * len(axes)
            sizes = [int(f * x.shape[a] + 0.5) for a in axes]
    else:
        factors = scales
        sizes = [int(f * x.shape[a]) for f, a in zip(factors, axes)]
    y = x
    for a, f, n in zip(axes, factors, sizes):
        if n == x.shape[a] and f == 1.0:
            continue
        m = resize_matrix(mode, coord, x.shape[a], n, f, nearest, float(cx.attr("cubic_coeff_a", -0.75)),
                          bool(cx.attr("exclude_outside", 0)))
        if mode == "nearest":   # one source per output: a gather, exact for every dtype
            y = gc.gather(y, cx.constant(m.argmax(axis=1).astype(np.int64)), axis=a)
            continue
        _float(cx, x)
        perm = [k for k in range(x.ndim) if k != a] + [a]
        t = gc.matmul(gc.transpose(y, perm), cx.constant(m.T.astype(x.dtype)))
        y = gc.transpose(t, [int(v) for v in np.argsort(perm)])
    return gc.identity(y)
