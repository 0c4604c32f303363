"""The recurrent-training passes: merge_gemms (passes/gemm.py), split_lstm_grad_inputs and
save_lstm_gates (passes/rnn.py): node counts before/after and values against the reference."""
import numpy as np

import graphc as gc
from graphc.interpreter import evaluate
from graphc.passes import merge_gemms, optimize, sample_inputs, save_lstm_gates, split_lstm_grad_inputs
from graphc.passes.gemm import MIN_PRODUCTS

from test_passes import check_same, count, one_pass


def _products(n, rows=None, fetch_one=False):
    g = gc.Graph()
    with g.as_default():
        hs = [gc.placeholder("float64", (rows, 4), name=f"h{i}") for i in range(n)]
        ds = [gc.placeholder("float64", (rows, 3), name=f"d{i}") for i in range(n)]
        prods = [gc.matmul(h, d, transpose_a=True) for h, d in zip(hs, ds)]
        bias = gc.placeholder("float64", (4, 3), name="b")
        total = bias
        for p in prods:
            total = total + p
    return g, [total] + ([prods[0]] if fetch_one else []), hs + ds + [bias]


def test_sum_of_products_becomes_one_gemm_over_stacked_rows():
    g, fetches, feeds = _products(7, rows=None)
    opt, rep = check_same(g, fetches, feeds, pipeline=one_pass(merge_gemms))
    assert count(opt, "matmul") == 1 and count(opt, "concat") == 2
    assert count(opt, "add") == 1                      # the one other term
    assert rep.passes[0].nodes_after < rep.passes[0].nodes_before
    assert "sum_of_products x1" in rep.passes[0].notes


def test_few_products_or_a_fetched_product_stay():
    g, fetches, feeds = _products(MIN_PRODUCTS - 1, rows=5)
    opt, _ = check_same(g, fetches, feeds, pipeline=one_pass(merge_gemms))
    assert count(opt, "matmul") == MIN_PRODUCTS - 1 and count(opt, "concat") == 0
    g, fetches, feeds = _products(MIN_PRODUCTS + 1, rows=5, fetch_one=True)
    opt, _ = check_same(g, fetches, feeds, pipeline=one_pass(merge_gemms))
    assert count(opt, "matmul") == 2                   # the fetched product, and the other four merged


def test_an_existing_stack_of_the_right_operands_is_reused():
    g = gc.Graph()
    with g.as_default():
        hs = [gc.placeholder("float64", (None, 4), name=f"h{i}") for i in range(5)]
        ds = [gc.placeholder("float64", (None, 3), name=f"d{i}") for i in range(5)]
        stacked = gc.stack(ds[::-1], axis=0)             # another order than the sum's
        total = gc.matmul(hs[0], ds[0], transpose_a=True)
        for h, d in zip(hs[1:], ds[1:]):
            total = total + gc.matmul(h, d, transpose_a=True)
        other = gc.reduce_sum(stacked, axis=[0, 1])
    opt, _ = check_same(g, [total, other], hs + ds, pipeline=one_pass(merge_gemms))
    assert count(opt, "stack") == 1 and count(opt, "concat") == 1 and count(opt, "matmul") == 1


def test_a_batched_product_summed_over_its_batch_is_one_gemm():
    g = gc.Graph()
    with g.as_default():
        a = gc.placeholder("float64", (6, None, 4), name="a")
        b = gc.placeholder("float64", (6, None, 3), name="b")
        y = gc.reduce_sum(gc.matmul(a, b, transpose_a=True), axis=0)
        kept = gc.reduce_sum(gc.matmul(a, b, transpose_a=True), axis=1)     # not the batch axis
    opt, rep = check_same(g, [y, kept], [a, b], pipeline=one_pass(merge_gemms))
    assert "summed_batch_product x1" in rep.passes[0].notes
    assert count(opt, "reshape") == 2 and count(opt, "reduce_sum") == 1


def _lstm_inputs(steps, units):
    x = gc.placeholder("float64", (None, steps, 3), name="x")
    w = gc.Variable(np.linspace(-1, 1, 3 * 4 * units).reshape(3, 4 * units), name="w")
    u = gc.Variable(np.linspace(1, -1, units * 4 * units).reshape(units, 4 * units), name="u")
    return x, w, u


def _unrolled_lstm(steps=3, units=2, whole_reader=False):
    g = gc.Graph()
    with g.as_default():
        x, w, u = _lstm_inputs(steps, units)
        h = c = None
        outs = []
        for t in range(steps):
            z = gc.matmul(x[:, t], w) + (0.0 if h is None else gc.matmul(h, u))
            hc = gc.nn.lstm_cell(z, c)
            outs.append(hc)
            h, c = hc[:, :units], hc[:, units:]
        loss = gc.reduce_sum(h * h) + (gc.reduce_sum(gc.stack(outs)) if whole_reader else 0.0)
        grads = gc.gradients(loss, [w, u])
    return g, [loss] + grads, [x]


