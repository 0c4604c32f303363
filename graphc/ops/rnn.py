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
def _cell_infer(specs, a):
    z = specs[0]
    u = _units(z, "lstm_cell")
    if len(specs) == 2:
        _check_state("lstm_cell", z, specs[1], u, "the cell state c")
    elif len(specs) != 1:
        raise ShapeError(f"lstm_cell takes z and optionally c, got {len(specs)} inputs")
    return TensorSpec((z.shape[0], 2 * u), z.dtype)


def _cell_ref(v, a):
    z = v[0]
    i, f, g, o = _gates(z)
    c_new = i * g if len(v) == 1 else f * v[1] + i * g
    return np.concatenate([o * np.tanh(c_new), c_new], axis=1).astype(z.dtype)


def _cell_grad(x, y, dy, a):
    g = apply("lstm_cell_grad", list(x) + [y, dy], {})
    u4 = 4 * (x[0].shape[1] // 4)
    return [g[:, :u4]] + ([g[:, u4:]] if len(x) == 2 else [])


register(OpDef(
    "lstm_cell", fusion="opaque", infer=_cell_infer, reference=_cell_ref, grad=_cell_grad,
    doc="One LSTM step from the gate pre-activations z = [i f g o] (batch, 4u) and the cell state c "
        "(batch, u; none on the first step): [h_new | c_new] (batch, 2u) with sigmoid gates and tanh."))


# -- lstm_cell_grad(z[, c], out, d_out) -> [dz | dc] --------------------------------------------------------
def _grad_infer(specs, a):
    z, rest = specs[0], specs[1:]
    u = _units(z, "lstm_cell_grad")
    if len(rest) not in (2, 3):
        raise ShapeError(f"lstm_cell_grad takes (z, [c,] out, d_out), got {len(specs)} inputs")
    if len(rest) == 3:
        _check_state("lstm_cell_grad", z, rest[0], u, "the cell state c")
    for s, what in zip(rest[-2:], ("out", "d_out")):
        _check_state("lstm_cell_grad", z, s, 2 * u, what)
    return TensorSpec((z.shape[0], (5 if len(rest) == 3 else 4) * u), z.dtype)


def _grad_ref(v, a):
    z, c = v[0], (v[1] if len(v) == 4 else np.zeros((v[0].shape[0], v[0].shape[1] // 4), v[0].dtype))
    out, d_out = v[-2], v[-1]
    u = z.shape[1] // 4
    i, f, g, o = _gates(z)
    tc = np.tanh(out[:, u:])
    dh = d_out[:, :u]
    dc = d_out[:, u:] + dh * o * (1 - tc * tc)
    parts = [dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g * g), dh * tc * o * (1 - o)]
    if len(v) == 4:
        parts.append(dc * f)
    return np.concatenate(parts, axis=1).astype(z.dtype)


def _grad_composite(x, a):
    """lstm_cell_grad(*x) written with primitive ops (what autodiff differentiates for its gradient)."""
    from .array import concat
    from .elementwise import sigmoid, tanh
    z, out, d_out = x[0], x[-2], x[-1]
    u = z.shape[1] // 4
    i, f, g, o = (sigmoid(z[:, :u]), sigmoid(z[:, u:2 * u]), tanh(z[:, 2 * u:3 * u]),
                  sigmoid(z[:, 3 * u:]))
    tc = tanh(out[:, u:])
    dh = d_out[:, :u]
    dc = d_out[:, u:] + dh * o * (1.0 - tc * tc)
    df = dc * x[1] * f * (1.0 - f) if len(x) == 4 else z[:, u:2 * u] * 0.0
    parts = [dc * g * i * (1.0 - i), df, dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)]
    return concat(parts + ([dc * f] if len(x) == 4 else []), axis=1)


# second order (rare): no grad rule; autodiff differentiates the composite form
register(OpDef(
    "lstm_cell_grad", fusion="opaque", infer=_grad_infer, reference=_grad_ref,
    composite=_grad_composite,
    doc="The gradient of lstm_cell: inputs (z, [c,] out, d_out) -> [dz | dc] (dc only with c)."))


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
