"""graphc.onnx: exporting the seed models (checked in onnxruntime), importing them back, bad files, CLI."""
import os
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="graphc.onnx needs onnx: pip install graphc[onnx]")
ort = pytest.importorskip("onnxruntime", reason="the export tests run onnxruntime: pip install graphc[onnx]")

import graphc as gc  # noqa: E402
import graphc.onnx as gco  # noqa: E402
from graphc import cli  # noqa: E402
from graphc.tools import workloads  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
TOL = 1e-4


def _seq_model():
    sys.path.insert(0, EXAMPLES)
    try:
        from sequence_tagging import build_model
    finally:
        sys.path.remove(EXAMPLES)
    return build_model(units=16)


def _perturb(model, rng):
    """Non-zero biases and varied weights, so an exporter that drops or reorders one is caught."""
    model.set_weights([(w + 0.1 * rng.standard_normal(w.shape)).astype(w.dtype) for w in model.get_weights()])


SEEDS = {
    "mlp": (workloads._mlp, (5, 784)),
    "cnn": (lambda: workloads._cnn(True), (3, 28, 28, 1)),
    "lstm": (lambda: workloads._lstm(True), (4, 8, 16)),
    "transformer": (lambda: workloads._transformer(True), (3, 16, 32)),
    "sequence_tagging": (_seq_model, (3, 7, 100)),
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """{seed name: (model, path)}: each seed model with perturbed weights, exported once."""
    rng = np.random.default_rng(0)
    out = {}
    folder = tmp_path_factory.mktemp("onnx")
    for name, (make, _) in SEEDS.items():
        gc.reset_default_graph()
        m = make()
        _perturb(m, rng)
        path = str(folder / f"{name}.onnx")
        gco.export(m, path)
        out[name] = (m, path)
    return out


@pytest.mark.parametrize("name", list(SEEDS))
def test_export_runs_in_onnxruntime_like_predict(name, exported):
    m, path = exported[name]
    onnx.checker.check_model(onnx.load(path))
    rng = np.random.default_rng(1)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].shape[0] == "batch"
    shape = SEEDS[name][1]
    for batch in (shape[0], 1):   # the batch dimension is symbolic
        x = rng.standard_normal((batch,) + shape[1:]).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        want = m.predict(x)
        assert got.shape == want.shape
        assert np.max(np.abs(got - want)) <= TOL, (name, np.max(np.abs(got - want)))


