"""The graph IR: ``Graph`` (one networkx.MultiDiGraph), ``TensorSpec`` and ``Tensor`` handles.

A node is one op application. Node attributes: ``op`` (op type, a key of the op
registry), ``attrs`` (a dict of static attributes), ``spec`` (a ``TensorSpec``),
``name`` (unique, readable, scoped) and ``trace`` (the user's call site).
An edge ``u -> v`` with attribute ``pos`` says that ``u`` is input number ``pos``
of ``v``; the same producer may feed several positions of one consumer.
Every node has exactly one output.

    >>> import graphc as gc
    >>> g = gc.Graph()
    >>> with g.as_default():
    ...     x = gc.placeholder("float32", (None, 3), name="x")
    ...     y = x * 2.0
    >>> y.shape, y.dtype.name, y.name
    ((None, 3), 'float32', 'mul')
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Iterable, Iterator

import networkx as nx
import numpy as np

from .errors import GraphError

_PKG_DIR = os.path.dirname(os.path.abspath(__file__))
_SKIP_DIRS = tuple(os.path.join(os.path.dirname(_PKG_DIR), d) + os.sep
                   for d in ("graphc", "passes", "runtime"))


@dataclass(frozen=True)
class TensorSpec:
    """Static shape (``None`` for an unknown dimension) and dtype of a tensor."""
    shape: tuple
    dtype: np.dtype

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype.name}[{dims}]"


OBJECT = np.dtype(object)


@dataclass(frozen=True)
class TupleSpec(TensorSpec):
    """The spec of a node with several results (``scan``, ``while_loop``, ``cond``): ``parts``, one
    ``TensorSpec`` each, read by ``tuple_get`` nodes. Its own shape is ``()`` and its dtype
    ``object``: no kernel reads the tuple itself.

        >>> t = TupleSpec((), OBJECT, (TensorSpec((2,), np.dtype("float32")),))
        >>> str(t), t.parts[0].shape
        ('tuple(float32[2])', (2,))
    """
    parts: tuple = ()

    def __str__(self) -> str:
        return "tuple(" + ", ".join(str(p) for p in self.parts) + ")"


def tuple_spec(parts) -> TupleSpec:
    """A ``TupleSpec`` of ``parts``."""
    return TupleSpec((), OBJECT, tuple(parts))


_SITES: list[str] = []   # user call sites pushed by graphc.layers while a layer builds its nodes


def _user_call_site() -> str:
    """``file:line`` of the innermost frame outside graphc (where the user built the op); inside a
    Keras layer's graph call, the user's line that created or called that layer (see ``user_site``)."""
    if _SITES:
        return _SITES[-1]
    f = sys._getframe(2)
    while f is not None:
        fn = f.f_code.co_filename
        if not fn.startswith(_SKIP_DIRS) and not fn.startswith("<frozen"):
            return f"{fn}:{f.f_lineno}"
        f = f.f_back
    return "<unknown>"


@contextlib.contextmanager
def user_site(site: str | None):
    """Nodes added inside get ``site`` as their trace (graphc.layers: the line that made the layer)."""
    _SITES.append(site) if site else None
    try:
        yield
    finally:
        _SITES.pop() if site else None


class Graph:
    """A dataflow graph: a thin, validated wrapper around ``networkx.MultiDiGraph``.

    Node ids are increasing integers (creation order), which gives every
    traversal a deterministic tie-break.

        >>> g = Graph()
        >>> with g.as_default():
        ...     import graphc as gc
        ...     c = gc.constant(1.0) + 2.0
        >>> g.num_nodes()
        3
    """

    def __init__(self):
        self.nx = nx.MultiDiGraph()
        self._next_id = 0
        self._names: dict[str, int] = {}
        self._name_counts: dict[str, int] = {}
        self._scopes: list[str] = []
        self.seed: int | None = None
        self.collections: dict[str, list[int]] = {}
        self._inputs: dict[int, list[int]] = {}     # node -> its inputs, until edges change

    # -- building -------------------------------------------------------------------
    def add_node(self, op: str, inputs: Iterable[int], attrs: dict, spec: TensorSpec,
                 name: str | None = None, trace: str | None = None) -> int:
        """Add one op application; returns its node id. ``name`` is made unique."""
        nid = self._next_id
        self._next_id += 1
        uname = self.unique_name(name or op)
        self.nx.add_node(nid, op=op, attrs=dict(attrs), spec=spec, name=uname,
                         trace=trace if trace is not None else _user_call_site())
        for pos, src in enumerate(inputs):
            if src not in self.nx:
                raise GraphError(f"input {pos} of {uname} ({op}) is node {src}, "
                                 "which is not in this graph; tensors of different graphs "
                                 "cannot be mixed")
            self.nx.add_edge(src, nid, pos=pos)
        self._names[uname] = nid
        return nid

    def unique_name(self, base: str) -> str:
        """Scope ``base`` with the current name scope and make it unique (``add``, ``add_1``...).

        A name ending in ``/`` (as yielded by ``name_scope``) is used verbatim,
        without the slash, as in TensorFlow: the scope already reserved it.
        """
        if base.endswith("/"):
            full = base[:-1]
            if full in self._names:
                raise GraphError(f"node name {full!r} is already taken")
            return full
        full = "/".join(self._scopes + [base]) if self._scopes else base
        if full not in self._name_counts:
            self._name_counts[full] = 0
            return full
        i = self._name_counts[full]
        while True:
            i += 1
            cand = f"{full}_{i}"
            if cand not in self._name_counts:
                self._name_counts[full] = i
                self._name_counts[cand] = 0
                return cand

    @contextlib.contextmanager
    def name_scope(self, name: str):
        """Prefix every node name created inside with ``name/`` (re-used scopes get ``_1``...)."""
        full = self.unique_name(name)
        prefix = "/".join(self._scopes) + "/" if self._scopes else ""
        self._scopes.append(full[len(prefix):])  # may itself contain "/" ("query/kernel")
        try:
            yield "/".join(self._scopes) + "/"
        finally:
            self._scopes.pop()

    @contextlib.contextmanager
    def as_default(self):
        """Make this graph the default graph inside the ``with`` block."""
        _DEFAULT_STACK.append(self)
        try:
            yield self
        finally:
            _DEFAULT_STACK.pop()

    def add_to_collection(self, key: str, node: int) -> None:
        self.collections.setdefault(key, []).append(node)

    # -- reading ---------------------------------------------------------------------
    def __contains__(self, node) -> bool:
        return node in self.nx

    def num_nodes(self) -> int:
        return self.nx.number_of_nodes()

    def nodes(self) -> list[int]:
        """Node ids in creation order."""
        return sorted(self.nx.nodes)

    def op(self, n: int) -> str:
        return self.nx.nodes[n]["op"]

    def attrs(self, n: int) -> dict:
        return self.nx.nodes[n]["attrs"]

    def spec(self, n: int) -> TensorSpec:
        return self.nx.nodes[n]["spec"]

    def name(self, n: int) -> str:
        return self.nx.nodes[n]["name"]

    def trace(self, n: int) -> str:
        return self.nx.nodes[n]["trace"]

    def node_data(self, n: int) -> dict:
        return self.nx.nodes[n]

    def inputs(self, n: int) -> list[int]:
        """Producers of ``n`` in input-position order (a new list each call)."""
        got = self._inputs.get(n)
        if got is None:     # kept until the next edit of the graph's edges (lowering reads each often)
            edges = sorted(self.nx.in_edges(n, data="pos"), key=lambda e: e[2])
            got = self._inputs[n] = [u for u, _, _ in edges]
        return list(got)

    def consumers(self, n: int) -> list[tuple[int, int]]:
        """``(consumer, position)`` pairs reading ``n``, in consumer order."""
        return sorted((v, pos) for _, v, pos in self.nx.out_edges(n, data="pos"))

    def users(self, n: int) -> list[int]:
        """The distinct nodes reading ``n``, each once, in the order they started reading it.

            >>> g = Graph()
            >>> with g.as_default():
            ...     import graphc as gc
            ...     x = gc.constant(2.0); y = x * x; z = x + 1.0
            >>> g.users(x.node) == [y.node, z.node], g.num_uses(x.node)
            (True, 3)
        """
        return list(self.nx.successors(n))

    def num_uses(self, n: int) -> int:
        """How many inputs read ``n`` (a consumer reading it at two positions counts twice)."""
        return self.nx.out_degree(n)

    def ancestors(self, nodes: Iterable[int], stop: Iterable[int] = ()) -> set[int]:
        """``nodes`` and every node they depend on; the search does not go past ``stop`` nodes
        (a reached stop node is included, its producers are not: a fed value cuts off what computes it).

            >>> g = Graph()
            >>> with g.as_default():
            ...     import graphc as gc
            ...     a = gc.constant(1.0); b = a + 1.0; c = b * 2.0
            >>> sorted(g.ancestors([c.node], stop=[b.node])) == sorted([b.node, c.node, c.node - 1])
            True
        """
        return self._reach(nodes, stop, self.nx.predecessors)

    def descendants(self, nodes: Iterable[int], stop: Iterable[int] = ()) -> set[int]:
        """``nodes`` and every node that depends on them, not going past ``stop`` nodes (which are
        included when reached): ``ancestors`` the other way.

            >>> g = Graph()
            >>> with g.as_default():
            ...     import graphc as gc
            ...     a = gc.constant(1.0); b = a + 1.0; c = b * 2.0
            >>> g.descendants([a.node]) == {a.node, b.node, c.node}
            True
        """
        return self._reach(nodes, stop, self.nx.successors)

    @staticmethod
    def _reach(nodes, stop, step) -> set[int]:
        stop = stop if isinstance(stop, (set, frozenset, dict)) else set(stop)
        seen: set[int] = set()
        stack = list(nodes)
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if n not in stop:
                stack.extend(step(n))
        return seen

    def by_name(self, name: str) -> int:
        """Node id of the node called ``name`` (a trailing ``:0`` is accepted)."""
        key = name[:-2] if name.endswith(":0") else name
        nid = self._names.get(key)
        if nid is None or nid not in self.nx:
            raise KeyError(f"no node named {name!r} in this graph")
        return nid

    def tensor(self, n: int) -> "Tensor":
        return Tensor(self, n)

    def topo_order(self, roots: Iterable[int] | None = None, stop: Iterable[int] = ()) -> list[int]:
        """Topological order (ties broken by creation order) of ``roots`` and their ancestors (of
        every node when ``roots`` is None). With ``stop``, only ``ancestors(roots, stop)`` are listed,
        in the order they have among all the ancestors (a run's schedule: fed nodes cut off their
        producers).

            >>> g = Graph()
            >>> with g.as_default():
            ...     import graphc as gc
            ...     a = gc.constant(1.0); b = a + 1.0; c = b * 2.0
            >>> [g.op(n) for n in g.topo_order([c.node], stop=[b.node])]
            ['add', 'constant', 'mul']
        """
        if roots is None:
            return list(nx.lexicographical_topological_sort(self.nx))
        roots = list(roots)
        order = list(nx.lexicographical_topological_sort(self.nx.subgraph(self.ancestors(roots))))
        if not stop:
            return order
        keep = self.ancestors(roots, stop)
        return [n for n in order if n in keep]

    # -- rewriting (used by passes) --------------------------------------------------------
    def replace(self, old: int, new: int) -> None:
        """Redirect every consumer of ``old`` to read ``new`` instead (``old`` stays, unused)."""
        if old == new:
            return
        so, sn = self.spec(old), self.spec(new)
        if so.dtype != sn.dtype or not _shapes_agree(so.shape, sn.shape):
            raise GraphError(f"replace: {self.name(old)} ({so}) cannot be replaced by "
                             f"{self.name(new)} ({sn}): specs differ")
        self._inputs.clear()
        for _, v, key, pos in list(self.nx.out_edges(old, keys=True, data="pos")):
            self.nx.remove_edge(old, v, key)
            self.nx.add_edge(new, v, pos=pos)
        for key, ids in self.collections.items():
            self.collections[key] = [new if i == old else i for i in ids]

    def set_input(self, n: int, pos: int, src: int) -> None:
        """Input ``pos`` of ``n`` reads ``src`` instead (the other inputs stay).

            >>> g = Graph()
            >>> with g.as_default():
            ...     import graphc as gc
            ...     a, b = gc.constant(1.0), gc.constant(2.0); y = a - a
            >>> g.set_input(y.node, 1, b.node); g.inputs(y.node) == [a.node, b.node]
            True
        """
        self._inputs.clear()
        for u, _, key, p in list(self.nx.in_edges(n, keys=True, data="pos")):
            if p == pos:
                self.nx.remove_edge(u, n, key)
                self.nx.add_edge(src, n, pos=pos)
                return
        raise GraphError(f"{self.name(n)} has no input {pos}")

    def set_inputs(self, n: int, inputs: list[int]) -> None:
        """Replace the input list of ``n``."""
        self._inputs.clear()
        for u, _, key in list(self.nx.in_edges(n, keys=True)):
            self.nx.remove_edge(u, n, key)
        for pos, src in enumerate(inputs):
            self.nx.add_edge(src, n, pos=pos)

    def remove(self, nodes: Iterable[int]) -> None:
        """Remove nodes (and their edges) from the graph."""
        self._inputs.clear()
        for n in list(nodes):
            self._names.pop(self.name(n), None)
            self.nx.remove_node(n)
        for key, ids in self.collections.items():
            self.collections[key] = [i for i in ids if i in self.nx]

    def copy(self) -> "Graph":
        """An independent copy (node ids and names preserved; attrs dicts copied)."""
        g = Graph.__new__(Graph)
        g.nx = nx.MultiDiGraph()
        for n, d in self.nx.nodes(data=True):
            g.nx.add_node(n, **{**d, "attrs": dict(d["attrs"])})
        g.nx.add_edges_from(self.nx.edges(keys=True, data=True))
        g._next_id = self._next_id
        g._names = dict(self._names)
        g._name_counts = dict(self._name_counts)
        g._scopes = []
        g.seed = self.seed
        g._inputs = {}
        g.collections = {k: list(v) for k, v in self.collections.items()}
        return g

    def validate(self) -> None:
        """Check structure and specs: acyclic, inputs numbered 0..k-1, every spec re-infers.

        Raises ``GraphError`` naming the offending node.
        """
        from .ops.registry import get_op
        if not nx.is_directed_acyclic_graph(self.nx):
            cycle = nx.find_cycle(self.nx)
            raise GraphError(f"graph has a cycle: {[self.name(u) for u, *_ in cycle]}")
        for n in self.nx.nodes:
            positions = sorted(p for _, _, p in self.nx.in_edges(n, data="pos"))
            if positions != list(range(len(positions))):
                raise GraphError(f"node {self.name(n)} ({self.op(n)}) has input positions "
                                 f"{positions}; expected 0..{len(positions) - 1}")
            opdef = get_op(self.op(n))
            if opdef.infer is None:
                continue
            specs = [self.spec(i) for i in self.inputs(n)]
            spec = opdef.infer(specs, self.attrs(n))
            if spec.dtype != self.spec(n).dtype or not _shapes_agree(spec.shape, self.spec(n).shape):
                raise GraphError(f"node {self.name(n)} ({self.op(n)}) has spec {self.spec(n)} but "
                                 f"its inputs imply {spec}")

    def __repr__(self) -> str:
        return f"<graphc.Graph with {self.num_nodes()} nodes>"


def _shapes_agree(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is None or y is None or x == y for x, y in zip(a, b))


# -- the default graph -----------------------------------------------------------------------
_DEFAULT_STACK: list[Graph] = []
_GLOBAL_DEFAULT = [Graph()]


def get_default_graph() -> Graph:
    """The graph new ops go into: the innermost ``as_default()``, else the global default."""
    return _DEFAULT_STACK[-1] if _DEFAULT_STACK else _GLOBAL_DEFAULT[0]


def reset_default_graph() -> None:
    """Start a fresh global default graph (not allowed inside ``with g.as_default()``)."""
    if _DEFAULT_STACK:
        raise GraphError("reset_default_graph() called inside a `with graph.as_default()` block; "
                         "leave the block first")
    _GLOBAL_DEFAULT[0] = Graph()


def name_scope(name: str):
    """``with gc.name_scope("dense"):`` prefixes new node names with ``dense/``."""
    return get_default_graph().name_scope(name)


class Operation:
    """A read-only view of the op that produces a tensor (``tensor.op``)."""
    __slots__ = ("graph", "node")

    def __init__(self, graph: Graph, node: int):
        self.graph, self.node = graph, node

    @property
    def type(self) -> str:
        return self.graph.op(self.node)

    @property
    def name(self) -> str:
        return self.graph.name(self.node)

    @property
    def attrs(self) -> dict:
        return dict(self.graph.attrs(self.node))

    @property
    def inputs(self) -> list["Tensor"]:
        return [Tensor(self.graph, i) for i in self.graph.inputs(self.node)]

    @property
    def outputs(self) -> list["Tensor"]:
        return [Tensor(self.graph, self.node)]

    def __eq__(self, other):
        return isinstance(other, Operation) and other.graph is self.graph and other.node == self.node

    def __hash__(self):
        return hash((id(self.graph), self.node))

    def __repr__(self) -> str:
        return f"<Operation {self.name!r} type={self.type}>"


def _ops():
    from . import ops
    return ops


# What Tensor.eval() without a session runs in: ``factory(graph)`` -> an object with
# ``run(fetches, feed_dict=...)``. The ir sits below the session (which imports the interpreter
# and the runtime), so it does not import it; graphc/__init__.py registers ``Session``.
_SESSION_FACTORY: list = [None]


def register_session_factory(factory) -> None:
    """Make ``factory(graph)`` the session ``Tensor.eval()`` creates when given none.

        >>> import graphc as gc
        >>> _SESSION_FACTORY[0] is gc.Session       # graphc registers its Session on import
        True
    """
    _SESSION_FACTORY[0] = factory


class Tensor:
    """A symbolic handle to the output of one node of a ``Graph``.

    Supports ``+ - * / // % @ ** -x abs()``, ordering comparisons (``<`` ...,
    giving bool tensors) and numpy-style slicing ``x[1:, None, ::2]``. As in
    TensorFlow 1, ``==`` is identity so tensors can be dict keys; use
    ``gc.equal`` for elementwise equality.
    """
    __slots__ = ("graph", "node")
    __array_priority__ = 100  # numpy defers to our reflected operators

    def __init__(self, graph: Graph, node: int):
        self.graph, self.node = graph, node

    @property
    def spec(self) -> TensorSpec:
        return self.graph.spec(self.node)

    @property
    def shape(self) -> tuple:
        return self.graph.spec(self.node).shape

    def get_shape(self) -> tuple:
        return self.shape

    @property
    def dtype(self) -> np.dtype:
        return self.graph.spec(self.node).dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def name(self) -> str:
        return self.graph.name(self.node)

    @property
    def op(self) -> Operation:
        return Operation(self.graph, self.node)

    def eval(self, feed_dict=None, session=None):
        """Evaluate in ``session`` (or a fresh ``gc.Session``): ``sess.run(self, feed_dict)``.

            >>> import graphc as gc
            >>> (gc.constant(2.0) * 3.0).eval().item()
            6.0
        """
        if session is None:
            if _SESSION_FACTORY[0] is None:
                raise GraphError("Tensor.eval() without a session needs graphc.Session: import graphc")
            session = _SESSION_FACTORY[0](self.graph)
        return session.run(self, feed_dict=feed_dict)

    def __repr__(self) -> str:
        return f"<Tensor {self.name!r} shape={self.shape} dtype={self.dtype.name}>"

    def __eq__(self, other):
        return isinstance(other, Tensor) and other.graph is self.graph and other.node == self.node

    def __hash__(self):
        return hash((id(self.graph), self.node))

    def __bool__(self):
        raise TypeError(f"the truth value of symbolic tensor {self.name!r} is unknown while "
                        "building the graph; use gc.cond / gc.while_loop (gc.function turns a "
                        "Python if/while on a tensor into them, except where the block returns, "
                        "breaks or continues), gc.where, or run it in a Session first")

    def __len__(self):
        if not self.shape or self.shape[0] is None:
            raise TypeError(f"len() of tensor {self.name!r} with shape {self.shape} is unknown")
        return self.shape[0]

    def __iter__(self) -> Iterator:
        raise TypeError(f"tensor {self.name!r} is symbolic and cannot be iterated; "
                        "index it (x[i]) or use gc.unstack")

    # arithmetic
    def __add__(self, o): return _ops().add(self, o)
    def __radd__(self, o): return _ops().add(o, self)
    def __sub__(self, o): return _ops().subtract(self, o)
    def __rsub__(self, o): return _ops().subtract(o, self)
    def __mul__(self, o): return _ops().multiply(self, o)
    def __rmul__(self, o): return _ops().multiply(o, self)
    def __truediv__(self, o): return _ops().divide(self, o)
    def __rtruediv__(self, o): return _ops().divide(o, self)
    def __floordiv__(self, o): return _ops().floordiv(self, o)
    def __rfloordiv__(self, o): return _ops().floordiv(o, self)
    def __mod__(self, o): return _ops().mod(self, o)
    def __rmod__(self, o): return _ops().mod(o, self)
    def __pow__(self, o): return _ops().pow(self, o)
    def __rpow__(self, o): return _ops().pow(o, self)
    def __matmul__(self, o): return _ops().matmul(self, o)
    def __rmatmul__(self, o): return _ops().matmul(o, self)
    def __neg__(self): return _ops().negative(self)
    def __pos__(self): return self
    def __abs__(self): return _ops().abs(self)
    def __invert__(self): return _ops().logical_not(self)
    def __and__(self, o): return _ops().logical_and(self, o)
    def __or__(self, o): return _ops().logical_or(self, o)
    # comparisons (== stays identity, as in TensorFlow 1)
    def __lt__(self, o): return _ops().less(self, o)
    def __le__(self, o): return _ops().less_equal(self, o)
    def __gt__(self, o): return _ops().greater(self, o)
    def __ge__(self, o): return _ops().greater_equal(self, o)

    def __getitem__(self, key):
        return _ops().getitem(self, key)

    # TF-compat conveniences on variables and tensors
    @property
    def T(self):
        return _ops().transpose(self)
