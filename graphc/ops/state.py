"""Source and state ops: constant, placeholder, variable, assign, assign_add/sub, group, identity.

Variable semantics (what the interpreter and the runtime both implement): a
``variable`` node reads the value the variable had when the run started; the
assign ops of one run apply in schedule order (each sees the previous one's
result) and are committed together only when the whole run succeeds. Every
runtime computes an assign op's new value with ``update_value``.

    >>> import graphc as gc
    >>> v = gc.Variable([1.0, 2.0])
    >>> s = gc.Session(); _ = s.run(gc.global_variables_initializer())
    >>> s.run(v.assign_add([1.0, 1.0])).tolist()
    [2.0, 3.0]
"""
from __future__ import annotations

import numpy as np

from .. import dtypes as _dt
from ..errors import DtypeError, ShapeError
from ..ir import Tensor, TensorSpec, get_default_graph
from .registry import OpDef, apply, convert_to_tensor, get_op, register

__all__ = ["constant", "placeholder", "Variable", "assign", "assign_add", "assign_sub", "group",
           "no_op", "global_variables", "trainable_variables", "variables_initializer",
           "global_variables_initializer"]

# -- records -------------------------------------------------------------------------------------
register(OpDef(
    "constant", fusion="source",
    infer=lambda s, a: TensorSpec(tuple(a["value"].shape), a["value"].dtype),
    reference=lambda v, a: a["value"],
    grad=lambda x, y, dy, a: [],
    doc="A literal array held in attrs['value']."))


def _placeholder_infer(specs, a):
    return TensorSpec(tuple(a["shape"]), a["dtype"])


register(OpDef(
    "placeholder", fusion="source", external=True, infer=_placeholder_infer, reference=None,
    grad=lambda x, y, dy, a: [],
    doc="A value fed at run time through feed_dict; None dimensions accept any size."))

register(OpDef(
    "variable", fusion="source", external=True, stateful=True, infer=_placeholder_infer, reference=None,
    grad=lambda x, y, dy, a: [],
    doc="Reads a variable's value at the start of the run."))


def _assign_infer(specs, a):
    ref, val = specs
    if ref.dtype != val.dtype:
        raise DtypeError(f"value dtype {val.dtype.name} does not match variable dtype "
                         f"{ref.dtype.name}; cast the value with gc.cast")
    if len(ref.shape) != len(val.shape) or any(
            r is not None and v is not None and r != v for r, v in zip(ref.shape, val.shape)):
        raise ShapeError(f"value shape {val.shape} does not match variable shape {ref.shape}")
    return ref


register(OpDef(
    "assign", fusion="state", state_update="assign", stateful=True, differentiable=False,
    infer=_assign_infer, reference=lambda v, a: v[1],
    doc="var <- value; evaluates to the new value."))
register(OpDef(
    "assign_add", fusion="state", state_update="add", stateful=True, differentiable=False,
    infer=_assign_infer, reference=lambda v, a: (v[0] + v[1]).astype(v[0].dtype, copy=False),
    doc="var <- var + value; evaluates to the new value."))
register(OpDef(
    "assign_sub", fusion="state", state_update="sub", stateful=True, differentiable=False,
    infer=_assign_infer, reference=lambda v, a: (v[0] - v[1]).astype(v[0].dtype, copy=False),
    doc="var <- var - value; evaluates to the new value."))

register(OpDef(
    "group", fusion="state", stateful=True, differentiable=False,
    infer=lambda s, a: TensorSpec((), _dt.bool_),
    reference=lambda v, a: np.array(True),
    doc="Runs its inputs; fetching it returns None (tf.group / tf.no_op)."))