def test_sequence_model_exports_with_a_symbolic_length(exported):
    m, path = exported["sequence_tagging"]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[1], str)
    rng = np.random.default_rng(2)
    for length in (1, 5, 25):
        x = rng.standard_normal((2, length, 100)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert np.max(np.abs(got - m.predict(x))) <= TOL, length


@pytest.mark.parametrize("name", list(SEEDS))
def test_round_trip_through_graphc_compiled(name, exported):
    m, path = exported[name]
    sess = gco.InferenceSession(path)   # passes.optimize + the compiled runtime
    x = np.random.default_rng(3).standard_normal(SEEDS[name][1]).astype(np.float32)
    inp = sess.get_inputs()[0]
    got = sess.run(None, {inp.name: x})
    assert [o.name for o in sess.get_outputs()] == ["output"]
    assert np.max(np.abs(got[0] - m.predict(x))) <= TOL, name
    ref = gco.InferenceSession(path, executor="reference").run(["output"], {inp.name: x})[0]
    assert np.max(np.abs(got[0] - ref)) <= TOL


def test_round_trip_sequence_model_at_new_lengths(exported):
    m, path = exported["sequence_tagging"]
    sess = gco.InferenceSession(path, executor="reference")
    for length in (3, 9):
        x = np.random.default_rng(length).standard_normal((2, length, 100)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert np.max(np.abs(got - m.predict(x))) <= TOL


def test_export_graph_tf1_style(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        w = gc.Variable(np.arange(12, dtype=np.float32).reshape(4, 3) / 10, name="w")
        y = gc.nn.softmax(gc.tanh(gc.matmul(x, w)) * 2.0 - gc.reduce_mean(x, axis=1, keepdims=True))
        z = gc.concat([y, gc.sqrt(gc.abs(x[:, 1:3]))], axis=1)
        sess = gc.Session()
        sess.run(gc.global_variables_initializer())
    path = str(tmp_path / "tf1.onnx")
    gco.export_graph([y, z], [x], path, session=sess, output_names=["y", "z"])
    xv = np.random.default_rng(4).standard_normal((6, 4)).astype(np.float32)
    want = sess.run([y, z], {x: xv})
    o = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": xv})
    back = gco.InferenceSession(path).run(None, {"x": xv})
    for a, b, c in zip(want, o, back):
        assert np.max(np.abs(a - b)) <= TOL and np.max(np.abs(a - c)) <= TOL


def test_export_graph_fused_lstm_cell_forms(tmp_path):
    # the forms the save_lstm_gates pass makes: the cell adds (z + b) + w and keeps its gates
    from graphc.ops.registry import apply
    g = gc.Graph()
    with g.as_default():
        z = gc.placeholder("float32", (None, 8), name="z")
        c = gc.placeholder("float32", (None, 2), name="c")
        w = gc.placeholder("float32", (None, 8), name="w")
        b = gc.constant(np.linspace(-1, 1, 8, dtype=np.float32))
        y = apply("lstm_cell", [z, c, w, b], {"z_sum": True, "z_bias": True, "gates": True})
        y1 = apply("lstm_cell", [z, b], {"z_bias": True})
        sess = gc.Session()
    path = str(tmp_path / "cell.onnx")
    gco.export_graph([y, y1], [z, c, w], path, session=sess, output_names=["y", "y1"])
    rng = np.random.default_rng(5)
    feeds = {k: rng.standard_normal((3, n)).astype(np.float32) for k, n in (("z", 8), ("c", 2), ("w", 8))}
    want = sess.run([y, y1], {z: feeds["z"], c: feeds["c"], w: feeds["w"]})
    got = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, feeds)
    for a, o in zip(want, got):
        assert a.shape == o.shape and np.max(np.abs(a - o)) <= TOL


@pytest.mark.parametrize("opset", [13, 18, 21])
def test_export_at_other_opsets(opset, tmp_path, exported):
    m = exported["transformer"][0]
    path = str(tmp_path / f"t{opset}.onnx")
    gco.export(m, path, opset=opset)
    assert onnx.load(path).opset_import[0].version == opset
    x = np.random.default_rng(5).standard_normal((2, 16, 32)).astype(np.float32)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - m.predict(x))) <= TOL
    with pytest.raises(gco.OnnxError, match="cannot export at opset 11"):
        gco.export(m, str(tmp_path / "old.onnx"), opset=11)


def _more_layers():
    from graphc.layers import (GRU, LSTM, Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense,
                               Dropout, Embedding, Flatten, GlobalAveragePooling2D, LayerNormalization,
                               Reshape, SimpleRNN)
    from graphc.models import Sequential
    r = np.random.default_rng(6)
    return {
        "embedding_gru": (lambda: Sequential([Embedding(50, 8, input_length=6), GRU(5), Dense(3)]),
                          r.integers(0, 50, (4, 6)).astype(np.float32)),
        "simple_rnn": (lambda: Sequential([SimpleRNN(5, input_shape=(6, 4)), Dense(3, activation="sigmoid")]),
                       r.standard_normal((4, 6, 4)).astype(np.float32)),
        "same_conv_batchnorm_pools": (
            lambda: Sequential([Conv2D(4, 3, padding="same", strides=2, input_shape=(9, 9, 3)),
                                BatchNormalization(), Activation("elu"), AveragePooling2D(2, padding="same"),
                                GlobalAveragePooling2D(), Dropout(0.5), Dense(2, activation="tanh")]),
            r.standard_normal((3, 9, 9, 3)).astype(np.float32)),
        "stacked_lstm_backwards": (
            lambda: Sequential([LSTM(4, return_sequences=True, input_shape=(5, 3)), LSTM(3, go_backwards=True),
                                Dense(2)]), r.standard_normal((2, 5, 3)).astype(np.float32)),
        "gelu_layernorm_reshape": (
            lambda: Sequential([Dense(6, activation="gelu", input_dim=4), LayerNormalization(), Reshape((2, 3)),
                                Flatten(), Dense(2, activation="softmax")]),
            r.standard_normal((3, 4)).astype(np.float32)),
    }


