"""TensorFlow-1 ``tf.train`` names: the TF-1 optimizers, ``Saver`` and the global step.

``Saver`` writes every variable's value to one ``.npz`` file and reads it back.

The optimizers keep TF-1's constructor signatures, slot names and update rules
(not Keras'), and build their updates into the graph like ``graphc.optimizers``
(whose base class they extend: ``minimize`` returns one runnable op).

    >>> import graphc as gc
    >>> w = gc.Variable([1.0, -2.0], name="w")
    >>> train_op = gc.train.GradientDescentOptimizer(0.1).minimize(gc.reduce_sum(w * w))
    >>> s = gc.Session(); _ = s.run(gc.global_variables_initializer())
    >>> _ = s.run(train_op); s.run(w).tolist()
    [0.800000011920929, -1.600000023841858]

Update rules (TF-1 ``training_ops``; ``t`` counts updates from 1):

* GradientDescent: ``var -= lr*g``.
* Momentum: ``accum = momentum*accum + g``; ``var -= lr*accum``
  (nesterov: ``var -= lr*g + lr*momentum*accum``).
* Adam: ``lr_t = lr*sqrt(1 - beta2^t)/(1 - beta1^t)``; ``m = beta1*m + (1 - beta1)*g``;
  ``v = beta2*v + (1 - beta2)*g^2``; ``var -= lr_t*m/(sqrt(v) + epsilon)`` (epsilon outside
  the square root and not bias-corrected: TF-1's "epsilon hat").
* RMSProp: ``ms = ms + (g^2 - ms)*(1 - decay)`` with ``ms`` starting at **1** (TF-1 initializes
  it with ones); ``mom = momentum*mom + lr*g/sqrt(ms + epsilon)`` (epsilon inside the square
  root); ``var -= mom``. Centered: ``mg = mg + (g - mg)*(1 - decay)`` and the denominator is
  ``sqrt(ms - mg^2 + epsilon)``.

``gate_gradients``, ``aggregation_method``, ``colocate_gradients_with_ops`` and
``use_locking`` (and the decay functions' ``name``) are accepted for source compatibility
and have no effect (graphc runs one training step as one program; there is no concurrent
update to lock against).
"""
from __future__ import annotations

import numpy as np

import os

from . import optimizers as _optimizers
from .ir import Tensor, get_default_graph

__all__ = ["Optimizer", "GradientDescentOptimizer", "MomentumOptimizer", "AdamOptimizer",
           "RMSPropOptimizer", "get_global_step", "get_or_create_global_step", "create_global_step", "Saver",
           "exponential_decay", "inverse_time_decay", "piecewise_constant"]

GATE_NONE, GATE_OP, GATE_GRAPH = 0, 1, 2


def _ops():
    from . import ops
    return ops


class Optimizer(_optimizers.Optimizer):
    """Base of the TF-1 optimizers: TF-1 ``minimize`` / ``compute_gradients`` / ``apply_gradients``.

    ``minimize(loss, global_step=None, var_list=None, ...)`` returns one op running a
    training step; when ``global_step`` (an integer variable) is given, that op also
    increments it by one, as in TF-1.
    """

    def __init__(self, learning_rate, use_locking=False, name=None):
        super().__init__(learning_rate=learning_rate, name=name)
        self._use_locking = bool(use_locking)

    def compute_gradients(self, loss, var_list=None, gate_gradients=GATE_OP, aggregation_method=None,
                          colocate_gradients_with_ops=False, grad_loss=None):
        """``[(gradient, variable)]`` of ``loss`` for ``var_list`` (default: the graph's trainable
        variables); a gradient is None where the loss does not depend on the variable.

            >>> import graphc as gc
            >>> gc.reset_default_graph()
            >>> w = gc.Variable(3.0, name="w")
            >>> [(g.shape, v.name) for g, v in
            ...  gc.train.GradientDescentOptimizer(0.1).compute_gradients(w * w, [w])]
            [((), 'w')]
        """
        return super().compute_gradients(loss, var_list=var_list, grad_loss=grad_loss)

    def apply_gradients(self, grads_and_vars, global_step=None, name=None) -> Tensor:
        """One op applying ``(gradient, variable)`` pairs (and incrementing ``global_step``)."""
        op = super().apply_gradients(grads_and_vars, name=None if global_step is not None else name)
        if global_step is None:
            return op
        if not isinstance(global_step, Tensor) or global_step.graph.op(global_step.node) != "variable":
            raise TypeError(f"{self.name}.apply_gradients: global_step must be a gc.Variable, "
                            f"got {global_step!r}")
        if global_step.dtype.kind not in "iu":
            raise TypeError(f"{self.name}.apply_gradients: global_step {global_step.name!r} must be an "
                            f"integer variable, got {global_step.dtype.name}")
        with global_step.graph.as_default():
            return _ops().group(op, _ops().assign_add(global_step, 1), name=name or self.name)

    def minimize(self, loss, global_step=None, var_list=None, gate_gradients=GATE_OP,
                 aggregation_method=None, colocate_gradients_with_ops=False, name=None,
                 grad_loss=None) -> Tensor:
        """``apply_gradients(compute_gradients(loss, var_list), global_step)``: one training-step op.

            >>> import graphc as gc
            >>> gc.reset_default_graph()
            >>> w = gc.Variable(3.0, name="w")
            >>> step = gc.train.get_or_create_global_step()
            >>> op = gc.train.GradientDescentOptimizer(0.25).minimize(w * w, global_step=step)
            >>> s = gc.Session(); _ = s.run(gc.global_variables_initializer())
            >>> _ = s.run(op); s.run([w, step])
            [array(1.5, dtype=float32), array(1)]
        """
        return self.apply_gradients(self.compute_gradients(loss, var_list, grad_loss=grad_loss),
                                    global_step=global_step, name=name)

    def build_slots(self, var):
        """Zero-filled slots named by ``_slot_names`` (subclasses with other initial values override)."""
        for n in self._slot_names():
            self.add_variable_from_reference(var, n)

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} (a TF-1 optimizer) has no Keras config; "
                                  "use graphc.optimizers for models that are saved with their optimizer")