def update_value(op: OpDef | str, current: np.ndarray | None, value) -> np.ndarray:
    """The new value of a variable updated by assign op ``op`` (an ``OpDef`` or its name): a
    fresh C-ordered array, never ``value`` or ``current`` itself (kernels read variables without
    a copy, so a transposed value, e.g. the orthogonal initializer's, would otherwise be copied
    on every read). ``assign`` keeps ``value``'s dtype (the shape rule makes it the variable's;
    ``current`` may be ``None``, an uninitialized variable); ``assign_add``/``assign_sub``
    compute ``current +/- value`` in numpy and cast to ``current``'s dtype: the references'
    value, bit for bit.

        >>> update_value("assign_sub", np.array([1.0, 2.0], np.float32), np.float32(0.5)).tolist()
        [0.5, 1.5]
    """
    kind = (op if isinstance(op, OpDef) else get_op(op)).state_update
    if kind == "assign":
        return np.array(value, copy=True, order="C")
    if kind == "add":
        r = current + value
    elif kind == "sub":
        r = current - value
    else:
        raise ValueError(f"{getattr(op, 'name', op)} is not an assign op "
                         f"(its state_update is {kind!r})")
    if type(r) is not np.ndarray or r.dtype != current.dtype or not r.flags.c_contiguous:
        r = np.array(np.asarray(r).astype(current.dtype, copy=False), copy=True, order="C")
    return r            # numpy's result is a fresh array already: no second copy


# -- user API ------------------------------------------------------------------------------------


def constant(value, dtype=None, shape=None, name: str | None = None) -> Tensor:
    """A constant tensor. Python floats become float32, Python ints int32.

        >>> import graphc as gc
        >>> gc.constant([[1.0, 2.0]]).shape
        (1, 2)
    """
    arr = _dt.array_for_value(value, dtype)
    if shape is not None:
        shape = tuple(shape)
        if arr.size == 1:
            arr = np.full(shape, arr.reshape(()), dtype=arr.dtype)
        elif arr.size == int(np.prod(shape)):
            arr = arr.reshape(shape)
        else:
            raise ShapeError(f"constant '{name or 'Const'}': a value of {arr.size} elements cannot "
                             f"have shape {shape}")
    arr.flags.writeable = False  # shared by every run; Session copies it out
    return apply("constant", [], {"value": arr}, name=name or "Const")


def placeholder(dtype, shape=None, name: str | None = None) -> Tensor:
    """A value fed at run time: ``gc.placeholder("float32", (None, 784), name="x")``.

    ``shape=None`` makes a scalar placeholder (graphc needs the rank); use
    ``None`` inside the shape for unknown dimensions.
    """
    dt = _dt.as_dtype(dtype)
    if shape is None:
        shape = ()
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape),)
    shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
    if any(d is not None and d < 0 for d in shape):
        raise ShapeError(f"placeholder '{name}': negative dimension in shape {shape}")
    return apply("placeholder", [], {"shape": shape, "dtype": dt}, name=name or "Placeholder")


class Variable(Tensor):
    """A tensor whose value persists across ``Session.run`` calls.

        >>> import graphc as gc
        >>> w = gc.Variable(np.zeros((3, 1), np.float32), name="w")
        >>> w.shape, w.trainable
        ((3, 1), True)
    """
    __slots__ = ("initializer", "initial_value", "trainable")

    def __init__(self, initial_value, trainable: bool = True, name: str | None = None,
                 dtype=None, shape=None):
        g = initial_value.graph if isinstance(initial_value, Tensor) else get_default_graph()
        with g.as_default(), g.name_scope(name or "Variable") as scope:
            init = convert_to_tensor(initial_value, dtype=dtype, name="initial_value")
            vshape = tuple(shape) if shape is not None else init.shape
            t = apply("variable", [], {"shape": vshape, "dtype": init.dtype,
                                       "trainable": bool(trainable)}, name=scope)
            if any(d is None for d in vshape):
                raise ShapeError(f"Variable '{t.name}': shape {vshape} must be fully known")
            super().__init__(g, t.node)
            self.initial_value = init
            self.trainable = bool(trainable)
            self.initializer = apply("assign", [t, init], name="Assign")
        g.add_to_collection("variables", self.node)
        g.add_to_collection("initializers", self.initializer.node)
        if trainable:
            g.add_to_collection("trainable_variables", self.node)

    def __repr__(self) -> str:
        return f"<Variable {self.name!r} shape={self.shape} dtype={self.dtype.name}>"

    def assign(self, value, name: str | None = None) -> Tensor:
        """An op that sets the variable to ``value`` (runs when fetched); evaluates to the new value."""
        return _assign_op("assign", self, value, name)

    def assign_add(self, value, name: str | None = None) -> Tensor:
        """An op that adds ``value`` to the variable; evaluates to the new value."""
        return _assign_op("assign_add", self, value, name)

    def assign_sub(self, value, name: str | None = None) -> Tensor:
        """An op that subtracts ``value`` from the variable; evaluates to the new value."""
        return _assign_op("assign_sub", self, value, name)

    def read_value(self) -> Tensor:
        return Tensor(self.graph, self.node)