@pytest.mark.parametrize("name", list(_more_layers()))
def test_more_layers_export_and_import(name, tmp_path):
    make, x = _more_layers()[name]
    m = make()
    m.compile("sgd", "mse")
    _perturb(m, np.random.default_rng(7))
    path = str(tmp_path / f"{name}.onnx")
    gco.export(m, path)
    want = m.predict(x)
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    back = gco.InferenceSession(path, executor="reference").run(None, {sess.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - want)) <= TOL and np.max(np.abs(back - want)) <= TOL


def test_unrolled_variable_length_gru_is_refused_clearly(tmp_path):
    from graphc.layers import GRU, Dense, Input
    from graphc.models import Model
    x = Input(shape=(None, 4))
    m = Model(x, Dense(2)(GRU(3, unroll=True)(x)))
    with pytest.raises(gco.OnnxError, match="variable sequence length.*unroll=True"):
        gco.export(m, str(tmp_path / "g.onnx"))


def _variable_length_rnn():
    from graphc.layers import GRU, LSTM, Dense, Input, SimpleRNN
    from graphc.models import Model
    x = Input(shape=(None, 4))
    h = GRU(5, return_sequences=True)(x)
    h = LSTM(4, go_backwards=True, return_sequences=True, activation="relu")(h)
    h = SimpleRNN(3, go_backwards=True)(h)
    m = Model(x, Dense(2)(h))
    m.compile("sgd", "mse")
    _perturb(m, np.random.default_rng(8))
    return m