class GradientDescentOptimizer(Optimizer):
    """``tf.train.GradientDescentOptimizer``: ``var -= learning_rate * grad``.

        >>> import graphc as gc
        >>> opt = gc.train.GradientDescentOptimizer(learning_rate=0.5)
    """

    def __init__(self, learning_rate, use_locking=False, name="GradientDescent"):
        super().__init__(learning_rate, use_locking, name)

    def update_step(self, gradient, variable, learning_rate):
        return [self._assign_sub(variable, gradient * learning_rate)]


class MomentumOptimizer(Optimizer):
    """``tf.train.MomentumOptimizer``: ``accum = momentum*accum + g; var -= lr*accum``.

    ``use_nesterov=True``: ``var -= lr*g + lr*momentum*accum``. Slot: ``"momentum"``.

        >>> import graphc as gc
        >>> opt = gc.train.MomentumOptimizer(0.01, momentum=0.9, use_nesterov=True)
    """

    def __init__(self, learning_rate, momentum, use_locking=False, name="Momentum", use_nesterov=False):
        super().__init__(learning_rate, use_locking, name)
        self.momentum = float(momentum)
        self.use_nesterov = bool(use_nesterov)

    def _slot_names(self):
        return ("momentum",)

    def update_step(self, gradient, variable, learning_rate):
        accum = self.get_slot(variable, "momentum")
        accum_new = _ops().assign(accum, accum * self.momentum + gradient)
        if self.use_nesterov:
            delta = gradient * learning_rate + accum_new * self.momentum * learning_rate
        else:
            delta = accum_new * learning_rate
        return [accum_new, self._assign_sub(variable, delta)]


class AdamOptimizer(Optimizer):
    """``tf.train.AdamOptimizer`` (TF-1 defaults: ``epsilon=1e-08``). Slots: ``"m"``, ``"v"``.

        >>> import graphc as gc
        >>> opt = gc.train.AdamOptimizer(learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08)
    """

    def __init__(self, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-08, use_locking=False,
                 name="Adam"):
        super().__init__(learning_rate, use_locking, name)
        self.beta1, self.beta2, self.epsilon = float(beta1), float(beta2), float(epsilon)

    def _slot_names(self):
        return ("m", "v")

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        step = self._local_step(variable)
        lr_t = learning_rate * ops.sqrt(1 - ops.pow(self.beta2, step)) / (1 - ops.pow(self.beta1, step))
        m, v = self.get_slot(variable, "m"), self.get_slot(variable, "v")
        m_new = ops.assign(m, m * self.beta1 + gradient * (1 - self.beta1))
        v_new = ops.assign(v, v * self.beta2 + ops.square(gradient) * (1 - self.beta2))
        return [m_new, v_new, self._assign_sub(variable, lr_t * m_new / (ops.sqrt(v_new) + self.epsilon))]


