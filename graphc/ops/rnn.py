"""Fused recurrent cells: ``lstm_cell`` and its gradient, one kernel per time step each.

An LSTM time step written with primitive ops is four gate slices, four activations and the
state update forward, and about twice that backward: some twenty small kernels per step. The
fused cell computes the gates from the pre-activations ``z = x_t @ W + h @ U + b`` in one pass
(the same restriction as Keras' fused cuDNN path: sigmoid gates and tanh activations), and
``lstm_cell_grad`` returns all of ``dz`` (and ``dc``) in one more. The LSTM layer uses it
whenever its activations are the defaults.

    >>> import graphc as gc
    >>> z = gc.placeholder("float32", (None, 4 * 3))          # gates i, f, g, o of 3 units
    >>> c = gc.placeholder("float32", (None, 3))
    >>> gc.nn.lstm_cell(z, c).shape                          # [h_new | c_new]
    (None, 6)
"""
from __future__ import annotations

import numpy as np

from ..errors import DtypeError, ShapeError
from ..ir import TensorSpec
from .registry import OpDef, apply, convert_to_tensor, register

__all__ = ["lstm_cell"]


def _units(z: TensorSpec, op: str) -> int:
    if len(z.shape) != 2 or z.shape[1] is None or z.shape[1] % 4:
        raise ShapeError(f"{op}: z must be (batch, 4 * units) with known units (the gates i, f, g, o "
                         f"side by side), got shape {z.shape}")
    if z.dtype.kind != "f":
        raise DtypeError(f"{op}: z must be a float tensor, got {z.dtype.name}")
    return z.shape[1] // 4


def _check_state(op: str, z: TensorSpec, s: TensorSpec, width: int, what: str) -> None:
    if s.dtype != z.dtype:
        raise DtypeError(f"{op}: {what} is {s.dtype.name} but z is {z.dtype.name}; cast one of them")
    if len(s.shape) != 2 or s.shape[1] != width or (
            s.shape[0] is not None and z.shape[0] is not None and s.shape[0] != z.shape[0]):
        raise ShapeError(f"{op}: {what} must be (batch, {width}) for z of shape {z.shape}, got {s.shape}")