def test_variable_length_scan_layers_export_as_onnx_scan(tmp_path):
    """GRU, a backwards LSTM with other activations and a backwards SimpleRNN over a None time
    axis: one ONNX Scan each, run by onnxruntime at several lengths like predict."""
    m = _variable_length_rnn()
    path = str(tmp_path / "rnn.onnx")
    gco.export(m, path)
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    scans = [n for n in model.graph.node if n.op_type == "Scan"]
    assert len(scans) == 3
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert isinstance(sess.get_inputs()[0].shape[1], str)
    rng = np.random.default_rng(9)
    for length in (1, 5, 17):
        x = rng.standard_normal((3, length, 4)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert np.max(np.abs(got - m.predict(x))) <= TOL, length


@pytest.mark.parametrize("executor", ["compiled", "reference"])
def test_variable_length_scan_layers_round_trip(executor, tmp_path):
    """The exported Scans imported back as graphc scans: one graph for every length."""
    m = _variable_length_rnn()
    path = str(tmp_path / "rnn.onnx")
    gco.export(m, path)
    sess = gco.InferenceSession(path, executor=None if executor == "compiled" else executor)
    assert sum(sess.graph.op(n) == "scan" for n in sess.graph.nodes()) == 3
    rng = np.random.default_rng(10)
    for length in (1, 6, 17):
        x = rng.standard_normal((2, length, 4)).astype(np.float32)
        got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
        assert np.max(np.abs(got - m.predict(x))) <= TOL, length


def _while_cond_graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        n = gc.placeholder("int32", (), name="n")
        w = gc.Variable(np.linspace(-0.5, 0.5, 9, dtype=np.float32).reshape(3, 3), name="w")
        _, h = gc.while_loop(lambda i, h: i < n, lambda i, h: (i + 1, gc.tanh(gc.matmul(h, w) + x)),
                             (gc.constant(0), x))
        pred = gc.reduce_sum(h) > 0.0
        y = gc.cond(pred, lambda: h * 2.0, lambda: w[0] - h)
        _, h2 = gc.while_loop(lambda i, h: gc.reduce_sum(h) < 100.0, lambda i, h: (i + 1, h * 2.0 + 1.0),
                              (gc.constant(0), x), maximum_iterations=n + 2)
        sess = gc.Session()
        sess.run(gc.global_variables_initializer())
    return sess, x, n, y, h2, pred


def test_export_graph_while_loop_and_cond(tmp_path):
    """gc.while_loop (with a tensor maximum_iterations) and gc.cond as ONNX Loop and If, run by
    onnxruntime and imported back; both branches and loops of 0 and more iterations."""
    sess, x, n, y, h2, pred = _while_cond_graph()
    path = str(tmp_path / "loop.onnx")
    gco.export_graph([y, h2], [x, n], path, session=sess, output_names=["y", "h2"])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert sorted(nd.op_type for nd in model.graph.node if nd.op_type in ("Loop", "If")) == ["If", "Loop", "Loop"]
    o = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    back = gco.InferenceSession(path)
    ref = gco.InferenceSession(path, executor="reference")
    taken, counts = set(), set()
    for k, (steps, scale) in enumerate([(0, 1.0), (3, 1.0), (2, -1.0), (5, 40.0), (1, -3.0)]):
        xv = (scale * np.random.default_rng(k).standard_normal((2, 3)) + scale).astype(np.float32)
        feed = {"x": xv, "n": np.asarray(steps, np.int32)}
        want = sess.run([y, h2], {x: xv, n: feed["n"]})
        taken.add(bool(sess.run(pred, {x: xv, n: feed["n"]})))
        counts.add(int(np.round(np.log2((want[1][0, 0] + 1.0) / (xv[0, 0] + 1.0)))))  # h2's iterations
        for s in (o, back, ref):
            got = s.run(None, feed)
            assert all(np.max(np.abs(a - b)) <= TOL for a, b in zip(want, got)), (k, s)
    assert taken == {True, False}
    assert len(counts) > 1      # loops stopped by cond and by maximum_iterations


def test_export_graph_names_an_op_without_emitter(tmp_path):
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (3,), name="x")
        y = gc.random_uniform((3,), seed=1) + x
    with pytest.raises(gco.OnnxError, match="random_uniform.*no ONNX emitter"):
        gco.export_graph(y, x, str(tmp_path / "r.onnx"))
    assert not os.path.exists(tmp_path / "r.onnx")


# -- bad input ------------------------------------------------------------------------------------------
def _tiny(path, op="Relu", opset=17, **attrs):
    from onnx import TensorProto, helper
    n = helper.make_node(op, ["x"], ["y"], name="the_node", **attrs)
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


