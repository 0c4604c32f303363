"""Optimizers (Keras names, defaults and update formulas) that build their updates into the graph.

``minimize(loss)`` adds the gradient (``gc.gradients``) and every variable's
update to the graph and returns one runnable op, so passes and the compiler see
the whole training step. Each optimizer implements ``update_step(grad, var, lr)``
with plain elementwise graph ops (so the fusion pass can fuse a parameter's
update into one kernel) and keeps its slots (momenta, ``iterations``) as
non-trainable ``gc.Variable``\\ s. Slots are created by ``minimize`` /
``apply_gradients``: create the initializer *after* minimize, as in TF1.

    >>> import graphc as gc
    >>> w = gc.Variable([1.0, -2.0], name="w")
    >>> train = gc.optimizers.SGD(learning_rate=0.1).minimize(gc.reduce_sum(w * w), var_list=[w])
    >>> s = gc.Session(); _ = s.run(gc.global_variables_initializer())
    >>> _ = s.run(train); s.run(w).tolist()
    [0.800000011920929, -1.600000023841858]

The formulas follow Keras 3 (``keras/src/optimizers/*.py``); ``t`` counts
updates from 1, ``lr`` is the learning rate (a schedule is evaluated at the
number of updates already made):

* SGD: ``m = momentum*m - lr*g``; ``var += m`` (nesterov: ``var += momentum*m - lr*g``);
  without momentum ``var -= lr*g``.
* Adam: ``m += (g - m)*(1 - beta_1)``; ``v += (g^2 - v)*(1 - beta_2)`` (amsgrad:
  ``v_hat = max(v_hat, v)`` is used for ``v``);
  ``var -= (m * lr*sqrt(1 - beta_2^t)/(1 - beta_1^t)) / (sqrt(v) + epsilon)``.
* AdamW: Adam after decoupled weight decay ``var = var - var*weight_decay*lr``.
* RMSprop: ``v = rho*v + (1 - rho)*g^2`` (centered: ``a = rho*a + (1 - rho)*g``,
  denominator ``v - a^2 + epsilon``, else ``v + epsilon``); ``inc = lr*g / sqrt(den)``;
  momentum: ``mom = momentum*mom + inc; var -= mom``, else ``var -= inc``.
* Adagrad: ``acc += g^2`` (starting at ``initial_accumulator_value``);
  ``var -= lr*g / sqrt(acc + epsilon)``.

Every optimizer accepts ``weight_decay`` (decoupled, applied before the update
as in Keras), and one of ``clipnorm`` (per gradient), ``global_clipnorm``
(over all gradients together) or ``clipvalue`` (elementwise).
"""
from __future__ import annotations

import abc

import warnings
import weakref

import numpy as np

from . import schedules
from .errors import DtypeError, GraphError
from .ir import Graph, Tensor, get_default_graph
from .object_registry import Registry

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "get", "serialize",
           "deserialize", "schedules"]


def _ops():
    from . import ops
    return ops


class _GraphState:
    """What an optimizer added to one graph: its ``iterations`` counter and per-variable slots."""

    def __init__(self, iterations):
        self.iterations = iterations
        self.slots: dict[int, dict[str, Tensor]] = {}


