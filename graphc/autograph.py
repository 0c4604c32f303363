"""Python ``if`` and ``while`` on tensors, traced into ``gc.cond`` and ``gc.while_loop`` (AutoGraph's
idea, for ``gc.function``).

``convert(fn)`` rewrites the source of ``fn``: each ``if`` becomes a call of ``if_stmt`` with its two
branches as functions, and each ``while`` a call of ``while_stmt`` with its test and body as
functions, over the variables the statement assigns. At trace time a test that is a Python value
runs as plain Python (the branch taken, the loop unrolled), and a test that is a tensor becomes a
``cond`` / ``while_loop`` node. Statements that leave the block (``return``, ``break``,
``continue``, ``raise``...) keep their Python form; a tensor test there raises the usual error,
which names the tensor.

    >>> import graphc as gc, numpy as np
    >>> @gc.function
    ... def collatz_steps(n):
    ...     steps = 0
    ...     while n > 1:
    ...         if gc.equal(n % 2, 0):      # == compares tensor handles, as in TF 1
    ...             n = n // 2
    ...         else:
    ...             n = 3 * n + 1
    ...         steps = steps + 1
    ...     return steps
    >>> int(collatz_steps(np.int32(27))), int(collatz_steps(np.int32(1)))
    (111, 0)
"""
from __future__ import annotations

import ast
import functools
import inspect
import textwrap

from .errors import GraphError
from .ir import Tensor

_LEAVES = (ast.Return, ast.Break, ast.Continue, ast.Raise, ast.Yield, ast.YieldFrom, ast.Global,
           ast.Nonlocal, ast.Try)


class _Undefined:
    """A variable a converted statement assigns that had no value before it."""
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return f"<undefined {self.name}>"


def if_stmt(test, true_fn, false_fn, values: tuple, names: tuple):
    """``if test`` over the assigned variables ``values``: Python for a Python test, else ``gc.cond``."""
    if not isinstance(test, Tensor):
        return true_fn(*values) if test else false_fn(*values)
    from .ops.control_flow import cond
    t_out, f_out = [], []

    def branch(fn, sink):
        def run():
            out = fn(*values)
            _require_defined(out, names, "if", test)
            sink.append(out)
            return list(out)
        return run
    res = cond(test, branch(true_fn, t_out), branch(false_fn, f_out), name="if")
    return tuple(res)


def while_stmt(test_fn, body_fn, values: tuple, names: tuple):
    """``while test`` over the loop variables ``values``: a Python loop while the test is a Python
    value, else ``gc.while_loop`` (from the first iteration whose test is a tensor)."""
    test = test_fn(*values)
    while not isinstance(test, Tensor):
        if not test:
            return values
        values = tuple(body_fn(*values))
        test = test_fn(*values)
    _require_defined(values, names, "while", test)
    from .ops.control_flow import while_loop
    from .ops.registry import convert_to_tensor
    start = [convert_to_tensor(v) for v in values]
    out = while_loop(lambda *v: test_fn(*v), lambda *v: list(body_fn(*v)), start, name="while")
    return tuple(out)


def _require_defined(values, names, what, test):
    for v, n in zip(values, names):
        if isinstance(v, _Undefined):
            raise GraphError(f"gc.function: variable {n!r} is set in only one branch (or only inside) "
                             f"of an `{what}` whose test {test.name!r} is a tensor; give it a value "
                             "before the statement, so both paths define it")


# -- the source rewrite -----------------------------------------------------------------------------------
def _assigned(stmts) -> list[str]:
    """Names the statements assign (not inside nested functions, classes or comprehensions)."""
    out: dict[str, None] = {}

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
                             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                out.setdefault(node.name)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            out.setdefault(node.id)
        for child in ast.iter_child_nodes(node):
            visit(child)
    for s in stmts:
        visit(s)
    return [n for n in out if not n.startswith("__ag")]


def _leaves_block(stmts) -> bool:
    """Whether the statements leave the block (return, break...), not counting nested functions."""
    nested = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)

    def walk(node):
        if isinstance(node, nested):
            return False
        return isinstance(node, _LEAVES) or any(walk(c) for c in ast.iter_child_nodes(node))
    return any(walk(s) for s in stmts)


