"""The op traits of ``OpDef`` (registry-driven): each trait holds for every op that has it, checked
against the ops' numpy references, and no module outside the registry keeps lists of op names."""
import ast
import math
import os
import re
import string

import numpy as np
import pytest

import graphc as gc
from graphc.ir import TensorSpec
from graphc.ops.registry import OPS, get_op
from graphc.ops.state import update_value
from graphc.passes import optimize
from graphc.interpreter import evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DTYPES = [np.dtype("float64"), np.dtype("int32"), np.dtype("bool")]


def ops_with(trait):
    return sorted(n for n, o in OPS.items() if getattr(o, trait))


def binary_dtype(op):
    """The first dtype of DTYPES that ``op`` accepts for two inputs with empty attrs, else None."""
    for dt in DTYPES:
        try:
            get_op(op).infer([TensorSpec((3, 4), dt), TensorSpec((3, 4), dt)], {})
            return dt
        except Exception:  # noqa: BLE001 - not a two-input op of this dtype
            continue
    return None


def sample(rng, dt, shape, special=False):
    """Random values of ``dt``; floats with NaN, +-Inf and +-0 mixed in when ``special``."""
    if dt.kind == "b":
        return rng.random(shape) < 0.5
    if dt.kind == "i":
        return rng.integers(1, 10, shape).astype(dt)
    x = rng.uniform(0.5, 3.0, shape).astype(dt)
    if special:
        x.flat[:5] = [np.nan, np.inf, -np.inf, 0.0, -0.0]
    return x


# -- commutative -------------------------------------------------------------------------------------
def test_commutative_ops_are_the_expected_ones():
    assert ops_with("commutative") == sorted(["add", "mul", "maximum", "minimum", "equal", "not_equal",
                                              "logical_and", "logical_or", "squared_difference"])


@pytest.mark.parametrize("op", ops_with("commutative"))
def test_commutative_op_commutes(op, rng):
    ref = get_op(op).reference
    dt = binary_dtype(op)
    assert dt is not None, f"{op} is marked commutative but takes no two inputs"
    for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((), (2, 3))]:
        a, b = sample(rng, dt, sa, special=True), sample(rng, dt, sb)
        b2 = sample(rng, dt, sa, special=True)
        for x, y in [(a, b), (a, b2)]:
            with np.errstate(invalid="ignore"):             # inf - inf
                xy, yx = ref([x, y], {}), ref([y, x], {})
            assert xy.dtype == yx.dtype
            np.testing.assert_array_equal(xy, yx)   # NaN == NaN here; +0 == -0


@pytest.mark.parametrize("op", sorted(n for n, o in OPS.items() if o.fusion == "elementwise"
                                      and not o.commutative and n != "fused_elementwise"))
def test_other_binary_elementwise_ops_do_not_commute(op, rng):
    # a missing trait shows too: an elementwise op of two inputs not marked commutative must not commute
    dt = binary_dtype(op)
    if dt is None:
        return      # not a two-input op
    ref = get_op(op).reference
    a, b = sample(rng, dt, (6, 7)), sample(rng, dt, (6, 7))
    assert not np.array_equal(ref([a, b], {}), ref([b, a], {}), equal_nan=dt.kind == "f"), \
        f"{op} commutes on random inputs: mark it commutative=True (CSE then merges a op b with b op a)"


# -- view ----------------------------------------------------------------------------------------------
VIEW_CASES = {       # x has shape (2, 1, 3, 4)
    "reshape": lambda x: gc.reshape(x, (2, 12)),
    "reshape_like": lambda x: gc.reshape_like(x, gc.zeros((6, 4))),
    "expand_dims": lambda x: gc.expand_dims(x, 0),
    "squeeze": lambda x: gc.squeeze(x, 1),
}


def test_every_view_op_has_a_case():
    assert sorted(VIEW_CASES) == ops_with("view")


@pytest.mark.parametrize("op", sorted(VIEW_CASES))
def test_view_op_returns_a_view_in_row_major_order(op, rng):
    x = gc.placeholder("float32", (2, 1, 3, 4))
    y = VIEW_CASES[op](x)
    g = y.graph
    assert g.op(y.node) == op
    value = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
    ins = [value] + [evaluate(g, [i]).values[0] for i in g.inputs(y.node)[1:]]
    out = get_op(op).reference(ins, g.attrs(y.node))
    assert np.shares_memory(out, value)
    assert out.shape == tuple(g.spec(y.node).shape) and out.dtype == value.dtype
    np.testing.assert_array_equal(out.ravel(), value.ravel())


def test_reshape_chain_through_view_ops(rng):
    # the simplify rule that reads the view trait: a view of a view is one reshape, the same values
    x = gc.placeholder("float32", (2, 1, 3, 4), name="x")
    y = gc.reshape(gc.reshape_like(gc.squeeze(x, 1), gc.zeros((6, 4))), (24,))
    opt, rep = optimize(x.graph, [y], feeds=[x])
    ops = [opt.op(n) for n in opt.topo_order(rep.fetches)]
    assert ops == ["placeholder", "reshape"]
    v = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
    got = evaluate(opt, rep.fetches, {x.node: v}).values[0]
    np.testing.assert_array_equal(got, v.ravel())