def _sigmoid(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def _gates(z):
    u = z.shape[1] // 4
    return (_sigmoid(z[:, :u]), _sigmoid(z[:, u:2 * u]), np.tanh(z[:, 2 * u:3 * u]),
            _sigmoid(z[:, 3 * u:]))


# -- lstm_cell(z[, c]) -> [h_new | c_new] --------------------------------------------------------------
def _cell_layout(n_in: int, a: dict, op: str = "lstm_cell") -> bool:
    """Whether the step has a cell state c: inputs (z, [c,] [w,] [b]), w (an addend of z, batch x
    4u) with attrs['z_sum'], b (a bias row, 4u) with attrs['z_bias'] (both set by the
    save_lstm_gates pass)."""
    n_w = (1 if a.get("z_sum") else 0) + (1 if a.get("z_bias") else 0)
    if n_in - 1 - n_w not in (0, 1):
        raise ShapeError(f"{op} takes z, optionally c" + (" and w" if a.get("z_sum") else "")
                         + (" and b" if a.get("z_bias") else "") + f", got {n_in} inputs")
    return n_in - 1 - n_w == 1


def _cell_z(x: list, a: dict):
    """The step's gate pre-activations from its inputs: ``(z + b) + w`` (the order the unrolled
    graph adds them in: ``x_t @ W + b`` first, then ``h @ U``)."""
    z = x[0]
    if a.get("z_bias"):
        z = z + x[-1]
    if a.get("z_sum"):
        z = z + x[-2 if a.get("z_bias") else -1]
    return z


def _cell_infer(specs, a):
    z = specs[0]
    u = _units(z, "lstm_cell")
    if _cell_layout(len(specs), a):
        _check_state("lstm_cell", z, specs[1], u, "the cell state c")
    if a.get("z_sum"):
        _check_state("lstm_cell", z, specs[-2 if a.get("z_bias") else -1], 4 * u, "the addend w of z")
    if a.get("z_bias"):
        b = specs[-1]
        if b.dtype != z.dtype or tuple(b.shape) != (4 * u,):
            raise ShapeError(f"lstm_cell: the bias b of z must be {z.dtype.name} of shape ({4 * u},), "
                             f"got {b.dtype.name} {b.shape}")
    return TensorSpec((z.shape[0], (6 if a.get("gates") else 2) * u), z.dtype)


def _cell_ref(v, a):
    z = _cell_z(v, a).astype(v[0].dtype)
    i, f, g, o = _gates(z)
    c_new = f * v[1] + i * g if _cell_layout(len(v), a) else i * g
    return np.concatenate([o * np.tanh(c_new), c_new] + ([i, f, g, o] if a.get("gates") else []),
                          axis=1).astype(z.dtype)


def _cell_grad(x, y, dy, a):
    u = x[0].shape[1] // 4
    has_c = _cell_layout(len(x), a)
    zc = [_cell_z(x, a)] + ([x[1]] if has_c else [])
    if not a.get("gates"):
        g = apply("lstm_cell_grad", zc + [y, dy], {})
        dz = g[:, :4 * u]
    else:
        # the saved gates are outputs too: their gradients add to dz through each activation's slope
        g = apply("lstm_cell_grad", zc + [y, dy[:, :2 * u]], {})
        i, f, gg, o = (y[:, k * u:(k + 1) * u] for k in range(2, 6))
        di, df, dg, do = (dy[:, k * u:(k + 1) * u] for k in range(2, 6))
        from .array import concat
        dz = g[:, :4 * u] + concat([di * i * (1.0 - i), df * f * (1.0 - f), dg * (1.0 - gg * gg),
                                    do * o * (1.0 - o)], axis=1)
    from .reduction import reduce_sum
    return [dz] + ([g[:, 4 * u:]] if has_c else []) + ([dz] if a.get("z_sum") else []) + \
        ([reduce_sum(dz, axis=0)] if a.get("z_bias") else [])


register(OpDef(
    "lstm_cell", fusion="opaque", infer=_cell_infer, reference=_cell_ref, grad=_cell_grad,
    doc="One LSTM step from the gate pre-activations z = [i f g o] (batch, 4u) and the cell state c "
        "(batch, u; none on the first step): [h_new | c_new] (batch, 2u) with sigmoid gates and tanh. "
        "attrs['gates'] (set by the save_lstm_gates pass): [h_new | c_new | i f g o] (batch, 6u), the "
        "activated gates kept for lstm_cell_grad, which then computes no gate again. attrs['z_sum']: "
        "inputs (z, [c,] w), the step of z + w; attrs['z_bias']: a last input b (4u,), the step of "
        "(z + b) [+ w]."))


# -- lstm_cell_grad(z[, c], out, d_out) -> [dz | dc] --------------------------------------------------------
def _grad_layout(n_in: int, a: dict, op: str = "lstm_cell_grad") -> tuple[bool, int]:
    """(has a cell state c, number of d_out parts): d_out is [dh | dc] in one matrix, or dh and dc
    apart with attrs['split_d'] (set by the split_lstm_grad_inputs pass)."""
    n_d = 2 if a.get("split_d") else 1
    if n_in - 2 - n_d not in (0, 1):
        raise ShapeError(f"{op} takes (z, [c,] out, " + ("dh, dc" if n_d == 2 else "d_out")
                         + f"), got {n_in} inputs")
    return n_in - 2 - n_d == 1, n_d


def _grad_infer(specs, a):
    z = specs[0]
    u = _units(z, "lstm_cell_grad")
    has_c, n_d = _grad_layout(len(specs), a)
    if has_c:
        _check_state("lstm_cell_grad", z, specs[1], u, "the cell state c")
    out = specs[-1 - n_d]
    _check_state("lstm_cell_grad", z, out, 6 * u if out.shape[1] == 6 * u else 2 * u, "out")
    if n_d == 2:
        _check_state("lstm_cell_grad", z, specs[-2], u, "dh")
        _check_state("lstm_cell_grad", z, specs[-1], u, "dc")
    else:
        _check_state("lstm_cell_grad", z, specs[-1], 2 * u, "d_out")
    return TensorSpec((z.shape[0], (5 if has_c else 4) * u), z.dtype)


def _grad_ref(v, a):
    has_c, n_d = _grad_layout(len(v), a)
    z = v[0]
    c = v[1] if has_c else np.zeros((z.shape[0], z.shape[1] // 4), z.dtype)
    out = v[-1 - n_d]
    d_out = np.concatenate(v[-2:], axis=1) if n_d == 2 else v[-1]
    u = z.shape[1] // 4
    # out = [h | c | i f g o] holds the gates lstm_cell(gates=True) saved; else compute them
    i, f, g, o = (out[:, k * u:(k + 1) * u] for k in range(2, 6)) if out.shape[1] == 6 * u else _gates(z)
    tc = np.tanh(out[:, u:2 * u])
    dh = d_out[:, :u]
    dc = d_out[:, u:] + dh * o * (1 - tc * tc)
    parts = [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)]
    if has_c:
        parts.append(dc * f)
    return np.concatenate(parts, axis=1).astype(z.dtype)


def _grad_composite(x, a):
    """lstm_cell_grad(*x) written with primitive ops (what autodiff differentiates for its gradient)."""
    from .array import concat
    from .elementwise import sigmoid, tanh
    has_c, n_d = _grad_layout(len(x), a)
    z, out = x[0], x[-1 - n_d]
    d_out = concat(list(x[-2:]), axis=1) if n_d == 2 else x[-1]
    u = z.shape[1] // 4
    i, f, g, o = (sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), tanh(z[:, 2 * u:3 * u]),
                  sigmoid(z[:, 3 * u:]))
    tc = tanh(out[:, u:2 * u])
    dh = d_out[:, :u]
    dc = d_out[:, u:] + dh * o * (1.0 - tc * tc)
    df = dc * x[1] * f * (1.0 - f) if has_c else z[:, u:2 * u] * 0.0
    parts = [dc * g * i * (1.0 - i), df, dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)]
    return concat(parts + ([dc * f] if has_c else []), axis=1)


