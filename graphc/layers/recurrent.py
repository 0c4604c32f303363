"""Recurrent layers: SimpleRNN, LSTM, GRU (Keras weight layouts and gate orders).

By default (Keras' ``unroll=False``) the time loop is one ``scan`` op: its body is one step of
the cell, traced once, so one graph and one compiled program serve every sequence length (a model
input ``Input(shape=(None, 100))`` compiles once, whatever lengths it meets). The input
projection ``x @ kernel + bias`` of all steps is one GEMM before the loop; the loop body does the
recurrent product and the cell. ``unroll=True`` writes every step into the graph instead (the
time axis must then be known where the layer is called; models specialize it per input signature).

    >>> from graphc.layers import Input, LSTM
    >>> x = Input(shape=(None, 100))
    >>> LSTM(64, return_sequences=True)(x).shape
    (None, None, 64)
"""
from __future__ import annotations

import numpy as np

from .. import activations as _act
from .. import initializers as _init
from .base import Layer, reject_unsupported, serialize_obj


def _ops():
    from .. import ops
    return ops


class _RNN(Layer):
    _gates = 1
    _n_states = 1

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 kernel_initializer="glorot_uniform", recurrent_initializer="orthogonal",
                 bias_initializer="zeros", kernel_regularizer=None, recurrent_regularizer=None,
                 bias_regularizer=None, dropout=0.0, recurrent_dropout=0.0, return_sequences=False,
                 return_state=False, go_backwards=False, stateful=False, unroll=False,
                 seed=None, **kwargs):
        reject_unsupported(type(self).__name__, **{k: kwargs.pop(k, None) for k in (
            "activity_regularizer", "kernel_constraint", "recurrent_constraint", "bias_constraint",
            "time_major")})
        self._extra = {k: kwargs.pop(k) for k in ("unit_forget_bias", "reset_after")
                       if k in kwargs}
        super().__init__(**kwargs)
        if stateful:
            raise ValueError(f"{type(self).__name__}: stateful=True is not supported")
        if recurrent_dropout:
            raise ValueError(f"{type(self).__name__}: recurrent_dropout is not supported")
        self.units = int(units)
        self.activation = _act.get(activation)
        self.recurrent_activation = _act.get(recurrent_activation)
        self.use_bias = use_bias
        self.kernel_initializer = _init.get(kernel_initializer)
        self.recurrent_initializer = _init.get(recurrent_initializer)
        self.bias_initializer = _init.get(bias_initializer)
        self.kernel_regularizer = kernel_regularizer
        self.recurrent_regularizer = recurrent_regularizer
        self.bias_regularizer = bias_regularizer
        self.dropout = float(dropout)
        self.seed = seed
        self.return_sequences, self.return_state = return_sequences, return_state
        self.go_backwards = go_backwards
        self.unroll = bool(unroll)

    def _bias_init(self):
        return self.bias_initializer

    def _bias_shape(self):
        return (self._gates * self.units,)

    def build(self, input_shape):
        d = input_shape[-1]
        if len(input_shape) != 3 or d is None:
            raise ValueError(f"{type(self).__name__} {self.name!r} expects inputs (batch, timesteps, "
                             f"features) with known features, got {input_shape}")
        g = self._gates * self.units
        self.kernel = self.add_weight("kernel", (d, g), initializer=self.kernel_initializer,
                                      regularizer=self.kernel_regularizer)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, g),
                                                initializer=self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer)
        self.bias = self.add_weight("bias", self._bias_shape(), initializer=self._bias_init(),
                                    regularizer=self.bias_regularizer) if self.use_bias else None

    def _input_projection(self, inputs):
        """``inputs @ kernel + bias`` for all steps in one GEMM (the runtime runs a 3-D by 2-D
        product as one), time-major ``(T, batch, gates)``: each step's slice is then one contiguous
        block (its add to ``h @ recurrent_kernel`` reads it without a copy, and its gradient is
        stored as one block), and the bias add directly follows the GEMM, where it fuses as the
        GEMM's epilogue."""
        o = _ops()
        xw = o.matmul(o.transpose(inputs, (1, 0, 2)), self.kernel)
        if self.use_bias:
            xw = xw + (self.bias if self.bias.ndim == 1 else self.bias[0])
        return xw

    def call(self, inputs, initial_state=None, training=None, mask=None):
        o = _ops()
        t_len = inputs.shape[1]
        if t_len == 0:
            raise ValueError(f"{type(self).__name__} {self.name!r}: empty sequences")
        if training and self.dropout:
            inputs = o.nn.dropout(inputs, rate=self.dropout, noise_shape=(None, 1, inputs.shape[-1]),
                                  seed=self.seed)
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != self._n_states:
                raise ValueError(f"{type(self).__name__}: initial_state needs {self._n_states} tensors")
        else:
            states = [None] * self._n_states
        if mask is not None:     # (batch, time) bool: a masked step keeps the states, outputs zeros
            mask = o.transpose(o.cast(mask, "bool"), (1, 0))
            if self.go_backwards:
                mask = mask[::-1]
        if self.unroll:
            out, states = self._unrolled(inputs, states, mask)
        else:
            out, states = self._scanned(inputs, states, mask)
        if self.return_state:
            return [out] + list(states)
        return out

    def _masked_step(self, x_t, states, m_t):
        """One step; where ``m_t`` (batch,) is False the states stay and the output is zeros."""
        o = _ops()
        new = self._step(x_t, states)
        if m_t is None:
            return new, new[0]
        keep = o.expand_dims(m_t, -1)
        zero = o.zeros_like(new[0])
        new = [o.where(keep, n, zero if s is None else s) for n, s in zip(new, states)]
        return new, o.where(keep, new[0], zero)

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def _unrolled(self, inputs, states, mask=None):
        o = _ops()
        t_len = inputs.shape[1]
        if t_len is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: unroll=True needs the time axis of "
                             f"{inputs.shape} known when the graph is built (models specialize it per "
                             "input signature automatically)")
        steps = o.unstack(self._input_projection(inputs), num=t_len, axis=0)
        if self.go_backwards:
            steps = steps[::-1]
        outputs = []
        for t, x_t in enumerate(steps):
            states, y = self._masked_step(x_t, states, None if mask is None else mask[t])
            outputs.append(y)
        return (o.stack(outputs, axis=1) if self.return_sequences else states[0]), states

    def _scanned(self, inputs, states, mask=None):
        """The time loop as one ``scan`` over the projected steps ``(T, batch, gates)``."""
        from ..funcgraph import trace, with_captures
        from ..ops.control_flow import part, scan_node
        o = _ops()
        xw = self._input_projection(inputs)
        if self.go_backwards:
            xw = xw[::-1]
        zero = o.zeros_like(xw[0][:, :self.units])
        states = [zero if s is None else s for s in states]
        n = len(states)

        xs = [xw] + ([] if mask is None else [mask])

        def step(*args):
            new, y = self._masked_step(args[n], list(args[:n]), args[n + 1] if mask is not None else None)
            return list(new) + ([y] if self.return_sequences else [])
        body, captured, _ = trace(step, [s.spec for s in states] + [_step_spec(x) for x in xs],
                                  self.name + "_step", [f"state{i}" for i in range(n)] + ["x_t", "mask_t"])
        (body,), captured = with_captures([(body, captured)])
        node = scan_node(body, captured, states, xs, name=self.name + "_scan")
        finals = [part(node, i) for i in range(n)]
        out = o.transpose(part(node, n), (1, 0, 2)) if self.return_sequences else finals[0]
        return out, finals

    def compute_output_shape(self, input_shape):
        b, t = input_shape[0], input_shape[1]
        out = (b, t, self.units) if self.return_sequences else (b, self.units)
        if self.return_state:
            return [out] + [(b, self.units)] * self._n_states
        return out

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": _act.serialize(self.activation),
                "recurrent_activation": _act.serialize(self.recurrent_activation),
                "use_bias": self.use_bias,
                "kernel_initializer": serialize_obj(self.kernel_initializer),
                "recurrent_initializer": serialize_obj(self.recurrent_initializer),
                "bias_initializer": serialize_obj(self.bias_initializer),
                "kernel_regularizer": serialize_obj(self.kernel_regularizer),
                "recurrent_regularizer": serialize_obj(self.recurrent_regularizer),
                "bias_regularizer": serialize_obj(self.bias_regularizer),
                "dropout": self.dropout, "seed": self.seed,
                "return_sequences": self.return_sequences, "return_state": self.return_state,
                "go_backwards": self.go_backwards, "unroll": self.unroll, **self._extra}