def test_lstm_training_steps_keep_gates_and_read_dh_dc_apart():
    g, fetches, feeds = _unrolled_lstm()
    pipe = ["dce"] + one_pass(split_lstm_grad_inputs) + one_pass(save_lstm_gates)
    opt, rep = check_same(g, fetches, feeds, pipeline=pipe)
    cells = [n for n in opt.topo_order() if opt.op(n) == "lstm_cell"]
    grads = [n for n in opt.topo_order() if opt.op(n) == "lstm_cell_grad"]
    assert len(cells) == 3 and all(opt.attrs(n).get("gates") for n in cells)
    assert all(opt.spec(n).shape == (None, 12) for n in cells)
    assert sum(bool(opt.attrs(n).get("split_d")) for n in grads) == 2       # the last step has no dc in
    assert count(opt, "strided_slice_grad_n") == 0
    assert rep.passes[1].changed == 2 and rep.passes[2].changed == 3
    assert sum(bool(opt.attrs(n).get("z_sum")) for n in cells) == 2         # the first step has no h @ U
    fed_by_add = [n for n in cells if opt.op(opt.inputs(n)[0]) == "add"]
    assert len(fed_by_add) == 1                    # the first step's x @ W + 0.0 (a broadcast: kept)


def test_a_cell_output_read_whole_gets_the_h_c_view():
    g, fetches, feeds = _unrolled_lstm(whole_reader=True)
    opt, _ = check_same(g, fetches, feeds, pipeline=["dce", "save_lstm_gates"])
    (stack,) = [n for n in opt.topo_order() if opt.op(n) == "stack"]
    assert all(opt.spec(i).shape == (None, 4) for i in opt.inputs(stack))


def test_default_pipeline_values_match_bit_for_bit_on_the_lstm_gradient():
    # saved gates and split inputs change no bit of the gradient (the same functions, same inputs)
    g, fetches, feeds = _unrolled_lstm(steps=4)
    nodes = [f.node for f in fetches]
    plain = [p for p in ("dce", "fold", "simplify", "cse")]
    a, ra = optimize(g, nodes, feeds=[x.node for x in feeds], pipeline=plain)
    b, rb = optimize(g, nodes, feeds=[x.node for x in feeds], pipeline=plain + ["split_lstm_grad_inputs",
                                                                                "save_lstm_gates"])
    fv, state = sample_inputs(g, nodes, [x.node for x in feeds], seed=3)
    want = evaluate(a, ra.fetches, fv, state).values
    got = evaluate(b, rb.fetches, fv, state).values
    for p, q in zip(want, got):
        np.testing.assert_array_equal(p, q)


def _unrolled_lstm_xw(steps=4, units=2, also_read=False):
    # as the LSTM layer unrolls: x @ W + b for all steps at once (time-major), a slice per step,
    # the zero initial state made like the first step's gates
    g = gc.Graph()
    with g.as_default():
        x, w, u = _lstm_inputs(steps, units)
        b = gc.Variable(np.linspace(-0.5, 0.5, 4 * units), name="b")
        xw = gc.matmul(gc.transpose(x, [1, 0, 2]), w) + b
        xs = gc.unstack(xw)                 # (a scan's steps: their gradient is one stack)
        h = gc.zeros_like(xs[0][:, :units])
        c = None
        for t in range(steps):
            hc = gc.nn.lstm_cell(xs[t] + gc.matmul(h, u), c)
            h, c = hc[:, :units], hc[:, units:]
        loss = gc.reduce_sum(h * h) + (gc.reduce_sum(xw) if also_read else 0.0)
        grads = gc.gradients(loss, [w, u, b])
    return g, [loss] + grads, [x]


def test_the_bias_of_x_w_moves_into_the_cells():
    g, fetches, feeds = _unrolled_lstm_xw()
    pipe = ["dce", "fold", "simplify", "cse", "merge_gemms"]     # (the slices' gradient: one stack)
    before, rb = optimize(g, [f.node for f in fetches], feeds=[x.node for x in feeds], pipeline=pipe)
    opt, rep = check_same(g, fetches, feeds, pipeline=pipe + ["split_lstm_grad_inputs", "save_lstm_gates"])
    cells = [n for n in opt.topo_order() if opt.op(n) == "lstm_cell"]
    assert len(cells) == 4 and all(opt.attrs(n).get("z_bias") for n in cells)
    assert count(before, "add") - count(opt, "add") >= 1 + 3       # x @ W + b, and each step's + h @ U
    assert not [n for n in opt.topo_order() if opt.op(n) == "add" and len(opt.spec(n).shape) == 3]
    assert "4 LSTM steps add their bias themselves" in rep.passes[-1].notes
    # the cells add (x @ W + b) + h @ U in the graph's order: no bit of any result changes
    fv, state = sample_inputs(g, [f.node for f in fetches], [x.node for x in feeds], seed=5)
    want = evaluate(before, rb.fetches, fv, state).values
    got = evaluate(opt, rep.fetches, fv, state).values
    for p, q in zip(want, got):
        np.testing.assert_array_equal(p, q)


def test_a_bias_add_read_elsewhere_stays():
    g, fetches, feeds = _unrolled_lstm_xw(also_read=True)
    opt, rep = check_same(g, fetches, feeds, pipeline=["dce", "merge_gemms", "split_lstm_grad_inputs",
                                                       "save_lstm_gates"])
    cells = [n for n in opt.topo_order() if opt.op(n) == "lstm_cell"]
    assert cells and not any(opt.attrs(n).get("z_bias") for n in cells)
    assert [n for n in opt.topo_order() if opt.op(n) == "add" and len(opt.spec(n).shape) == 3]