class RMSPropOptimizer(Optimizer):
    """``tf.train.RMSPropOptimizer``; the mean square starts at one and epsilon is inside the
    square root, as in TF-1. Slots: ``"rms"``, ``"momentum"`` (and ``"mg"`` when centered).

        >>> import graphc as gc
        >>> opt = gc.train.RMSPropOptimizer(0.01, decay=0.9, momentum=0.0, epsilon=1e-10)
    """

    def __init__(self, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False,
                 centered=False, name="RMSProp"):
        super().__init__(learning_rate, use_locking, name)
        self.decay, self.momentum, self.epsilon = float(decay), float(momentum), float(epsilon)
        self.centered = bool(centered)

    def _slot_names(self):
        return ("rms", "momentum") + (("mg",) if self.centered else ())

    def build_slots(self, var):
        self.add_variable_from_reference(var, "rms", initializer="ones")
        self.add_variable_from_reference(var, "momentum")
        if self.centered:
            self.add_variable_from_reference(var, "mg")

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        ms, mom = self.get_slot(variable, "rms"), self.get_slot(variable, "momentum")
        ms_new = ops.assign(ms, ms + (ops.square(gradient) - ms) * (1 - self.decay))
        out = [ms_new]
        denominator = ms_new
        if self.centered:
            mg = self.get_slot(variable, "mg")
            mg_new = ops.assign(mg, mg + (gradient - mg) * (1 - self.decay))
            out.append(mg_new)
            denominator = ms_new - ops.square(mg_new)
        mom_new = ops.assign(mom, mom * self.momentum + learning_rate * gradient / ops.sqrt(denominator + self.epsilon))
        return out + [mom_new, self._assign_sub(variable, mom_new)]


# -- global step ------------------------------------------------------------------------------------

def get_global_step(graph=None):
    """The graph's global-step variable (collection ``"global_step"``), or None."""
    from .ops.state import _VariableView
    g = graph or get_default_graph()
    nodes = g.collections.get("global_step", [])
    return _VariableView(g, nodes[0]) if nodes else None


def create_global_step(graph=None):
    """Create the int64 scalar variable ``global_step`` (0); ValueError if the graph has one."""
    g = graph or get_default_graph()
    if get_global_step(g) is not None:
        raise ValueError("global_step already exists in this graph; use get_or_create_global_step()")
    with g.as_default():
        step = _ops().Variable(np.array(0, np.int64), trainable=False, name="global_step")
    g.add_to_collection("global_step", step.node)
    return step


def get_or_create_global_step(graph=None):
    """``tf.train.get_or_create_global_step()``: the graph's global step, created on first use.

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> gc.train.get_or_create_global_step(g).name
        'global_step'
    """
    step = get_global_step(graph)
    return step if step is not None else create_global_step(graph)


# -- learning-rate decay (TF-1 functions of the global step) ---------------------------------------

def _decayed(schedule, global_step, fn: str):
    if global_step is None:
        raise ValueError(f"global_step is required for {fn}.")
    return _ops().convert_to_tensor(schedule(global_step))


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """``tf.train.exponential_decay``: the tensor ``learning_rate * decay_rate ^ (global_step /
    decay_steps)`` (an integer exponent when ``staircase``), for an optimizer's learning rate.

        >>> import graphc as gc
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     step = gc.train.get_or_create_global_step()
        ...     lr = gc.train.exponential_decay(0.1, step, 10, 0.5, staircase=True)
        ...     s = gc.Session(); _ = s.run(gc.global_variables_initializer())
        ...     _ = s.run(step.assign(25)); print(f"{s.run(lr):.4f}")
        0.0250
    """
    from .schedules import ExponentialDecay
    return _decayed(ExponentialDecay(learning_rate, decay_steps, decay_rate, staircase), global_step,
                    "exponential_decay")


def inverse_time_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False, name=None):
    """``tf.train.inverse_time_decay``: ``learning_rate / (1 + decay_rate * global_step / decay_steps)``
    (an integer ratio when ``staircase``)."""
    from .schedules import InverseTimeDecay
    return _decayed(InverseTimeDecay(learning_rate, decay_steps, decay_rate, staircase), global_step,
                    "inverse_time_decay")


def piecewise_constant(x, boundaries, values, name=None):
    """``tf.train.piecewise_constant``: ``values[0]`` while ``x <= boundaries[0]``, ``values[1]`` while
    ``x <= boundaries[1]``... and ``values[-1]`` after the last boundary."""
    from .schedules import PiecewiseConstantDecay
    return _decayed(PiecewiseConstantDecay(boundaries, values), x, "piecewise_constant")


# -- Saver --------------------------------------------------------------------------------------------