class Optimizer(abc.ABC):
    """Base class. Subclasses implement ``build_slots(var)`` and ``update_step(grad, var, lr)``.

    ``learning_rate`` is a float, a ``LearningRateSchedule`` (evaluated in the
    graph from ``iterations``) or a scalar float tensor (e.g. a placeholder).
    """

    def __init__(self, learning_rate=0.001, weight_decay=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, name=None, **kwargs):
        unsupported = {k: v for k, v in kwargs.items()
                       if not (k in _IGNORED_KWARGS and v == _IGNORED_KWARGS[k])}
        if unsupported:
            raise TypeError(f"{type(self).__name__}: unsupported argument(s) "
                            f"{', '.join(f'{k}={v!r}' for k, v in unsupported.items())}")
        if sum(x is not None for x in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                             f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                             f"global_clipnorm={global_clipnorm}")
        for what, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue), ("global_clipnorm", global_clipnorm),
                        ("weight_decay", weight_decay)):
            if v is not None and (not np.isscalar(v) or v < 0):
                raise ValueError(f"{type(self).__name__}: {what} must be a non-negative number, got {v!r}")
        self.name = name or type(self).__name__.lower()
        self.learning_rate = schedules.get(learning_rate)
        if isinstance(self.learning_rate, (int, float, np.floating, np.integer)):
            if self.learning_rate < 0:
                raise ValueError(f"{type(self).__name__}: learning_rate must be >= 0, got {learning_rate}")
            self.learning_rate = float(self.learning_rate)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self._states: "weakref.WeakKeyDictionary[Graph, _GraphState]" = weakref.WeakKeyDictionary()
        self._last_graph = None
        self._exclude_nodes: set = set()
        self._exclude_names: tuple = ()
        self._current: dict[int, Tensor] = {}

    # -- state ---------------------------------------------------------------------------------
    def _state(self, graph: Graph, in_scope: bool = False) -> _GraphState:
        """This optimizer's state in ``graph``, creating ``iterations`` (in the ``name`` scope,
        or in the current scope when ``in_scope``) on first use."""
        st = self._states.get(graph)
        if st is None:
            with graph.as_default():
                if in_scope:
                    it = _new_variable(graph, "iterations", np.array(0, np.int64))
                else:
                    with graph.name_scope(self.name):
                        it = _new_variable(graph, "iterations", np.array(0, np.int64))
            st = self._states[graph] = _GraphState(it)
        self._last_graph = weakref.ref(graph)
        return st

    @property
    def iterations(self) -> Tensor:
        """The int64 variable counting applied updates (in the default graph, else the last used)."""
        g = get_default_graph()
        if g not in self._states and self._last_graph is not None and self._last_graph() is not None:
            g = self._last_graph()
        return self._state(g).iterations

    @property
    def variables(self) -> list:
        """``iterations`` and every slot variable of the graph last used (TF1: ``variables()``)."""
        if self._last_graph is None or self._last_graph() is None:
            return []
        st = self._states[self._last_graph()]
        return [st.iterations] + [s for slots in st.slots.values() for s in slots.values()]

    def add_variable_from_reference(self, reference_variable, name: str, initializer="zeros") -> Tensor:
        """A non-trainable slot shaped like ``reference_variable``, filled with ``initializer``
        (``"zeros"``, ``"ones"`` or a number); ``get_slot(var, name)`` returns it later."""
        g = reference_variable.graph
        st = self._state(g)
        slots = st.slots.setdefault(reference_variable.node, {})
        if name in slots:
            return slots[name]
        fill = {"zeros": 0.0, "ones": 1.0}.get(initializer, initializer)
        init = np.full(reference_variable.shape, fill, dtype=reference_variable.dtype)
        with g.as_default():
            slot = _new_variable(g, reference_variable.name.replace("/", "_") + "_" + name, init)
        slots[name] = slot
        return slot

    def get_slot(self, var, name: str) -> Tensor:
        """The slot ``name`` (e.g. ``"m"``) of ``var``; KeyError if it was not created."""
        try:
            return self._states[var.graph].slots[var.node][name]
        except KeyError:
            raise KeyError(f"{self.name}: no slot {name!r} for variable {var.name!r}; slots are "
                           "created by minimize/apply_gradients") from None

    def get_slot_names(self) -> list:
        return list(self._slot_names())

    def _slot_names(self):
        return ()

    def build(self, var_list) -> None:
        """Create the slots of every variable in ``var_list`` (done by apply_gradients)."""
        for v in var_list:
            self._state(v.graph)
            self.build_slots(v)

    def build_slots(self, var) -> None:
        """Create ``var``'s slots with ``add_variable_from_reference`` (subclasses)."""

    def exclude_from_weight_decay(self, var_list=None, var_names=None) -> None:
        """Apply no weight decay to ``var_list`` nor to variables whose name contains one of ``var_names``."""
        self._exclude_nodes |= {(id(v.graph), v.node) for v in (var_list or [])}
        self._exclude_names += tuple(var_names or ())

    # -- building the update -------------------------------------------------------------------
    def compute_gradients(self, loss, var_list=None, grad_loss=None):
        """``[(gradient, variable)]`` for ``loss`` (TF1 ``compute_gradients``); gradients may be None."""
        from .autodiff import gradients
        loss = _ops().convert_to_tensor(loss)
        if loss.dtype.kind != "f":
            raise DtypeError(f"{self.name}: the loss {loss.name!r} has dtype {loss.dtype.name}; "
                             "it must be a float tensor")
        if callable(var_list):
            var_list = var_list()
        if var_list is None:
            var_list = _ops().trainable_variables(loss.graph)
        var_list = list(var_list)
        if not var_list:
            raise ValueError(f"{self.name}: no variables to optimize (the graph has no trainable "
                             "gc.Variable; pass var_list=[...])")
        for v in var_list:
            _check_variable(v, self.name)
        grads = gradients(loss, var_list, grad_ys=grad_loss)
        return list(zip(grads, var_list))

    def minimize(self, loss, var_list=None, grad_loss=None, name=None) -> Tensor:
        """Add the gradients of ``loss`` and the updates of ``var_list`` (default: all trainable
        variables of the loss's graph) to the graph; returns one op that runs a training step."""
        return self.apply_gradients(self.compute_gradients(loss, var_list, grad_loss), name=name)

    def apply_gradients(self, grads_and_vars, name=None) -> Tensor:
        """Add the updates for ``(gradient, variable)`` pairs; returns one runnable op (a group)
        that also increments ``iterations``. Pairs with a ``None`` gradient are skipped."""
        pairs = list(grads_and_vars)
        if not pairs:
            raise ValueError(f"{self.name}.apply_gradients: empty list of (gradient, variable) pairs")
        for _, v in pairs:
            _check_variable(v, self.name)
        missing = [v.name for g, v in pairs if g is None]
        pairs = [(g, v) for g, v in pairs if g is not None]
        if not pairs:
            raise ValueError(f"{self.name}: no gradients provided for any variable ({', '.join(missing)}); "
                             "check that the loss depends on them through differentiable float ops")
        if missing:
            warnings.warn(f"{self.name}: gradients do not exist for variables {missing} when minimizing "
                          "the loss; they are not updated", stacklevel=3)
        graph = pairs[0][1].graph
        if any(v.graph is not graph for _, v in pairs):
            raise GraphError(f"{self.name}.apply_gradients: all variables must belong to one graph")
        with graph.as_default(), graph.name_scope(self.name):
            grads = [_ops().convert_to_tensor(g) for g, _ in pairs]
            variables = [v for _, v in pairs]
            for g, v in zip(grads, variables):
                if g.graph is not graph:
                    raise GraphError(f"{self.name}: the gradient of {v.name!r} belongs to another graph")
                if g.dtype != v.dtype:
                    raise DtypeError(f"{self.name}: gradient {g.name!r} has dtype {g.dtype.name} but "
                                     f"variable {v.name!r} is {v.dtype.name}")
            st = self._state(graph, in_scope=True)
            self.build([v for v in variables if v.node not in st.slots])
            grads = self._clip_gradients(grads)
            lrs: dict = {}
            updates = []
            for g, v in zip(grads, variables):
                if v.dtype not in lrs:
                    lrs[v.dtype] = self._lr_tensor(v.dtype, st)
                lr = lrs[v.dtype]
                self._current = {}
                if self.weight_decay and self._use_weight_decay(v):
                    self._current[v.node] = v - v * self.weight_decay * lr
                updates.extend(self.update_step(g, v, lr))
                self._current = {}
            updates.append(_ops().assign_add(st.iterations, 1))
            return _ops().group(*updates, name=name or "update")

    @abc.abstractmethod
    def update_step(self, gradient, variable, learning_rate) -> list:
        """The assign ops updating ``variable`` (and its slots) from ``gradient``; subclasses."""

    # helpers for update_step: the variable's value after weight decay, and its final assign
    def _value(self, var) -> Tensor:
        return self._current.get(var.node, var)

    def _assign_sub(self, var, delta) -> Tensor:
        if var.node in self._current:
            return _ops().assign(var, self._current[var.node] - delta)
        return _ops().assign_sub(var, delta)

    def _assign_add(self, var, delta) -> Tensor:
        if var.node in self._current:
            return _ops().assign(var, self._current[var.node] + delta)
        return _ops().assign_add(var, delta)

    def _local_step(self, var) -> Tensor:
        """``iterations + 1`` in ``var``'s dtype (the 1-based number of the update being made)."""
        it = self._state(var.graph).iterations
        return _ops().cast(it + 1, var.dtype)

    def _use_weight_decay(self, var) -> bool:
        if (id(var.graph), var.node) in self._exclude_nodes:
            return False
        return not any(n in var.name for n in self._exclude_names)

    def _lr_tensor(self, dtype, st: _GraphState) -> Tensor:
        ops = _ops()
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            t = ops.convert_to_tensor(lr(st.iterations))
        elif isinstance(lr, Tensor):
            t = lr
            if t.shape != ():
                raise ValueError(f"{self.name}: a learning-rate tensor must be a scalar, got shape {t.shape}")
        elif callable(lr):
            t = ops.convert_to_tensor(lr())
        else:
            return ops.constant(np.asarray(lr, dtype=dtype), name="learning_rate")
        return ops.cast(t, dtype) if t.dtype != dtype else t

    def _clip_gradients(self, grads: list) -> list:
        ops = _ops()
        if self.clipnorm and self.clipnorm > 0:
            return [self._clip_by_norm(g) for g in grads]
        if self.global_clipnorm and self.global_clipnorm > 0:
            return _clip_by_global_norm(grads, self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            v = self.clipvalue
            return [ops.clip_by_value(g, -v, v) for g in grads]
        return grads

    def _clip_by_norm(self, g: Tensor) -> Tensor:
        ops = _ops()
        l2sum = ops.reduce_sum(ops.square(g), keepdims=True)
        pred = ops.greater(l2sum, 0)
        l2sum_safe = ops.where(pred, l2sum, ops.ones_like(l2sum))
        l2norm = ops.where(pred, ops.sqrt(l2sum_safe), l2sum)
        return (g * self.clipnorm) / ops.maximum(l2norm, self.clipnorm)

    # -- config ------------------------------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self.learning_rate
        if isinstance(lr, schedules.LearningRateSchedule):
            lr = schedules.serialize(lr)
        elif isinstance(lr, Tensor) or callable(lr):
            raise ValueError(f"{self.name}.get_config: a tensor or callable learning rate cannot be "
                             "serialized; use a float or a schedule")
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue}

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r} learning_rate={self.learning_rate!r}>"


