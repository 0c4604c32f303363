"""Layer wrappers: ``Bidirectional`` (a recurrent layer run both ways) and ``TimeDistributed``
(a layer applied to every time step).

    >>> from graphc.layers import Input, Bidirectional, LSTM, TimeDistributed, Dense
    >>> x = Input(shape=(10, 8))
    >>> h = Bidirectional(LSTM(16, return_sequences=True))(x)
    >>> h.shape, TimeDistributed(Dense(3))(h).shape
    ((None, 10, 32), (None, 10, 3))
"""
from __future__ import annotations

from .base import Layer
from .eager import accepts_training


def _ops():
    from .. import ops
    return ops


def _deserialize(spec, custom_objects=None):
    from ..models.serialization import deserialize_layer
    return deserialize_layer(spec, custom_objects)


def _serialize(layer) -> dict:
    from ..models.serialization import serialize_layer
    return serialize_layer(layer)


def _call_sub(layer, inputs, training, mask=None):
    """Call a wrapped layer, handing ``training`` (and a Keras ``mask``) on only where its ``call``
    takes it."""
    kw = {"mask": mask} if mask is not None else {}
    if accepts_training(layer):
        return layer(inputs, training=training, **kw)
    return layer(inputs, **kw)


def _build_sub(wrapper, layer, input_shape):
    from ..ir import get_default_graph
    if layer._runtime is None:      # the inner layers' get_weights read the wrapper's session
        layer._runtime = wrapper._runtime
    with get_default_graph().name_scope(layer.name):
        layer._build_once(input_shape)


class Wrapper(Layer):
    """Base of layers that hold one inner ``layer`` (its weights are the wrapper's)."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"{type(self).__name__} wraps a Layer instance, got {layer!r}")
        super().__init__(**kwargs)
        self.layer = layer

    def _sublayers(self):
        return [self.layer]

    def get_config(self):
        return {**super().get_config(), "layer": _serialize(self.layer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["layer"] = _deserialize(config["layer"], custom_objects)
        return cls(**config)


class Bidirectional(Wrapper):
    """Run a recurrent ``layer`` forwards and a copy of it backwards, and merge the two outputs.

    ``merge_mode`` is ``"concat"`` (default), ``"sum"``, ``"mul"``, ``"ave"`` or ``None`` (a list
    ``[forward, backward]``). With ``return_sequences=True`` on the wrapped layer, the backward
    sequence is reversed back into input order before merging (as Keras does). With
    ``return_state=True`` on the wrapped layer, the result is ``[merged] + forward states +
    backward states`` (Keras' order). The weights are the forward layer's, then the backward
    layer's.

        >>> from graphc.layers import GRU
        >>> Bidirectional(GRU(4), merge_mode="sum").compute_output_shape((None, 7, 3))
        (None, 4)
    """
    _modes = ("concat", "sum", "mul", "ave", None)

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        super().__init__(layer, weights=weights, **kwargs)
        if merge_mode not in self._modes:
            raise ValueError(f"Bidirectional {self.name!r}: merge_mode must be one of {self._modes}, "
                             f"got {merge_mode!r}")
        for attr in ("return_sequences", "go_backwards"):
            if not hasattr(layer, attr):
                raise ValueError(f"Bidirectional {self.name!r} wraps recurrent layers (LSTM, GRU, "
                                 f"SimpleRNN); {type(layer).__name__} {layer.name!r} has no {attr}")
        if backward_layer is not None:
            raise NotImplementedError(f"Bidirectional {self.name!r}: backward_layer= is not "
                                      "supported by graphc (the backward layer is a copy of layer)")
        self.merge_mode = merge_mode
        self.forward_layer = layer
        cfg = layer.get_config()
        cfg.update(name="backward_" + layer.name, go_backwards=not layer.go_backwards)
        cfg.pop("batch_input_shape", None)
        self.backward_layer = type(layer).from_config(cfg)
        self.return_sequences = layer.return_sequences
        self.return_state = bool(getattr(layer, "return_state", False))

    def _sublayers(self):
        return [self.forward_layer, self.backward_layer]

    def build(self, input_shape):
        _build_sub(self, self.forward_layer, input_shape)
        _build_sub(self, self.backward_layer, input_shape)

    def call(self, inputs, training=None, mask=None):
        fw = _call_sub(self.forward_layer, inputs, training, mask)
        bw = _call_sub(self.backward_layer, inputs, training, mask)
        states = []
        if self.return_state:
            (fw, *fw_states), (bw, *bw_states) = fw, bw
            states = fw_states + bw_states
        merged = self._merge(fw, bw)
        if not states:
            return merged
        return (merged if self.merge_mode is None else [merged]) + states   # flat, as in Keras

    def compute_mask(self, inputs, mask=None):
        return mask if self.return_sequences else None

    def _merge(self, fw, bw):
        o = _ops()
        if self.return_sequences:
            bw = o.stack(o.unstack(bw, num=bw.shape[1], axis=1)[::-1], axis=1)
        if self.merge_mode == "concat":
            return o.concat([fw, bw], axis=-1)
        if self.merge_mode == "sum":
            return fw + bw
        if self.merge_mode == "mul":
            return fw * bw
        if self.merge_mode == "ave":
            return (fw + bw) * 0.5
        return [fw, bw]

    def compute_output_shape(self, input_shape):
        out = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            out, states = out[0], list(out[1:])
            states = states + states
        out = tuple(out)
        if self.merge_mode == "concat":
            out = out[:-1] + (None if out[-1] is None else 2 * out[-1],)
        merged = [out, out] if self.merge_mode is None else out
        if not states:
            return merged
        return (merged if self.merge_mode is None else [merged]) + states

    def get_config(self):
        return {**super().get_config(), "merge_mode": self.merge_mode}


class TimeDistributed(Wrapper):
    """Apply ``layer`` to every step of ``(batch, steps, ...)`` (steps folded into the batch).

    The inner layer sees inputs ``(batch * steps, ...)``; its weights are shared by the steps.
    The number of steps must be known when the graph is built (models specialize it per input
    signature).

        >>> from graphc.layers import Dense
        >>> TimeDistributed(Dense(3)).compute_output_shape((None, 5, 8))
        (None, 5, 3)
    """

    def _inner_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(f"TimeDistributed {self.name!r} expects inputs (batch, steps, ...) of "
                             f"rank 3 or more, got {tuple(input_shape)}")
        return (None,) + tuple(input_shape[2:])

    def build(self, input_shape):
        _build_sub(self, self.layer, self._inner_shape(input_shape))

    def call(self, inputs, training=None):
        o = _ops()
        inner = self._inner_shape(inputs.shape)
        steps = inputs.shape[1]
        if steps is None or any(d is None for d in inner[1:]):
            raise ValueError(f"TimeDistributed {self.name!r}: the steps and feature axes of "
                             f"{inputs.shape} must be known when the graph is built")
        y = _call_sub(self.layer, o.reshape(inputs, (-1,) + inner[1:]), training)
        if any(d is None for d in y.shape[1:]):
            raise ValueError(f"TimeDistributed {self.name!r}: {self.layer.name!r} gave an output "
                             f"{y.shape} with unknown feature axes")
        return o.reshape(y, (-1, steps) + tuple(y.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = tuple(self.layer.compute_output_shape(self._inner_shape(input_shape)))
        return (input_shape[0], input_shape[1]) + inner[1:]
