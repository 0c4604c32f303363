"""Keras-model nodes carry the user's source line as their ``trace`` (issue #21): the line that created
(Sequential) or called (functional API) the layer, not a line of graphc or of the ``graphc`` script."""
import inspect

from graphc.layers import Dense, Input
from graphc.models import Model, Sequential
from graphc.tools.workloads import model_program

HERE = __file__


def _line(marker: str) -> str:
    """``file:line`` of the line of this file that ends with ``# <marker>``."""
    src = inspect.getsource(inspect.getmodule(_line)).splitlines()
    return f"{HERE}:{next(k + 1 for k, s in enumerate(src) if s.rstrip().endswith('# ' + marker))}"


def _traces(prog):
    g = prog.graph
    return {g.name(n): g.trace(n) for n in prog.needed()}


def test_sequential_nodes_trace_to_add_lines():
    m = Sequential()
    m.add(Dense(8, activation="relu", input_dim=4))  # first
    m.add(Dense(2))  # second
    m.compile("adam", "mse")
    first, second = m.layers[0].name, m.layers[1].name
    tr = _traces(model_program(m, train=True))  # program
    assert tr[f"{first}/kernel"] == _line("first") and tr[f"{first}/bias"] == _line("first")
    assert tr[f"train/{first}/matmul"] == _line("first")
    assert tr[f"train/{second}/matmul"] == _line("second")
    # nodes of no layer (loss, gradients, optimizer) keep the innermost user frame: here the test
    assert all(t.startswith(HERE) for t in tr.values()), set(tr.values())
    assert any(t == _line("program") for t in tr.values())


def test_functional_nodes_trace_to_call_line():
    inp = Input((4,))
    dense = Dense(3)  # created
    out = dense(inp)  # called
    m = Model(inp, out)
    m.compile("sgd", "mse")
    tr = _traces(model_program(m))
    assert tr[f"{dense.name}/kernel"] == _line("called")
    assert tr[f"predict/{dense.name}/matmul"] == _line("called")