def _step_spec(xw):
    from ..ir import TensorSpec
    return TensorSpec(tuple(xw.shape[1:]), xw.dtype)


class SimpleRNN(_RNN):
    """``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``."""

    def __init__(self, units, activation="tanh", **kwargs):
        kwargs.pop("recurrent_activation", None)
        super().__init__(units, activation=activation, **kwargs)

    def _step(self, x_t, states):
        h = states[0]
        z = x_t if h is None else x_t + _ops().matmul(h, self.recurrent_kernel)
        return [self.activation(z)]

    def get_config(self):
        cfg = super().get_config()
        cfg.pop("recurrent_activation")
        return cfg


class _ForgetBias(_init.Initializer):
    """Keras' LSTM bias with ``unit_forget_bias``: zeros, ones for the forget gate."""

    def __init__(self, units, base):
        self.units, self.base = units, base

    def __call__(self, shape, dtype="float32"):
        u = self.units
        return np.concatenate([self.base((u,), dtype), np.ones((u,), dtype),
                               self.base((2 * u,), dtype)]).astype(dtype)


class LSTM(_RNN):
    """Long short-term memory; gates ``i, f, c, o`` in Keras order; states ``[h, c]``."""
    _gates = 4
    _n_states = 2

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, unit_forget_bias=unit_forget_bias, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def _bias_init(self):
        return _ForgetBias(self.units, self.bias_initializer) if self.unit_forget_bias \
            else self.bias_initializer

    def _fused(self) -> bool:
        # the fused cell (one kernel per step and direction) covers Keras' default activations,
        # the same condition as Keras' cuDNN path; other activations run as primitive ops
        return self.activation is _act.get("tanh") and self.recurrent_activation is _act.get("sigmoid")

    def _step(self, x_t, states):
        o = _ops()
        h, c = states
        u = self.units
        z = x_t if h is None else x_t + o.matmul(h, self.recurrent_kernel)
        if self._fused():
            hc = o.lstm_cell(z, c)
            return [hc[:, :u], hc[:, u:]]
        ra = self.recurrent_activation
        i = ra(z[:, :u])
        f = ra(z[:, u:2 * u])
        g = self.activation(z[:, 2 * u:3 * u])
        og = ra(z[:, 3 * u:])
        c_new = i * g if c is None else f * c + i * g
        h_new = og * self.activation(c_new)
        return [h_new, c_new]


