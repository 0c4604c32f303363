"""Threads sharing one Session, callable or model: results equal to one thread's, no deadlock."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np

import graphc as gc

THREADS = 8


def _in_threads(work, n=THREADS):
    """Run ``work(k)`` on ``n`` threads started together; re-raise the first error."""
    errors, gate = [], threading.Barrier(n)

    def run(k):
        try:
            gate.wait()
            work(k)
        except BaseException as e:      # noqa: BLE001 - reported below
            errors.append(e)
    ts = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    assert not any(t.is_alive() for t in ts), "a thread did not finish"
    if errors:
        raise errors[0]


def test_one_session_and_callable_from_threads_give_one_threads_results():
    # the kernels release the GIL: runs in one set of buffers mixed their intermediates
    rng = np.random.default_rng(0)
    x = gc.placeholder("float32", (None, 64), name="x")
    w = gc.constant(rng.standard_normal((64, 64)).astype(np.float32) / 8)
    y = gc.nn.softmax(gc.tanh(gc.matmul(x, w)) * 3.0)
    sess = gc.Session()
    xs = [rng.standard_normal((32, 64)).astype(np.float32) for _ in range(THREADS)]
    want = [sess.run(y, {x: v}) for v in xs]
    call = sess.make_callable(y, [x])
    wrong = []

    def work(k):
        for _ in range(150):
            wrong.append(not np.array_equal(sess.run(y, {x: xs[k]}), want[k]))
            wrong.append(not np.array_equal(call(xs[k]), want[k]))
    _in_threads(work)
    assert sum(wrong) == 0 and len(wrong) == THREADS * 300
    exe = next(iter(sess._programs.values())).__self__
    assert exe.extra_bindings >= 1          # concurrent runs got buffer sets of their own


def test_concurrent_training_steps_apply_one_after_another():
    # every thread takes SGD steps on the same batch: in any order, the steps compose to the
    # same weights as THREADS * 20 steps on one thread (a lost or torn update would differ)
    def build():
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder("float32", (None, 5), name="x")
            t = gc.placeholder("float32", (None, 1), name="t")
            w = gc.Variable(np.linspace(-1, 1, 5, dtype=np.float32).reshape(5, 1), name="w")
            loss = gc.reduce_mean(gc.square(gc.matmul(x, w) - t))
            gw, = gc.gradients(loss, [w])
            step = gc.assign_sub(w, 0.01 * gw)
            sess = gc.Session(graph=g)
            sess.run(gc.global_variables_initializer())
        return sess, x, t, w, step, loss
    rng = np.random.default_rng(1)
    xv = rng.standard_normal((16, 5)).astype(np.float32)
    tv = rng.standard_normal((16, 1)).astype(np.float32)
    serial, x, t, w, step, loss = build()
    for _ in range(THREADS * 20):
        serial.run(step, {x: xv, t: tv})
    want = serial.run(w)

    shared, x, t, w, step, loss = build()
    call = shared.make_callable([step, loss], [x, t])

    def work(k):
        for i in range(10):
            shared.run(step, {x: xv, t: tv})
            call(xv, tv)
            shared.run(loss, {x: xv, t: tv})        # a read-only run between them
    _in_threads(work)
    np.testing.assert_allclose(shared.run(w), want, rtol=1e-5, atol=1e-6)
    assert shared._runs == serial._runs + THREADS * 10     # every run counted once


def test_model_predict_and_train_on_batch_from_threads():
    from graphc.layers import Dense
    from graphc.models import Sequential
    rng = np.random.default_rng(2)
    xv = rng.standard_normal((32, 20)).astype(np.float32)
    yv = rng.integers(0, 4, 32)

    def model():
        gc.reset_default_graph()
        m = Sequential([Dense(16, activation="relu", input_dim=20, kernel_initializer="glorot_uniform"),
                        Dense(4, activation="softmax")])
        m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        return m
    serial = model()
    weights = serial.get_weights()
    want_pred = serial.predict(xv, verbose=0)
    for _ in range(THREADS * 5):
        serial.train_on_batch(xv, yv)

    shared = model()
    shared.set_weights(weights)
    preds = []
    _in_threads(lambda k: preds.extend(shared.predict(xv, verbose=0) for _ in range(5)))
    assert all(np.array_equal(p, want_pred) for p in preds) and len(preds) == THREADS * 5
    _in_threads(lambda k: [shared.train_on_batch(xv, yv) for _ in range(5)])
    for a, b in zip(shared.get_weights(), serial.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_cold_compiles_from_threads_do_not_deadlock(tmp_path):
    # numba's compiler lock and the kernel cache's lock were taken in both orders: two threads
    # compiling new graphs on an empty cache hung in 6 of 9 runs (the reproduction)
    script = textwrap.dedent("""
        import threading, numpy as np, graphc as gc
        FNS = [gc.exp, gc.sin, gc.tanh, gc.cos, gc.sigmoid, gc.abs, gc.square, gc.negative]
        out = {}
        def work(k, f):
            g = gc.Graph()
            with g.as_default():
                x = gc.placeholder("float32", (None, 16)); y = gc.nn.softmax(f(x) * (2.0 + k))
                gx, = gc.gradients(gc.reduce_sum(y * y), [x])
            out[k] = gc.Session(graph=g).run([y, gx], {x: np.ones((8, 16), np.float32)})
        ts = [threading.Thread(target=work, args=(k, f)) for k, f in enumerate(FNS)]
        [t.start() for t in ts]; [t.join() for t in ts]
        print(len(out), all(np.allclose(v[0].sum(1), 1.0) for v in out.values()))
    """)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["8", "True"]