def test_truncated_and_malformed_files(tmp_path, exported):
    data = open(exported["mlp"][1], "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(gco.OnnxError, match=r"cut\.onnx.*(truncated or malformed|no graph)"):
        gco.InferenceSession(str(cut))
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\xffnot a protobuf" * 10)
    with pytest.raises(gco.OnnxError, match=r"junk\.onnx"):
        gco.InferenceSession(str(junk))
    with pytest.raises(gco.OnnxError, match="file not found"):
        gco.InferenceSession(str(tmp_path / "none.onnx"))


def _external(tmp_path, location):
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.ones((2, 2), np.float32), "w")
    w.data_location = TensorProto.EXTERNAL
    del w.external_data[:]
    w.ClearField("raw_data")
    e = w.external_data.add()
    e.key, e.value = "location", location
    n = helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=[w])
    path = str(tmp_path / "ext.onnx")
    with open(path, "wb") as f:
        f.write(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return path


def test_external_data_missing_and_outside_the_folder(tmp_path):
    with pytest.raises(gco.OnnxError, match=r"ext\.onnx.*'w'.*external data file 'w\.bin' not found"):
        gco.InferenceSession(_external(tmp_path, "w.bin"))
    (tmp_path.parent / "secret.bin").write_bytes(np.ones(4, np.float32).tobytes())
    with pytest.raises(gco.OnnxError, match="leaves the model's folder"):
        gco.InferenceSession(_external(tmp_path, "../secret.bin"))
    with pytest.raises(gco.OnnxError, match="leaves the model's folder"):
        gco.InferenceSession(_external(tmp_path, str(tmp_path.parent / "secret.bin")))
    (tmp_path / "w.bin").write_bytes(np.full(4, 2, np.float32).tobytes())
    s = gco.InferenceSession(_external(tmp_path, "w.bin"))
    assert s.run(None, {"x": np.ones((1, 2), np.float32)})[0].tolist() == [[4.0, 4.0]]


def test_unsupported_op_and_opset_name_file_node_op_and_what_is_supported(tmp_path):
    p = _tiny(str(tmp_path / "u.onnx"), op="Det")
    with pytest.raises(gco.UnsupportedError, match=r"u\.onnx: node 'the_node' \(Det\): op Det is not "
                                                   r"supported; supported ops: Abs, .*Relu"):
        gco.InferenceSession(p)
    p = _tiny(str(tmp_path / "o.onnx"), opset=3)
    with pytest.raises(gco.UnsupportedError, match=r"o\.onnx: opset 3 is not supported \(graphc reads opsets 7"):
        gco.InferenceSession(p)
    p = _tiny(str(tmp_path / "a.onnx"), op="Gelu", opset=20, approximate="tanh")
    y = gco.InferenceSession(p).run(None, {"x": np.array([1.0, -1.0], np.float32)})[0]
    assert np.allclose(y, [0.8411920, -0.1588080], atol=1e-6)


def test_unsupported_dtype_is_reported(tmp_path):
    from onnx import TensorProto, helper
    n = helper.make_node("Relu", ["x"], ["y"], name="r")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT16, [2])])
    p = str(tmp_path / "h.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    with pytest.raises(gco.UnsupportedError, match="dtype FLOAT16 is not supported") as e:
        gco.InferenceSession(p)
    assert e.value.kind == "dtype"


def test_run_checks_feeds(exported):
    s = gco.InferenceSession(exported["mlp"][1], executor="reference")
    name = s.get_inputs()[0].name
    with pytest.raises(gco.OnnxError, match="missing"):
        s.run(None, {})
    with pytest.raises(gco.OnnxError, match="dtype float64"):
        s.run(None, {name: np.zeros((2, 784))})
    with pytest.raises(gco.OnnxError, match=r"shape \(2, 5\)"):
        s.run(None, {name: np.zeros((2, 5), np.float32)})


# -- CLI ------------------------------------------------------------------------------------------------
def test_cli_dump_and_bench_load_onnx(exported, capsys, monkeypatch):
    path = exported["cnn"][1]
    assert cli.main(["dump", path]) == 0
    out = capsys.readouterr().out
    assert "cnn.onnx [optimized]" in out and "conv2d" in out
    prog = workloads.load_target(path)
    assert prog.feeds and set(prog.feed_values) == set(prog.feeds)
    from graphc.tools import bench
    monkeypatch.setattr(bench, "measure", lambda n, q, p: {"workload": n, "error": "stubbed"})
    recs = bench.run([path], quick=True)
    assert recs[0]["workload"] == path
    rec = bench.worker(path, "cold", True)
    assert rec["compile_s"] > 0


def test_cli_onnx_errors_are_one_line(tmp_path, capsys):
    assert cli.main(["dump", str(tmp_path / "missing.onnx")]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    assert cli.main(["dump", str(bad)]) == 2
    assert "bad.onnx" in capsys.readouterr().err


def test_graph_is_built_per_value_of_inputs_a_converter_needs(tmp_path):
    """Reshape's shape fed as a graph input: the graph is built for each value it gets."""
    from onnx import TensorProto, helper
    n = helper.make_node("Reshape", ["x", "shape"], ["y"], name="rs")
    g = helper.make_graph([n], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6]),
                                     helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    p = str(tmp_path / "rs.onnx")
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), p)
    s = gco.InferenceSession(p, executor="reference")
    x = np.arange(12, dtype=np.float32).reshape(2, 6)
    for shape in ([3, 4], [4, -1], [3, 4]):
        y, = s.run(None, {"x": x, "shape": np.array(shape, np.int64)})
        assert np.array_equal(y, x.reshape(shape))
    assert s._value_inputs == ["shape"] and len(s._sessions) == 2