def _assign_op(op: str, ref: Tensor, value, name):
    if not isinstance(ref, Tensor) or ref.graph.op(ref.node) != "variable":
        raise TypeError(f"{op}: the target must be a gc.Variable, got {ref!r}")
    with ref.graph.as_default():
        val = convert_to_tensor(value, dtype=ref.dtype) if not isinstance(value, Tensor) else value
        return apply(op, [Tensor(ref.graph, ref.node), val], name=name or op)


def assign(ref, value, name=None):
    """``tf.assign(ref, value)``: see ``Variable.assign``."""
    return _assign_op("assign", ref, value, name)


def assign_add(ref, value, name=None):
    """``tf.assign_add(ref, value)``: see ``Variable.assign_add``."""
    return _assign_op("assign_add", ref, value, name)


def assign_sub(ref, value, name=None):
    """``tf.assign_sub(ref, value)``: see ``Variable.assign_sub``."""
    return _assign_op("assign_sub", ref, value, name)


def group(*inputs, name: str | None = None) -> Tensor:
    """One runnable op that runs all ``inputs`` (tensors or lists of them); fetches as None."""
    flat = []
    for x in inputs:
        flat.extend(x if isinstance(x, (list, tuple)) else [x])
    flat = [convert_to_tensor(x) for x in flat]
    g = flat[0].graph if flat else get_default_graph()
    return apply("group", flat, name=name or "group", graph=g)


def no_op(name: str | None = None) -> Tensor:
    """An op that does nothing (``tf.no_op``)."""
    return group(name=name or "NoOp")


def _variables(key: str, graph=None) -> list[Variable]:
    g = graph or get_default_graph()
    return [_VariableView(g, n) for n in g.collections.get(key, [])]


class _VariableView(Variable):
    """A Variable handle rebuilt from the graph (no new nodes)."""
    __slots__ = ()

    def __init__(self, graph, node):  # noqa: D401 - bypass Variable's constructor
        Tensor.__init__(self, graph, node)
        self.trainable = bool(graph.attrs(node).get("trainable", True))
        init = [n for n in graph.collections.get("initializers", []) if graph.inputs(n)[0] == node]
        self.initializer = Tensor(graph, init[0]) if init else None
        self.initial_value = Tensor(graph, graph.inputs(init[0])[1]) if init else None


def global_variables(graph=None) -> list[Variable]:
    """All variables of the (default) graph, in creation order."""
    return _variables("variables", graph)


def trainable_variables(graph=None) -> list[Variable]:
    """Variables created with ``trainable=True``."""
    return _variables("trainable_variables", graph)


def variables_initializer(var_list, name: str = "init") -> Tensor:
    """An op that runs the initializers of ``var_list``."""
    return group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer(graph=None) -> Tensor:
    """An op that initializes every variable of the graph (``tf.global_variables_initializer``)."""
    g = graph or get_default_graph()
    with g.as_default():
        return group(*[Tensor(g, n) for n in g.collections.get("initializers", [])], name="init")