# second order (rare): no grad rule; autodiff differentiates the composite form
register(OpDef(
    "lstm_cell_grad", fusion="opaque", infer=_grad_infer, reference=_grad_ref,
    composite=_grad_composite,
    doc="The gradient of lstm_cell: inputs (z, [c,] out, d_out) -> [dz | dc] (dc only with c); out "
        "may hold the saved gates (lstm_cell with attrs['gates']: then only z's shape and dtype are "
        "read); with attrs['split_d'] d_out comes as two inputs dh, dc."))


def lstm_cell(z, c=None, name=None):
    """One LSTM step (Keras gate order i, f, g, o; sigmoid gates, tanh): ``[h_new | c_new]``.

    ``z`` (batch, 4 * units) are the gate pre-activations ``x_t @ W + h @ U + b``; ``c`` (batch,
    units) the cell state, ``None`` on the first step (zeros).

        >>> import graphc as gc
        >>> hc = gc.nn.lstm_cell(gc.zeros((2, 8)), gc.ones((2, 2)))
        >>> gc.Session().run(hc)[:, 2:].round(3).tolist()         # c_new = f * c = 0.5
        [[0.5, 0.5], [0.5, 0.5]]
    """
    ins = [convert_to_tensor(z)] + ([] if c is None else [convert_to_tensor(c)])
    return apply("lstm_cell", ins, {}, name=name)