class Saver:
    """``tf.train.Saver``: save variables' values to one file and restore them.

    ``var_list``: None (every variable of the default graph when the Saver is created, the
    optimizers' slots included: create it after ``minimize``), a list of variables, or a dict
    ``{name in the file: variable}``. The file is a numpy ``.npz`` archive with one array per
    variable, keyed by the variable's name; ``save`` writes it atomically (a temporary file in
    the same folder, then renamed), so a crash never leaves a half-written checkpoint.

        >>> import graphc as gc, os, tempfile
        >>> g = gc.Graph()
        >>> with g.as_default():
        ...     w = gc.Variable([1.0, 2.0], name="w")
        ...     saver = gc.train.Saver()
        ...     sess = gc.Session(); _ = sess.run(gc.global_variables_initializer())
        ...     path = saver.save(sess, os.path.join(tempfile.mkdtemp(), "model.npz"))
        ...     _ = sess.run(w.assign([0.0, 0.0])); saver.restore(sess, path); sess.run(w).tolist()
        [1.0, 2.0]
    """

    def __init__(self, var_list=None):
        from .ops import state
        if var_list is None:
            var_list = state.global_variables()
            if not var_list:
                raise ValueError("Saver: the default graph has no variables to save")
        if isinstance(var_list, dict):
            items = list(var_list.items())
        else:
            items = [(v.name, v) for v in var_list]
        if not items:
            raise ValueError("Saver: var_list is empty")
        for key, v in items:
            if not isinstance(v, Tensor) or v.graph.op(v.node) != "variable":
                raise TypeError(f"Saver: {key!r} is {v!r}, not a gc.Variable")
        names = [k for k, _ in items]
        dup = sorted({k for k in names if names.count(k) > 1})
        if dup:
            raise ValueError(f"Saver: several variables are saved under the name(s) {dup}")
        self.graph = items[0][1].graph
        if any(v.graph is not self.graph for _, v in items):
            raise ValueError("Saver: all variables must belong to one graph")
        self._items = items
        with self.graph.as_default(), self.graph.name_scope("save"):
            self._feeds = [state.placeholder(v.dtype, v.shape, name="value") for _, v in items]
            self._restore_op = state.group(*[state.assign(v, p) for (_, v), p in zip(items, self._feeds)],
                                           name="restore_all")

    def _check_session(self, sess, what):
        if sess.graph is not self.graph:
            raise ValueError(f"Saver.{what}: the session runs another graph than the saver's variables")

    def save(self, sess, save_path, global_step=None) -> str:
        """Write the variables' current values in ``sess`` to ``save_path`` (``save_path-<step>``
        with ``global_step``, an int or an integer variable, as TF-1); returns the path written."""
        self._check_session(sess, "save")
        if global_step is not None:
            step = sess.run(global_step) if isinstance(global_step, Tensor) else global_step
            save_path = f"{save_path}-{int(step)}"
        save_path = os.fspath(save_path)
        from .errors import UninitializedVariableError
        try:
            values = sess.run([v for _, v in self._items])
        except UninitializedVariableError as e:
            raise UninitializedVariableError(f"Saver.save({save_path!r}): {e}") from None
        from .models.saving import _write_atomic      # the model files' atomic npz writer
        _write_atomic(save_path, {k: val for (k, _), val in zip(self._items, values)})
        return save_path

    def restore(self, sess, save_path) -> None:
        """Load every variable from ``save_path`` into ``sess``; ValueError naming the file and the
        variable when one is missing or has another shape or dtype (nothing is restored then)."""
        self._check_session(sess, "restore")
        save_path = os.fspath(save_path)
        try:
            archive = np.load(save_path, allow_pickle=False)
        except FileNotFoundError:
            raise FileNotFoundError(f"Saver.restore: no checkpoint file {save_path!r}") from None
        except (OSError, ValueError) as e:
            raise ValueError(f"Saver.restore: {save_path!r} is not a checkpoint written by "
                             f"Saver.save ({e})") from None
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise ValueError(f"Saver.restore: {save_path!r} is a single .npy array, not a checkpoint "
                             "written by Saver.save")
        feed = {}
        with archive:
            for (key, v), ph in zip(self._items, self._feeds):
                if key not in archive.files:
                    raise ValueError(f"Saver.restore: {save_path!r} has no value for variable {key!r} "
                                     f"(it holds {', '.join(sorted(archive.files)) or 'nothing'})")
                val = archive[key]
                if tuple(val.shape) != tuple(v.shape):
                    raise ValueError(f"Saver.restore: variable {key!r} has shape {tuple(v.shape)} but "
                                     f"{save_path!r} holds shape {tuple(val.shape)}")
                if val.dtype != v.dtype:
                    raise ValueError(f"Saver.restore: variable {key!r} has dtype {v.dtype.name} but "
                                     f"{save_path!r} holds dtype {val.dtype.name}")
                feed[ph] = val
        sess.run(self._restore_op, feed)