# Keras arguments accepted only at their default value (graphc has no EMA / loss scaling).
_IGNORED_KWARGS = {"use_ema": False, "ema_momentum": 0.99, "ema_overwrite_frequency": None,
                   "loss_scale_factor": None, "gradient_accumulation_steps": None}


def _new_variable(graph: Graph, base: str, init: np.ndarray):
    """A non-trainable variable called ``base`` in the current name scope (``base_1``... if taken).

    ``base`` must not contain '/': ``Variable`` opens a name scope named after it."""
    scope = "".join(s + "/" for s in getattr(graph, "_scopes", []))
    name, i = base, 0
    while True:
        try:
            graph.by_name(scope + name)
        except KeyError:
            break
        i += 1
        name = f"{base}_{i}"
    return _ops().Variable(init, trainable=False, name=name)


def _check_variable(v, who: str) -> None:
    if not isinstance(v, Tensor) or v.graph.op(v.node) != "variable":
        raise TypeError(f"{who}: {v!r} is not a gc.Variable; only variables can be optimized")


def _clip_by_global_norm(grads: list, clip_norm: float) -> list:
    """Keras ``clip_by_global_norm``: scale every gradient by ``clip_norm / max(global_norm, clip_norm)``."""
    ops = _ops()
    dts = {g.dtype for g in grads}
    acc_dt = grads[0].dtype if len(dts) == 1 else np.dtype("float64")
    sq = [ops.cast(ops.reduce_sum(ops.square(g)), acc_dt) for g in grads]
    use_norm = ops.sqrt(ops.reduce_sum(ops.stack(sq)) if len(sq) > 1 else sq[0])
    scale = ops.minimum(1.0 / use_norm, 1.0 / clip_norm) * clip_norm
    scale = scale + (use_norm - use_norm)  # NaN/inf norms propagate, as in Keras
    return [g * ops.cast(scale, g.dtype) for g in grads]


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum: Keras ``SGD``.

        >>> opt = SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    """

    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None, name="SGD", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum <= 1:
            raise ValueError(f"`momentum` must be a float between [0, 1]. Received: momentum={momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def _slot_names(self):
        return ("momentum",) if self.momentum != 0 else ()

    def build_slots(self, var):
        if self.momentum != 0:
            self.add_variable_from_reference(var, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        if self.momentum == 0:
            return [self._assign_sub(variable, gradient * learning_rate)]
        m = self.get_slot(variable, "momentum")
        m_new = ops.assign(m, -gradient * learning_rate + m * self.momentum)
        if self.nesterov:
            return [m_new, self._assign_add(variable, -gradient * learning_rate + m_new * self.momentum)]
        return [m_new, self._assign_add(variable, m_new)]

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam (Kingma & Ba), optionally AMSGrad: Keras ``Adam``.

        >>> opt = Adam(learning_rate=0.01, amsgrad=True)
    """

    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adam",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def _slot_names(self):
        return ("m", "v", "v_hat") if self.amsgrad else ("m", "v")

    def build_slots(self, var):
        for n in self._slot_names():
            self.add_variable_from_reference(var, n)

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        step = self._local_step(variable)
        beta_1_power = ops.pow(self.beta_1, step)
        beta_2_power = ops.pow(self.beta_2, step)
        m = self.get_slot(variable, "m")
        v = self.get_slot(variable, "v")
        alpha = learning_rate * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        m_new = ops.assign_add(m, (gradient - m) * (1 - self.beta_1))
        v_new = ops.assign_add(v, (ops.square(gradient) - v) * (1 - self.beta_2))
        out = [m_new, v_new]
        if self.amsgrad:
            v_hat = self.get_slot(variable, "v_hat")
            v_new = ops.assign(v_hat, ops.maximum(v_hat, v_new))
            out.append(v_new)
        out.append(self._assign_sub(variable, (m_new * alpha) / (ops.sqrt(v_new) + self.epsilon)))
        return out

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): Keras ``AdamW``.

    Before each Adam update ``var = var - var * weight_decay * lr``.
    """

    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, clipnorm=None, clipvalue=None, global_clipnorm=None, name="adamw", **kwargs):
        if weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm, name=name, **kwargs)


class RMSprop(Optimizer):
    """RMSprop (Hinton), optionally centered and with momentum: Keras ``RMSprop``.

        >>> opt = RMSprop(learning_rate=0.01, momentum=0.9, centered=True)
    """

    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 weight_decay=None, clipnorm=None, clipvalue=None, global_clipnorm=None, name="rmsprop",
                 **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def _slot_names(self):
        return (("velocity",) + (("momentum",) if self.momentum > 0 else ())
                + (("average_gradient",) if self.centered else ()))

    def build_slots(self, var):
        for n in self._slot_names():
            self.add_variable_from_reference(var, n)

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        rho = self.rho
        velocity = self.get_slot(variable, "velocity")
        vel_new = ops.assign(velocity, rho * velocity + (1 - rho) * ops.square(gradient))
        out = [vel_new]
        if self.centered:
            avg = self.get_slot(variable, "average_gradient")
            avg_new = ops.assign(avg, rho * avg + (1 - rho) * gradient)
            out.append(avg_new)
            denominator = vel_new - ops.square(avg_new) + self.epsilon
        else:
            denominator = vel_new + self.epsilon
        increment = (learning_rate * gradient) / ops.sqrt(denominator)
        if self.momentum > 0:
            mom = self.get_slot(variable, "momentum")
            mom_new = ops.assign(mom, self.momentum * mom + increment)
            out += [mom_new, self._assign_sub(variable, mom_new)]
        else:
            out.append(self._assign_sub(variable, increment))
        return out

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adagrad(Optimizer):
    """Adagrad (Duchi et al.): Keras ``Adagrad``.

        >>> opt = Adagrad(learning_rate=0.1, initial_accumulator_value=0.1)
    """

    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, weight_decay=None,
                 clipnorm=None, clipvalue=None, global_clipnorm=None, name="adagrad", **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, clipnorm=clipnorm,
                         clipvalue=clipvalue, global_clipnorm=global_clipnorm, name=name, **kwargs)
        self.initial_accumulator_value = float(initial_accumulator_value)
        self.epsilon = float(epsilon)

    def _slot_names(self):
        return ("accumulator",)

    def build_slots(self, var):
        self.add_variable_from_reference(var, "accumulator", initializer=self.initial_accumulator_value)

    def update_step(self, gradient, variable, learning_rate):
        ops = _ops()
        acc = self.get_slot(variable, "accumulator")
        acc_new = ops.assign(acc, acc + ops.square(gradient))
        return [acc_new, self._assign_sub(variable, (learning_rate * gradient) / ops.sqrt(acc_new + self.epsilon))]

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


_REGISTRY = Registry("optimizer", base=Optimizer, callables=False,
                     hint="a name such as 'adam', a config dict or an Optimizer")
for _cls in (SGD, Adam, AdamW, RMSprop, Adagrad):
    _REGISTRY.register(_cls, _cls.__name__.lower())


def serialize(optimizer: Optimizer) -> dict:
    """``{"class_name": ..., "config": ...}`` (Keras layout) for ``deserialize``."""
    return _REGISTRY.serialize(optimizer)


def deserialize(config: dict, custom_objects=None) -> Optimizer:
    """An optimizer from ``serialize``'s dict (class names are matched case-insensitively)."""
    return _REGISTRY.deserialize(config, custom_objects)


def get(identifier, custom_objects=None) -> Optimizer:
    """An optimizer from a Keras name (``"sgd"``, ``"adam"``, ``"adamw"``, ``"rmsprop"``,
    ``"adagrad"``; default arguments), a ``serialize`` dict, or an instance (returned as is).

        >>> get("adam").learning_rate
        0.001
    """
    return _REGISTRY.get(identifier, custom_objects)