# -- control flow: hand-built ONNX Scan / Loop / If ----------------------------------------------------
def _control_flow_model(path):
    """x (B, T, 3) float, n int64 scalar -> a Scan over axis 1 (a running sum, outputs reversed and
    moved to axis 1, reading the outer initializer ``w``), a Loop (M = n, stops early when the
    carried sum exceeds 50, with a scan output) and an If (branches read x from the outer scope)."""
    from onnx import TensorProto as TP
    from onnx import helper as h
    f = TP.FLOAT
    w = onnx.numpy_helper.from_array(np.asarray([0.5, -1.0, 2.0], np.float32), "w")
    scan_body = h.make_graph(
        [h.make_node("Mul", ["x_t", "w"], ["xw"]), h.make_node("Add", ["s_in", "xw"], ["s_out"]),
         h.make_node("Identity", ["s_out"], ["y_t"])], "scan_body",
        [h.make_tensor_value_info("s_in", f, [None, 3]), h.make_tensor_value_info("x_t", f, [None, 3])],
        [h.make_tensor_value_info("s_out", f, [None, 3]), h.make_tensor_value_info("y_t", f, [None, 3])])
    one = h.make_tensor("one", f, [], [1.0])
    fifty = h.make_tensor("fifty", f, [], [50.0])
    loop_body = h.make_graph(
        [h.make_node("Constant", [], ["one_c"], value=one), h.make_node("Constant", [], ["fifty_c"], value=fifty),
         h.make_node("Cast", ["i"], ["i_f"], to=f), h.make_node("Add", ["acc", "i_f"], ["acc_1"]),
         h.make_node("ReduceSum", ["x"], ["xs"], keepdims=0), h.make_node("Add", ["acc_1", "xs"], ["acc_2"]),
         h.make_node("Add", ["acc_2", "one_c"], ["acc_out"]), h.make_node("Less", ["acc_out", "fifty_c"], ["c_out"]),
         h.make_node("Mul", ["acc_out", "i_f"], ["per_iter"])], "loop_body",
        [h.make_tensor_value_info("i", TP.INT64, []), h.make_tensor_value_info("c_in", TP.BOOL, []),
         h.make_tensor_value_info("acc", f, [])],
        [h.make_tensor_value_info("c_out", TP.BOOL, []), h.make_tensor_value_info("acc_out", f, []),
         h.make_tensor_value_info("per_iter", f, [])])
    then_g = h.make_graph([h.make_node("Mul", ["x", "x"], ["sq"])], "then",
                          [], [h.make_tensor_value_info("sq", f, [None, None, 3])])
    else_g = h.make_graph([h.make_node("Neg", ["x"], ["ng"])], "else",
                          [], [h.make_tensor_value_info("ng", f, [None, None, 3])])
    nodes = [
        h.make_node("ReduceSum", ["x", "ax1"], ["s0"], keepdims=0),
        h.make_node("Scan", ["s0", "x"], ["s_final", "ys"], body=scan_body, num_scan_inputs=1,
                    scan_input_axes=[1], scan_output_axes=[1], scan_output_directions=[1]),
        h.make_node("Constant", [], ["acc0"], value=h.make_tensor("z", f, [], [0.0])),
        h.make_node("Constant", [], ["true"], value=h.make_tensor("t", TP.BOOL, [], [True])),
        h.make_node("Loop", ["n", "true", "acc0"], ["acc_final", "per_iters"], body=loop_body),
        h.make_node("Greater", ["acc_final", "acc0"], ["pos"]),
        h.make_node("If", ["pos"], ["z"], then_branch=then_g, else_branch=else_g),
    ]
    g = h.make_graph(nodes, "cf", [h.make_tensor_value_info("x", f, ["B", "T", 3]),
                                   h.make_tensor_value_info("n", TP.INT64, [])],
                     [h.make_tensor_value_info(nm, f, shape) for nm, shape in (
                         ("s_final", ["B", 3]), ("ys", ["B", "T", 3]), ("acc_final", []), ("per_iters", ["I"]),
                         ("z", ["B", "T", 3]))],
                     initializer=[w, onnx.numpy_helper.from_array(np.asarray([1], np.int64), "ax1")])
    model = h.make_model(g, opset_imports=[h.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("executor", ["compiled", "reference"])
def test_import_hand_built_scan_loop_if(executor, tmp_path):
    path = _control_flow_model(str(tmp_path / "cf.onnx"))
    o = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    sess = gco.InferenceSession(path, executor=None if executor == "compiled" else executor)
    assert {"scan", "while_loop", "cond"} <= {sess.graph.op(nd) for nd in sess.graph.nodes()}
    rng = np.random.default_rng(11)
    iters = set()
    for t_len, n, scale in ((4, 3, 1.0), (1, 0, 1.0), (7, 6, -1.0), (5, 40, 1.0)):
        x = (scale * np.abs(rng.standard_normal((2, t_len, 3)))).astype(np.float32)
        feed = {"x": x, "n": np.asarray(n, np.int64)}
        want, got = o.run(None, feed), sess.run(None, feed)
        iters.add(len(want[3]))
        for k, (a, b) in enumerate(zip(want, got)):
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-5, atol=TOL), (t_len, n, k)
    assert 0 in iters and len(iters) > 2      # no iteration, M iterations, stopped by cond_out


def test_export_reverse_scan_and_map_fn(tmp_path):
    """gc.scan(reverse=True) (scan_input/output_directions) and gc.map_fn over a None axis."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        c = gc.scan(lambda a, r: a * 0.5 + r, x, reverse=True)
        m = gc.map_fn(lambda r: gc.reduce_sum(r * r), c)
        sess = gc.Session()
    path = str(tmp_path / "scan.onnx")
    gco.export_graph([c, m], [x], path, output_names=["c", "m"])
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    o = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    back = gco.InferenceSession(path)
    for t in (2, 3, 9):     # (onnxruntime's Scan fails on 0 steps, which length 1 would give here)
        xv = np.random.default_rng(t).standard_normal((t, 3)).astype(np.float32)
        want = sess.run([c, m], {x: xv})
        for s in (o, back):
            got = s.run(None, {"x": xv})
            assert all(np.max(np.abs(a - b)) <= TOL for a, b in zip(want, got)), t


def test_export_nested_control_flow(tmp_path):
    """A cond whose false branch maps over rows, inside a while_loop: sub-graphs in sub-graphs,
    the inner ones reading values two scopes out (x)."""
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")

        def body(i, h):
            return i + 1, gc.cond(gc.reduce_sum(h) > 0.0, lambda: h - 1.0,
                                  lambda: gc.map_fn(lambda r: r * 2.0 + x[0], h))
        _, y = gc.while_loop(lambda i, h: i < 4, body, (gc.constant(0), x))
        sess = gc.Session(executor="reference")
    path = str(tmp_path / "nested.onnx")
    gco.export_graph([y], [x], path, output_names=["y"])
    onnx.checker.check_model(onnx.load(path), full_check=True)
    runs = [ort.InferenceSession(path, providers=["CPUExecutionProvider"]), gco.InferenceSession(path),
            gco.InferenceSession(path, executor="reference")]
    for k in range(3):
        xv = np.random.default_rng(k).standard_normal((4, 3)).astype(np.float32)
        want = sess.run(y, {x: xv})
        for s in runs:
            assert np.max(np.abs(s.run(None, {"x": xv})[0] - want)) <= TOL, (k, s)