# -- state updates ------------------------------------------------------------------------------------
def test_state_update_ops():
    assert {n: OPS[n].state_update for n in ops_with("state_update")} == \
        {"assign": "assign", "assign_add": "add", "assign_sub": "sub"}


@pytest.mark.parametrize("op", ops_with("state_update"))
@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64"])
def test_update_value_is_the_reference(op, dtype, rng):
    opdef = get_op(op)
    dt = np.dtype(dtype)
    cur = rng.integers(-50, 50, (3, 4)).astype(dt)
    if dt.kind == "f":
        cur = cur * dt.type(0.37)
    cur = np.asfortranarray(cur)      # a variable's value in any layout; the result is C-ordered
    for val in [np.ascontiguousarray(cur * 2), cur[::-1, ::-1], cur]:
        want = opdef.reference([cur, val], {})
        got = update_value(op, cur, val)
        assert got.dtype == want.dtype == dt and got.flags.c_contiguous and got.shape == (3, 4)
        np.testing.assert_array_equal(got, want)
        assert not np.shares_memory(got, cur) and not np.shares_memory(got, val)
        if opdef.state_update != "assign":   # fusion's rewrite assign(v, add/sub(v, d)): the same value
            same = get_op(opdef.state_update).reference([cur, val], {})
            np.testing.assert_array_equal(got, same)
            assert same.dtype == got.dtype


def test_update_value_of_an_uninitialized_variable_and_a_non_assign_op():
    v = np.arange(6, dtype=np.float32).reshape(2, 3).T        # a transposed (F-ordered) value
    got = update_value("assign", None, v)
    assert got.flags.c_contiguous and not np.shares_memory(got, v)
    np.testing.assert_array_equal(got, v)
    with pytest.raises(ValueError, match="not an assign op"):
        update_value("add", v, v)


# -- reduce, epilogue: what fusion takes ----------------------------------------------------------------
REDUCE_CASES = {n: (lambda n: lambda x: getattr(gc, n)(x, axis=1))(n) for n in
                ["reduce_sum", "reduce_mean", "reduce_max", "reduce_min", "reduce_prod"]}
REDUCE_CASES.update({"reduce_any": lambda x: gc.reduce_any(x > 1.0, axis=1),
                     "reduce_all": lambda x: gc.reduce_all(x > 1.0, axis=1)})


def test_every_reduce_op_has_a_case():
    assert sorted(REDUCE_CASES) == ops_with("reduce")


@pytest.mark.parametrize("op", sorted(REDUCE_CASES))
def test_reduce_op_fuses_its_prologue(op, rng):
    x = gc.placeholder("float64", (4, 5), name="x")
    y = REDUCE_CASES[op](gc.exp(x) * 0.5)
    opt, rep = optimize(x.graph, [y], feeds=[x])
    assert opt.op(rep.fetches[0]) == "fused_reduction" and opt.attrs(rep.fetches[0])["reduce"] == op
    v = rng.uniform(-1, 1, (4, 5))
    want = evaluate(x.graph, [y.node], {x.node: v}).values[0]
    np.testing.assert_allclose(evaluate(opt, rep.fetches, {x.node: v}).values[0], want, rtol=1e-12)


EPILOGUE_CASES = {
    "matmul": ((3, 4), lambda x: gc.matmul(x, gc.constant(np.ones((4, 5))))),
    "conv2d": ((1, 5, 5, 2), lambda x: gc.nn.conv2d(x, gc.constant(np.ones((3, 3, 2, 3))), padding="SAME")),
}


def test_every_epilogue_op_has_a_case():
    assert sorted(EPILOGUE_CASES) == ops_with("epilogue")


@pytest.mark.parametrize("op", sorted(EPILOGUE_CASES))
def test_epilogue_op_fuses_its_consumer(op, rng):
    shape, build = EPILOGUE_CASES[op]
    x = gc.placeholder("float64", shape, name="x")
    y = gc.relu(build(x) - 1.0)
    opt, rep = optimize(x.graph, [y], feeds=[x])
    assert opt.op(rep.fetches[0]) == "fused_contraction" and opt.attrs(rep.fetches[0])["contraction"] == op
    v = rng.uniform(-1, 1, shape)
    want = evaluate(x.graph, [y.node], {x.node: v}).values[0]
    np.testing.assert_allclose(evaluate(opt, rep.fetches, {x.node: v}).values[0], want, rtol=1e-12)