class _Rewrite(ast.NodeTransformer):
    def __init__(self):
        self.count = 0

    def _fn(self, name, params, body, ret):
        args = ast.arguments(posonlyargs=[], args=[ast.arg(p) for p in params], kwonlyargs=[],
                             kw_defaults=[], defaults=[])
        return _def(name, args, list(body) + [ret])

    def _values(self, names):
        # each variable's value now, or an _Undefined marker when it has none yet
        return ast.Tuple([ast.Call(ast.Name("__ag_value", ast.Load()),
                                   [ast.Lambda(ast.arguments(posonlyargs=[], args=[], kwonlyargs=[],
                                                             kw_defaults=[], defaults=[]),
                                               ast.Name(n, ast.Load())), ast.Constant(n)], [])
                          for n in names], ast.Load())

    def _assign(self, names, call):
        if not names:
            return ast.Expr(call)
        return ast.Assign([ast.Tuple([ast.Name(n, ast.Store()) for n in names], ast.Store())], call)

    def _names(self, names):
        return ast.Tuple([ast.Constant(n) for n in names], ast.Load())

    def visit_If(self, node):
        self.generic_visit(node)
        if _leaves_block(node.body) or _leaves_block(node.orelse):
            return node
        names = _assigned(node.body + node.orelse)
        k = self.count = self.count + 1
        ret = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in names], ast.Load()))
        t = self._fn(f"__ag_true{k}", names, node.body, ret)
        f = self._fn(f"__ag_false{k}", names, node.orelse or [ast.Pass()], ret)
        call = ast.Call(ast.Attribute(ast.Name("__ag", ast.Load()), "if_stmt", ast.Load()),
                        [node.test, ast.Name(t.name, ast.Load()), ast.Name(f.name, ast.Load()),
                         self._values(names), self._names(names)], [])
        return [ast.copy_location(x, node) for x in (t, f, self._assign(names, call))]

    def visit_While(self, node):
        self.generic_visit(node)
        if node.orelse or _leaves_block(node.body):
            return node
        names = _assigned(node.body)
        k = self.count = self.count + 1
        ret = ast.Return(ast.Tuple([ast.Name(n, ast.Load()) for n in names], ast.Load()))
        test = self._fn(f"__ag_test{k}", names, [], ast.Return(node.test))
        body = self._fn(f"__ag_body{k}", names, node.body, ret)
        call = ast.Call(ast.Attribute(ast.Name("__ag", ast.Load()), "while_stmt", ast.Load()),
                        [ast.Name(test.name, ast.Load()), ast.Name(body.name, ast.Load()),
                         self._values(names), self._names(names)], [])
        return [ast.copy_location(x, node) for x in (test, body, self._assign(names, call))]


def _value(get, name):
    try:
        return get()
    except NameError:
        return _Undefined(name)


def convert(fn):
    """``fn`` with its ``if``/``while`` statements routed through ``if_stmt``/``while_stmt``; ``fn``
    itself when its source is not available (a lambda, a builtin, code typed at a prompt) or holds
    no such statement."""
    try:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return fn
    fdef = tree.body[0] if tree.body else None
    if not isinstance(fdef, ast.FunctionDef) or not any(isinstance(n, (ast.If, ast.While))
                                                        for n in ast.walk(fdef)):
        return fn
    fdef.decorator_list = []
    rw = _Rewrite()
    fdef.body = [x for s in fdef.body for x in _as_list(rw.visit(s))]
    # the function is defined inside a factory whose parameters are its free variables and the
    # helpers, so it keeps its module's (live) globals and its closure
    free = fn.__code__.co_freevars
    factory = _def("__ag_factory", ast.arguments(
        posonlyargs=[], args=[ast.arg(n) for n in free + ("__ag", "__ag_value")], kwonlyargs=[],
        kw_defaults=[], defaults=[]), [fdef, ast.Return(ast.Name(fdef.name, ast.Load()))])
    ast.copy_location(factory, fdef)
    module = ast.Module([factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, fn.__code__.co_firstlineno - 1)     # tracebacks show the user's lines
    namespace = fn.__globals__
    exec(compile(module, inspect.getsourcefile(fn) or "<autograph>", "exec"), namespace)
    make = namespace.pop("__ag_factory")
    cells = [c.cell_contents for c in (fn.__closure__ or ())]
    converted = make(*cells, _module(), _value)
    converted.__defaults__ = fn.__defaults__
    converted.__kwdefaults__ = fn.__kwdefaults__
    return functools.wraps(fn)(converted)


def _def(name, args, body):
    extra = {"type_params": []} if "type_params" in ast.FunctionDef._fields else {}
    return ast.FunctionDef(name=name, args=args, body=body, decorator_list=[], returns=None, **extra)


def _as_list(x):
    return x if isinstance(x, list) else [x]


def _module():
    import sys
    return sys.modules[__name__]
