"""gc.function's AutoGraph: Python if/while on tensors traced into cond/while_loop, Python
control flow on Python values kept as it is, and clear errors where a block cannot convert."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
from graphc.errors import GraphError
from graphc.funcgraph import walk

SCALE = 3.0       # a module global the converted functions must keep reading live


def ops_of(fn, *args):
    return {g.op(n) for g, n in walk(fn.get_graph(*args))}


@pytest.mark.parametrize("executor", ["reference", "compiled"])
def test_if_on_a_tensor_becomes_one_cond(executor):
    @gc.function(executor=executor)
    def f(x):
        y = x * 0.0
        if gc.reduce_sum(x) > 0.0:
            y = x * 2.0
            z = 1.0
        else:
            y = y - x
            z = 2.0
        return y * z
    pos, neg = np.array([1.0, 2.0], np.float32), np.array([-1.0, -3.0], np.float32)
    assert f(pos).tolist() == [2.0, 4.0] and f(neg).tolist() == [2.0, 6.0]
    assert f.trace_count == 1 and "cond" in ops_of(f, pos)


def test_python_values_keep_python_control_flow():
    @gc.function
    def f(x, double, times):
        if double:
            x = x * 2.0
        while times > 0:
            x = x + 1.0
            times = times - 1
        return x
    x = np.zeros(2, np.float32)
    assert f(x, True, 3).tolist() == [3.0, 3.0] and f(x, False, 1).tolist() == [1.0, 1.0]
    assert not {"cond", "while_loop"} & ops_of(f, x, True, 3)


def test_while_on_a_tensor_and_live_globals_and_closures():
    global SCALE
    limit = np.float32(100.0)

    @gc.function
    def grow(x):
        steps = 0
        while gc.reduce_sum(x) < limit:        # a closure variable
            x = x * SCALE                      # a module global
            steps = steps + 1
        return x, steps
    x, steps = grow(np.array([1.0, 1.0], np.float32))
    assert x.tolist() == [81.0, 81.0] and int(steps) == 4
    assert "while_loop" in ops_of(grow, np.ones(2, np.float32))
    SCALE = 10.0
    try:
        grow2 = gc.function(grow.python_function)
        assert int(grow2(np.array([1.0, 1.0], np.float32))[1]) == 2
    finally:
        SCALE = 3.0


def test_blocks_that_cannot_convert_give_clear_errors():
    @gc.function
    def one_sided(x):
        if gc.reduce_sum(x) > 0.0:
            y = x
        return y
    with pytest.raises(GraphError, match="variable 'y' is set in only one branch"):
        one_sided(np.ones(2, np.float32))

    @gc.function
    def early_return(x):
        if gc.reduce_sum(x) > 0.0:
            return x
        return -x
    with pytest.raises(TypeError, match="gc.cond / gc.while_loop"):
        early_return(np.ones(2, np.float32))

    @gc.function(autograph=False)
    def plain(x):
        if gc.reduce_sum(x) > 0.0:
            x = -x
        return x
    with pytest.raises(TypeError, match="truth value of symbolic tensor"):
        plain(np.ones(2, np.float32))


def test_converted_code_reports_the_users_lines():
    @gc.function
    def bad(x):
        if gc.reduce_sum(x) > 0.0:
            x = gc.reshape(x, (5,))
        return x
    with pytest.raises(Exception, match=r"test_autograph.py:\d+"):
        bad(np.ones(2, np.float32))
