"""Tiered execution: a cold plan runs its numpy references while its kernels compile in a child
process, then swaps to the compiled kernels between two runs; every step agrees with the reference."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
from kernel_checks import FAILING_COMPILE_CHILD

import graphc as gc


def _training_graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 12), name="x")
        lab = gc.placeholder("int32", (None,), name="lab")
        w1 = gc.Variable(np.linspace(-0.5, 0.5, 12 * 16, dtype=np.float32).reshape(12, 16), name="w1")
        w2 = gc.Variable(np.linspace(0.5, -0.5, 16 * 3, dtype=np.float32).reshape(16, 3), name="w2")
        h = gc.tanh(gc.matmul(x, w1)) * 1.5 + gc.sigmoid(gc.matmul(x, w1))
        logits = gc.matmul(h, w2)
        loss = gc.reduce_mean(gc.nn.sparse_softmax_cross_entropy_with_logits(labels=lab, logits=logits))
        gw1, gw2 = gc.gradients(loss, [w1, w2])
        train = gc.group(gc.assign_sub(w1, 0.1 * gw1), gc.assign_sub(w2, 0.1 * gw2))
        init = gc.global_variables_initializer()
    return g, x, lab, loss, train, init


def _kinds(exe):
    return {"reference" if s.call.name.startswith("ref:") else "kernel"
            for s in exe.bound.plan.steps if s.kind == "call"}


def _calls(exe):
    return [s.call.name for s in exe.bound.plan.steps if s.kind == "call"]


def test_a_cold_plan_runs_on_references_then_swaps_to_kernels(tmp_path, configure):
    configure(tiered=True, cache_dir=str(tmp_path))
    g, x, lab, loss, train, init = _training_graph()
    rng = np.random.default_rng(0)
    feeds = {x: rng.standard_normal((24, 12)).astype(np.float32), lab: rng.integers(0, 3, 24).astype(np.int32)}
    tiered, ref = gc.Session(graph=g), gc.Session(graph=g, executor="reference")
    for s in (tiered, ref):
        s.run(init)
    step = tiered.make_callable([loss, train], [x, lab])
    t0 = time.perf_counter()
    first = step(feeds[x], feeds[lab])[0]
    first_s = time.perf_counter() - t0
    exe = next(p.__self__ for k, p in tiered._programs.items() if len(k[1]) == 2)
    assert _kinds(exe) == {"reference"} and exe.tier_swaps == 0      # ran at once, nothing compiled
    losses, want = [first], [ref.run([loss, train], feeds)[0]]
    deadline = time.monotonic() + 240
    while exe.tier_swaps == 0 and time.monotonic() < deadline:       # steps keep running meanwhile
        losses.append(step(feeds[x], feeds[lab])[0])
        want.append(ref.run([loss, train], feeds)[0])
    assert exe.wait_compiled(240) and exe.tier_swaps == 1
    for _ in range(3):                                               # and on the compiled tier
        losses.append(step(feeds[x], feeds[lab])[0])
        want.append(ref.run([loss, train], feeds)[0])
    untiered = gc.Session(graph=g, config={"tiered": False})
    untiered.run(init)
    untiered.run([loss, train], feeds)
    exe_u = next(p.__self__ for k, p in untiered._programs.items() if len(k[1]) == 2)
    assert _calls(exe) == _calls(exe_u) and "kernel" in _kinds(exe)    # the plan it would have bound
    np.testing.assert_allclose(losses, want, rtol=2e-5, atol=1e-6)
    for name in ("w1", "w2"):
        np.testing.assert_allclose(tiered.state[name], ref.state[name], rtol=2e-5, atol=1e-6)
    assert len(losses) >= 4 and first_s < 5.0
    # the kernels are compiled now: a new plan of the same graph binds them at once
    again = gc.Session(graph=g)
    again.run(init)
    again.run([loss, train], feeds)
    exe2 = next(p.__self__ for k, p in again._programs.items() if len(k[1]) == 2)
    assert _calls(exe2) == _calls(exe_u) and exe2.tier_swaps == 0


def test_tiered_off_waits_for_the_kernels(tmp_path, configure):
    configure(tiered=False, cache_dir=str(tmp_path))
    g, x, lab, loss, train, init = _training_graph()
    sess = gc.Session(graph=g)
    sess.run(init)
    sess.run([loss, train], {x: np.ones((4, 12), np.float32), lab: np.zeros(4, np.int32)})
    exe = next(p.__self__ for k, p in sess._programs.items() if len(k[1]) == 2)
    assert "kernel" in _kinds(exe) and not exe._compiling


def test_a_failed_background_compile_keeps_the_reference_tier_with_one_warning(tmp_path):
    # the compile child fails: the plan stays on its references, correct, with one warning
    script = FAILING_COMPILE_CHILD + textwrap.dedent("""
        import warnings, numpy as np, graphc as gc
        x = gc.placeholder("float32", (None, 8), name="x")
        y = gc.nn.softmax(gc.tanh(x) * 3.0)
        sess = gc.Session()
        v = np.linspace(-2, 2, 32, dtype=np.float32).reshape(4, 8)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            out = sess.run(y, {x: v})
            exe = next(iter(sess._programs.values())).__self__
            exe.wait_compiled(240)
            out2 = sess.run(y, {x: v})
        z = np.tanh(v) * 3.0
        e = np.exp(z - z.max(1, keepdims=True)); want = e / e.sum(1, keepdims=True)
        np.testing.assert_allclose(out, want, rtol=1e-6); np.testing.assert_allclose(out2, want, rtol=1e-6)
        msgs = [str(m.message) for m in w if "background compile" in str(m.message)]
        kinds = {s.call.name.startswith("ref:") for s in exe.bound.plan.steps if s.kind == "call"}
        print(len(msgs), exe.tier_swaps, kinds, msgs[0][:200] if msgs else "")
    """)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path), GRAPHC_TIERED="1", GRAPHC_STRICT_KERNELS="0")
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    n, swaps, kinds, msg = r.stdout.split(" ", 3)
    assert (n, swaps, kinds) == ("1", "0", "{True}"), r.stdout
    assert "the compile process failed or hung on" in msg and "kernel" in msg