class GRU(_RNN):
    """Gated recurrent unit with Keras' gate order ``z, r, h`` and both Keras variants.

    * ``reset_after=True`` (default, cuDNN-compatible): bias shape ``(2, 3 * units)`` (input and
      recurrent biases); ``h~ = tanh(x W_h + b_h + r * (h U_h + b'_h))``.
    * ``reset_after=False`` (the original GRU): bias shape ``(3 * units,)``;
      ``h~ = tanh(x W_h + b_h + (r * h) U_h)``.

    In both, ``h_t = z * h_{t-1} + (1 - z) * h~``.

        >>> GRU(4, reset_after=False).compute_output_shape((None, 7, 3))
        (None, 4)
    """
    _gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, reset_after=bool(reset_after), **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _step(self, x_t, states):
        if not self.reset_after:
            return self._step_reset_before(x_t, states)
        o = _ops()
        h = states[0]
        u = self.units
        ra = self.recurrent_activation
        if h is None:
            rec = self.bias[1] if self.use_bias else None
        else:
            rec = o.matmul(h, self.recurrent_kernel)
            if self.use_bias:
                rec = rec + self.bias[1]

        def part(t, k):
            return t[k * u:(k + 1) * u] if t.ndim == 1 else t[:, k * u:(k + 1) * u]
        if rec is None:
            z = ra(part(x_t, 0))
            r = ra(part(x_t, 1))
            hh = self.activation(part(x_t, 2))
        else:
            z = ra(part(x_t, 0) + part(rec, 0))
            r = ra(part(x_t, 1) + part(rec, 1))
            hh = self.activation(part(x_t, 2) + r * part(rec, 2))
        h_new = (1.0 - z) * hh if h is None else z * h + (1.0 - z) * hh
        return [h_new]

    def _step_reset_before(self, x_t, states):
        """``reset_after=False``: the reset gate scales ``h`` before its product with ``U_h``
        (the bias is already in ``x_t``, added by the input projection)."""
        o = _ops()
        h = states[0]
        u = self.units
        ra = self.recurrent_activation
        if h is None:                   # h_0 = 0: every recurrent term vanishes
            z = ra(x_t[:, :u])
            return [(1.0 - z) * self.activation(x_t[:, 2 * u:])]
        rec = o.matmul(h, self.recurrent_kernel[:, :2 * u])
        z = ra(x_t[:, :u] + rec[:, :u])
        r = ra(x_t[:, u:2 * u] + rec[:, u:])
        hh = self.activation(x_t[:, 2 * u:] + o.matmul(r * h, self.recurrent_kernel[:, 2 * u:]))
        return [z * h + (1.0 - z) * hh]
