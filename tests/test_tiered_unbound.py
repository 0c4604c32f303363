"""Tiered execution in a process that has not imported numba: a cold plan runs its numpy
references while its compile child binds the plan as well as compiling it; this process binds it
only once kernels land. A marker per plan tells a later process that the plan is compiled."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from test_tiered import _training_graph

import graphc as gc
from graphc.runtime import cache, executor


def _feeds(x, lab, n, seed=0):
    rng = np.random.default_rng(seed)
    return {x: rng.standard_normal((n, 12)).astype(np.float32), lab: rng.integers(0, 3, n).astype(np.int32)}


def _exe(sess, n_feeds=2):
    return next(p.__self__ for k, p in sess._programs.items() if len(k[1]) == n_feeds)


def _kinds(exe):
    return {"reference" if s.call.name.startswith("ref:") else "kernel"
            for s in exe.bound.plan.steps if s.kind == "call"}


def _calls(exe):
    return [s.call.name for s in exe.bound.plan.steps if s.kind == "call"]


@pytest.fixture
def unbound(monkeypatch, tmp_path, configure):
    """Tiered execution as in a process without numba (this one has it: the tests look at kernels)."""
    monkeypatch.setattr(executor, "numba_imported", lambda: False)
    configure(tiered=True, cache_dir=str(tmp_path), compile_jobs=2)
    return tmp_path


def _timed(fn) -> bool:          # FirstRunTimes's wrapper (functools.wraps: __wrapped__ is its call)
    return callable(getattr(fn, "__wrapped__", None))


def test_the_first_run_is_timed_and_later_runs_call_the_references_directly(unbound):
    g, x, lab, loss, train, init = _training_graph()
    sess, ref = gc.Session(graph=g), gc.Session(graph=g, executor="reference")
    for s in (sess, ref):
        s.run(init)
    f = _feeds(x, lab, 16)
    got = sess.run([loss, train], f)[0]
    exe = _exe(sess)
    calls = [fn for s in exe.bound.plan.steps if s.kind == "call" for fn, _ in s.call.steps]
    assert calls and all(_timed(fn) for fn in calls)        # the plan's calls, timed in run 1
    assert not any(_timed(v) for v in exe.bound.globals.values())   # the driver's: unwrapped
    np.testing.assert_allclose(got, ref.run([loss, train], f)[0], rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(sess.run([loss, train], f)[0], ref.run([loss, train], f)[0],
                               rtol=2e-5, atol=1e-6)
    assert exe.wait_compiled(240)


def test_the_child_binds_and_compiles_and_every_step_agrees(unbound):
    g, x, lab, loss, train, init = _training_graph()
    tiered, ref = gc.Session(graph=g), gc.Session(graph=g, executor="reference")
    for s in (tiered, ref):
        s.run(init)
    step = tiered.make_callable([loss, train], [x, lab])
    shapes = [24, 24, 7, 7]                 # a second shape set waits for the first one's child
    feeds = [_feeds(x, lab, n, seed=i) for i, n in enumerate(shapes)]
    losses, want = [], []
    for f in feeds[:1]:
        losses.append(step(f[x], f[lab])[0])
        want.append(ref.run([loss, train], f)[0])
    exe = _exe(tiered)
    assert _kinds(exe) == {"reference"} and not exe._compiling      # no child before a second run
    deadline = time.monotonic() + 240
    i = 1
    while (exe.tier_swaps < 2 or i < len(feeds)) and time.monotonic() < deadline:
        f = feeds[i % len(feeds)]
        losses.append(step(f[x], f[lab])[0])
        want.append(ref.run([loss, train], f)[0])
        i += 1
    assert exe.wait_compiled(240) and exe.tier_swaps == 2 and len(exe._compiling) == 2
    untiered = gc.Session(graph=g, config={"tiered": False})
    untiered.run(init)
    for f in feeds:                         # both shape sets on the compiled tier now
        losses.append(step(f[x], f[lab])[0])
        want.append(ref.run([loss, train], f)[0])
        untiered.run([loss, train], f)
        assert _calls(exe) == _calls(_exe(untiered)) and "kernel" in _kinds(exe)
    np.testing.assert_allclose(losses, want, rtol=2e-5, atol=1e-6)
    for name in ("w1", "w2"):
        np.testing.assert_allclose(tiered.state[name], ref.state[name], rtol=2e-5, atol=1e-6)
    # the plan is marked compiled: a new executable of it binds its kernels at once
    assert cache.plan_compiled(exe._plan_key())
    again = gc.Session(graph=g)
    again.run(init)
    again.run([loss, train], feeds[0])
    exe2 = _exe(again)
    assert _calls(exe2) == _calls(_exe(untiered)) and exe2.tier_swaps == 0 and not exe2._compiling


def test_the_child_reports_its_kernels_then_each_as_it_lands(unbound):
    # cache.bind_in_background: the child's "todo" list, then every one of them, and the marker
    from graphc.runtime.lower import bind_schedule
    g, x, lab, loss, train, init = _training_graph()
    exe = gc.runtime.compile(g, [loss.node], [x.node, lab.node])
    shapes = {x.node: (5, 12), lab.node: (5,)}
    key = exe._plan_key()
    job = {"plan": {"graph": g, "fetches": exe.fetches, "feeds": exe.feeds, "shapes": shapes,
                    "order": None, "config": gc.config.get(), "marker": key}}
    todo, landed = [], []
    assert not cache.plan_compiled(key)
    assert cache.bind_in_background(job, lambda: {}, todo.extend, landed.append, timeout=240)
    pairs = bind_schedule(g, exe.fetches, exe.feeds, shapes).kernels()
    assert todo and sorted(todo) == sorted(landed) == sorted(cache.entry_key(d, s) for d, s in pairs)
    assert not cache.cold(pairs) and cache.plan_compiled(key)
    todo.clear()
    landed.clear()
    assert cache.bind_in_background(job, lambda: {}, todo.extend, landed.append, timeout=240)
    assert todo == [] and landed == []      # nothing left to compile: an empty list, no kernel


def test_a_failed_child_keeps_the_reference_tier_with_one_warning(unbound, monkeypatch):
    monkeypatch.setattr(cache, "CHILD_COMMAND",
                        [sys.executable, "-c", "import sys; sys.stdin.buffer.read(); sys.exit(1)"])
    g, x, lab, loss, train, init = _training_graph()
    tiered, ref = gc.Session(graph=g), gc.Session(graph=g, executor="reference")
    for s in (tiered, ref):
        s.run(init)
    f = _feeds(x, lab, 8)
    with pytest.warns(gc.errors.KernelFallbackWarning, match="failed or hung on .*kernel") as w:
        got = [tiered.run([loss, train], f)[0]]
        exe = _exe(tiered)
        assert exe.wait_compiled(240)
        got.append(tiered.run([loss, train], f)[0])
    assert sum("background compile" in str(m.message) for m in w) == 1
    assert exe.tier_swaps == 0 and _kinds(exe) == {"reference"}
    want = [ref.run([loss, train], f)[0] for _ in range(2)]
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-6)
    assert not cache.plan_compiled(exe._plan_key())


def test_a_plan_run_once_starts_no_child(unbound, monkeypatch):
    # a variable initializer runs once: no compile child for it (unless wait_compiled asks)
    started = []
    real = cache._spawn_child
    monkeypatch.setattr(cache, "_spawn_child", lambda *a, **k: started.append(1) or real(*a, **k))
    g, x, lab, loss, train, init = _training_graph()
    sess = gc.Session(graph=g)
    sess.run(init)
    sess.run(loss, _feeds(x, lab, 4))
    time.sleep(0.2)
    assert started == []
    sess.run(loss, _feeds(x, lab, 4))
    exe = _exe(sess)
    assert exe.wait_compiled(240) and started == [1] and exe.tier_swaps == 1


def test_a_fresh_process_runs_its_first_steps_without_numba(tmp_path):
    # the real case: a new process with an empty cache trains a model; its first steps import no
    # numba, the kernels swap in later, and a second process starts on the compiled tier
    script = textwrap.dedent("""
        import sys, numpy as np, graphc as gc
        from graphc.layers import Dense
        from graphc.models import Sequential
        rng = np.random.default_rng(0)
        x = rng.standard_normal((64, 20)).astype(np.float32); y = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 64)]
        gc.utils.set_random_seed(0)
        m = Sequential([Dense(16, activation="relu", input_dim=20), Dense(4, activation="softmax")])
        m.compile(optimizer="adam", loss="categorical_crossentropy")
        hist = m.fit(x, y, epochs=2, batch_size=16, verbose=0)
        before = "numba" in sys.modules
        exes = [p.__self__ for p in m.session._programs.values() if hasattr(p, "__self__")]
        assert all(e.wait_compiled(240) for e in exes)
        swaps = sum(e.tier_swaps for e in exes)
        print(before, swaps, "numba" in sys.modules, hist.history["loss"][-1])
    """)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path), GRAPHC_TIERED="1", GRAPHC_COMPILE_JOBS="2")
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-3000:]
    first, second = (r.stdout.split() for r in runs)
    assert first[:3] == ["False", first[1], "True"] and int(first[1]) >= 1, runs[0].stdout
    assert second[:2] == ["True", "0"], runs[1].stdout      # bound at once (so numba imported first)
    assert float(first[3]) == pytest.approx(float(second[3]), rel=1e-5)