# -- external, reads_shape_only --------------------------------------------------------------------------
def test_external_ops_are_never_merged():
    assert ops_with("external") == ["placeholder", "variable"]
    a, b = gc.placeholder("float32", (2,)), gc.placeholder("float32", (2,))
    v, w = gc.Variable(np.zeros(2, np.float32)), gc.Variable(np.zeros(2, np.float32))
    y = a + b + v + w
    opt, rep = optimize(a.graph, [y])      # unfed: only the trait keeps CSE from merging a and b
    assert sorted(opt.op(n) for n in opt.nodes() if get_op(opt.op(n)).external) == \
        ["placeholder", "placeholder", "variable", "variable"]


@pytest.mark.parametrize("op", ops_with("reads_shape_only"))
def test_reads_shape_only_op_ignores_the_values(op, rng):
    # lower.py evaluates these at bind time on a zero array of the input's shape
    x = rng.standard_normal((3, 4, 2))
    for dt in ("int32", "int64"):
        ref = get_op(op).reference
        attrs = {"out_type": np.dtype(dt), "dtype": np.dtype(dt)}    # (shape, size / zeros_like, ones_like)
        np.testing.assert_array_equal(ref([x], attrs), ref([np.broadcast_to(np.zeros(()), x.shape)], attrs))
        assert ref([x], attrs).dtype == np.dtype(dt)


# -- elementwise templates ----------------------------------------------------------------------------------
@pytest.mark.parametrize("op", sorted(n for n, o in OPS.items() if o.fusion == "elementwise"))
def test_elementwise_op_has_a_scalar_template(op, rng):
    opdef = get_op(op)
    assert isinstance(opdef.scalar, str) and opdef.scalar
    if op == "fused_elementwise":
        return      # its program's steps are the templates
    fields = [f for _, f, _, _ in string.Formatter().parse(opdef.scalar) if f is not None]
    assert "0" in fields
    if any(not f.isdigit() for f in fields):
        return      # needs attrs (alpha, dtype...): the op's own tests run it through the fused kernels
    dt = np.dtype("bool" if op.startswith("logical") else "float64")
    for k in (1, 2, 3):             # the op's number of inputs: the first count its shape rule takes
        specs = [TensorSpec((), np.dtype("bool") if op == "where" and i == 0 else dt) for i in range(k)]
        try:
            opdef.infer(specs, {})
            break
        except Exception:  # noqa: BLE001
            continue
    else:
        return      # its shape rule needs attrs (cast's dtype)
    for _ in range(5):
        args = [sample(rng, s.dtype, ()) for s in specs]
        got = eval(opdef.scalar.format(*[f"a[{i}]" for i in range(k)]),
                   {"math": math, "np": np, "a": [a.item() for a in args]})
        want = opdef.reference([np.asarray(a) for a in args], {})
        np.testing.assert_allclose(float(got), float(want), rtol=1e-12)


# -- no op-name lists outside the registry ------------------------------------------------------------------
NAME_RE = re.compile(r"^\s*\w*(_OPS|COMMUTATIVE|RESHAPES|CONTRACTIONS|REDUCTIONS|SHAPE_READERS"
                     r"|STATE_UPDATES)\s*[:=]", re.M)


def _op_name_constants(path):
    """Module-level names bound to a tuple/list/set/frozenset of op names, or a dict from op names to
    strings (a trait table)."""
    tree = ast.parse(open(path).read())
    found = []
    for node in tree.body:
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or node.value is None \
                or getattr(node.targets[0] if isinstance(node, ast.Assign) else node.target, "id", "") == "__all__":
            continue
        v = node.value
        if isinstance(v, ast.Call) and getattr(v.func, "id", "") in ("frozenset", "set", "tuple") and v.args:
            v = v.args[0]
        if isinstance(v, (ast.Tuple, ast.List, ast.Set)):
            items = v.elts
        elif isinstance(v, ast.Dict) and all(isinstance(x, ast.Constant) for x in v.values):
            items = v.keys
        else:
            continue
        names = [e.value for e in items if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        if len(names) == len(items) >= 1 and all(n in OPS for n in names):
            found.append(f"{path}:{node.lineno} {names}")
    return found


def test_no_module_keeps_op_name_lists():
    bad = []
    for top in ("graphc", "passes", "runtime"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith(".py"):
                    continue
                path = os.path.join(dirpath, f)
                rel = os.path.relpath(path, ROOT)
                bad += _op_name_constants(path)
                bad += [f"{rel}: {m.group(0).strip()}" for m in NAME_RE.finditer(open(path).read())]
    assert not bad, "op knowledge belongs on OpDef (a trait), not in name lists: " + "; ".join(bad)


def test_the_list_finder_finds_lists(tmp_path):
    p = tmp_path / "m.py"
    p.write_text('A = ("add", "mul")\nB = frozenset({"reshape"})\nC = {"assign_add": "add"}\n'
                 'D = ("add", 1)\nE = {"add": len}\n')
    assert [s.split(" ", 1)[0].rsplit(":", 1)[1] for s in _op_name_constants(str(p))] == ["1", "2", "3"]
