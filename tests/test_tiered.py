"""Tiered execution: a cold plan runs its numpy references while its kernels compile in a child
process, then swaps to the compiled kernels between two runs; every step agrees with the reference."""
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
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


# -- kernels swap in as they land ----------------------------------------------------------------------
def _three_kernel_graph():
    # three kernels in three modules: two elementwise chains split by a GEMM, and a row softmax
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 16), name="x")
        w = gc.Variable(np.linspace(-1.0, 1.0, 16 * 8, dtype=np.float32).reshape(16, 8), name="w")
        h = gc.matmul(gc.tanh(x) * 2.0 + 1.0, w)
        y = gc.nn.softmax(gc.sigmoid(h * 3.0) - h)
        init = gc.global_variables_initializer()
    return g, x, y, init


def test_a_plan_between_the_tiers_runs_the_landed_kernels_and_the_baseline_for_the_rest(tmp_path, configure):
    # lower.mixed: the calls whose kernels are compiled run them, the others the baseline tier's
    # calls; the plan's results are the reference's, and the binding it came from is unchanged
    from graphc.runtime import cache
    from graphc.runtime.bound import Bound
    from graphc.runtime.lower import bind_schedule, complete, lower, mixed
    configure(tiered=False, cache_dir=str(tmp_path), compile_jobs=1)
    g, x, y, init = _three_kernel_graph()
    sess = gc.Session(graph=g)
    sess.run(init)
    exe = gc.runtime.compile(g, [y.node], [x.node])
    shapes = {x.node: (5, 16)}
    binding = bind_schedule(g, exe.fetches, exe.feeds, shapes)
    baseline = lower(g, exe.fetches, exe.feeds, shapes, reference_only=True)
    pairs = binding.kernels()
    assert len({d.py_func.__module__ for d, _ in pairs}) >= 2
    first = pairs[0]
    cache.ensure_compiled(*first)
    before = [(s.call.name, s.storage) for s in binding.steps if s.kind == "call"]
    plan = mixed(binding, baseline, {first})
    names = [s.call.name for s in plan.steps if s.kind == "call"]
    kernel_calls = [s for s in plan.steps if s.kind == "call" and any(d is first[0] for d, _ in s.call.warm)]
    assert kernel_calls and any(n.startswith(("ref:", "np-")) for n in names)
    assert all(s.call.warm == [] or s in kernel_calls for s in plan.steps if s.kind == "call")
    assert [(s.call.name, s.storage) for s in binding.steps if s.kind == "call"] == before     # unchanged
    xv = np.linspace(-2, 2, 80, dtype=np.float32).reshape(5, 16)
    got = Bound(exe, plan, gc.config.get()).driver([xv], sess.state, 0)[0][0]
    want = gc.Session(graph=g, executor="reference")
    want.run(init)
    np.testing.assert_allclose(got, want.run(y, {x: xv}), rtol=1e-5, atol=1e-6)
    full = complete(binding)              # the binding still makes the compiled plan
    assert all(not s.call.name.startswith("ref:") for s in full.steps if s.kind == "call")


def test_the_kernels_that_save_the_most_baseline_time_compile_first():
    # the baseline plan's first run times each call (FirstRunTimes); the kernels are ranked by the
    # time of the calls they replace, the max-pool gradient's numpy reference first here
    from graphc.runtime.bound import Bound
    from graphc.runtime.executor import FirstRunTimes, _by_benefit
    from graphc.runtime.lower import bind_schedule, lower
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (8, 12, 12, 4), name="x")
        loss = gc.reduce_sum(gc.nn.max_pool2d(x, 2) * 2.0) + gc.reduce_sum(gc.tanh(x) * 3.0)
        (dx,) = gc.gradients(loss, [x])
    exe = gc.runtime.compile(g, [dx.node], [x.node])
    shapes = {x.node: (8, 12, 12, 4)}
    binding = bind_schedule(g, exe.fetches, exe.feeds, shapes)
    baseline = lower(g, exe.fetches, exe.feeds, shapes, reference_only=True)
    timing = FirstRunTimes(baseline)
    b = Bound(exe, baseline, gc.config.get())
    timing.seconds.clear()                                             # view ops run while binding
    b.driver = timing.watch(b.driver)
    assert not timing.ready.is_set()
    xv = np.linspace(-1, 1, 8 * 12 * 12 * 4, dtype=np.float32).reshape(shapes[x.node])
    want = b.driver([xv], {}, 0)[0][0].copy()
    calls = {s.node for s in baseline.steps if s.kind == "call"}
    assert timing.ready.is_set() and set(timing.seconds) == calls
    first = dict(timing.seconds)
    np.testing.assert_array_equal(b.driver([xv], {}, 0)[0][0], want)
    assert timing.seconds == first                                     # only the first run
    pairs = list(dict.fromkeys((d, tuple(sig)) for s in binding.steps if s.kind == "call" for d, sig in s.call.warm))
    pool = next(s.node for s in binding.steps if s.op == "max_pool2d_grad")
    seconds = {n: (1.0 if n == pool else 1e-3) for n in calls}
    order = _by_benefit(binding, baseline, pairs, seconds)
    assert next(iter(order))[0].py_func.__name__ == "max_pool_grad"
    assert list(order.values()) == sorted(order.values(), reverse=True)
    assert abs(sum(order.values()) - sum(seconds[s.node] for s in binding.steps
                                         if s.kind == "call" and s.call.warm)) < 1e-9
    static = _by_benefit(binding, baseline, pairs)                     # no run: sizes stand in
    assert set(static) == set(pairs) and all(v > 0 for v in static.values())
    assert _by_benefit(binding, baseline, pairs, {pool: 1.0}) == static   # a run that timed one call


def test_ordered_shares_keep_the_wanted_order_and_whole_modules():
    from graphc.runtime.cache import _shares

    class Fn:
        def __init__(self, mod, name):
            self.py_func = type("F", (), {"__module__": mod, "__name__": name})
    a1, a2, b1, c1 = Fn("a", "a1"), Fn("a", "a2"), Fn("b", "b1"), Fn("c", "c1")
    pairs = [(a1, ()), (b1, ()), (a2, ()), (c1, ())]
    assert _shares(pairs, 1, ordered=True) == [pairs]                         # modules interleaved
    two = _shares(pairs, 2, ordered=True)
    assert len(two) == 2 and sum(len(s) for s in two) == len(pairs)
    for s in two:
        assert s == sorted(s, key=pairs.index)
        mods = {p[0].py_func.__module__ for p in s}
        assert all(p[0].py_func.__module__ in mods for p in pairs if p in s)
    assert {p[0].py_func.__module__ for p in two[0]}.isdisjoint({p[0].py_func.__module__ for p in two[1]})


def test_the_compile_child_reports_each_kernel_as_it_lands(tmp_path, configure):
    # compile_in_background(on_done=...) is told of every pair once, in the order asked for; a
    # callback that raises still leaves no child running
    from graphc.runtime import cache
    from graphc.runtime.lower import bind_schedule
    configure(cache_dir=str(tmp_path), compile_jobs=2)
    g, x, y, init = _three_kernel_graph()
    exe = gc.runtime.compile(g, [y.node], [x.node])
    pairs = bind_schedule(g, exe.fetches, exe.feeds, {x.node: (3, 16)}).kernels()[::-1]
    seen = []
    assert cache.compile_in_background(pairs, on_done=seen.append)
    assert seen == pairs and not cache.cold(pairs)
    g2, x2, y2, _ = _three_kernel_graph()
    with gc.config.override(cache_dir=str(tmp_path / "other")):
        exe2 = gc.runtime.compile(g2, [(y2 * 5.0).node], [x2.node])
        more = bind_schedule(g2, exe2.fetches, exe2.feeds, {x2.node: (3, 16)}).kernels()
        started = []
        real = cache._spawn_child
        cache._spawn_child = lambda *a, **k: started.append(real(*a, **k)) or started[-1]
        try:
            with pytest.raises(RuntimeError, match="boom"):
                cache.compile_in_background(more, on_done=lambda p: (_ for _ in ()).throw(RuntimeError("boom")))
        finally:
            cache._spawn_child = real
        assert started and all(p.returncode is not None for p in started)
        started.clear()                             # a job that cannot be sent: no child waits for it
        send = cache._send_job
        cache._spawn_child = lambda *a, **k: started.append(real(*a, **k)) or started[-1]
        cache._send_job = lambda proc, pairs: (_ for _ in ()).throw(KeyError("no module"))
        t = time.monotonic()
        try:
            with pytest.raises(KeyError):
                cache._compile_in_child(more, 600.0)
        finally:
            cache._spawn_child, cache._send_job = real, send
        assert time.monotonic() - t < 30 and started and all(p.returncode is not None for p in started)


def test_kernels_swap_in_as_they_land_and_every_step_agrees(tmp_path, configure):
    configure(tiered=True, cache_dir=str(tmp_path))
    g, x, y, init = _three_kernel_graph()
    tiered, ref = gc.Session(graph=g), gc.Session(graph=g, executor="reference")
    for s in (tiered, ref):
        s.run(init)
    xv = np.linspace(-2, 2, 64 * 16, dtype=np.float32).reshape(64, 16)
    want = ref.run(y, {x: xv})
    step = tiered.make_callable([y], [x])
    outs = [step(xv)[0]]
    exe = next(p.__self__ for k, p in tiered._programs.items() if len(k[1]) == 1)
    deadline = time.monotonic() + 240
    seen = {0}
    while exe.tier_swaps == 0 and time.monotonic() < deadline:
        outs.append(step(xv)[0])
        seen.add(exe.tier_partial_swaps)
    assert exe.wait_compiled(240) and exe.tier_swaps == 1
    outs.append(step(xv)[0])
    assert exe.tier_partial_swaps >= 1 and len(seen) >= 2      # steps ran on a plan between the tiers
    for o in outs:
        np.testing.assert_allclose(o, want, rtol=1e-5, atol=1e-6)


def test_the_background_compile_runs_under_the_sessions_config(tmp_path):
    # the compile thread starts with an empty context: it must put the executable's config in
    # force, so that the child and every lock use the session's cache folder, not the environment's
    script = textwrap.dedent("""
        import os, sys, numpy as np, graphc as gc
        from graphc.runtime import cache
        seen = []
        real = cache._spawn_child
        cache._spawn_child = lambda *a, **k: seen.append((cache.cache_dir(), gc.config.get().compile_jobs)) or real(*a, **k)
        g = gc.Graph()
        with g.as_default():
            x = gc.placeholder("float32", (None, 16), name="x")
            y = gc.nn.softmax(gc.sigmoid(gc.tanh(x) * 3.0) - x)
        sess = gc.Session(graph=g, config={"cache_dir": sys.argv[1], "compile_jobs": 3})
        xv = np.ones((8, 16), np.float32)
        sess.run(y, {x: xv})
        exe = next(iter(sess._programs.values())).__self__
        assert exe.wait_compiled(240) and exe.tier_swaps == 1
        env_locks = [f for f in os.listdir(os.path.join(sys.argv[2], "kernels")) if f.startswith(".lock-graphc")] \\
            if os.path.isdir(os.path.join(sys.argv[2], "kernels")) else []
        print(seen == [(sys.argv[1], 3)] * len(seen) and bool(seen), env_locks)
    """)
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "envdir"), GRAPHC_TIERED="1")
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "sessdir"), str(tmp_path / "envdir")],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == "True []", r.stdout


def test_a_binding_of_a_plan_swapped_out_during_its_run_is_not_reused(tmp_path, configure):
    # a run that took a binding before a tier swap returns it to no free list: the next runs get
    # the swapped-in plan, never the old one
    from graphc.runtime.bound import Bound
    from graphc.runtime.lower import lower
    configure(tiered=False, cache_dir=str(tmp_path))
    g, x, y, init = _three_kernel_graph()
    sess = gc.Session(graph=g)
    sess.run(init)
    exe = gc.runtime.compile(g, [y.node], [x.node])
    xv = np.ones((4, 16), np.float32)
    exe.run({x.node: xv}, sess.state, 0)
    key = ((4, 16),)
    new = Bound(exe, lower(g, exe.fetches, exe.feeds, {x.node: (4, 16)}), gc.config.get())
    acquire = exe._acquire

    def acquire_then_swap(k):       # every binding busy: one more of the old plan, then a swap
        b = acquire(k)
        with exe._lock:
            exe._bound[key], exe._free[key] = new, [new]
        return b
    exe._acquire = acquire_then_swap
    exe._free[key] = []
    out = exe.run({x.node: xv}, sess.state, 0)[0][0]
    assert exe._free[key] == [new]
    np.testing.assert_array_equal(exe.run({x.node: xv}, sess.state, 0)[0][0], out)


def test_work_handed_to_the_next_run_is_done_there_or_after_a_wait_by_its_own_thread():
    import threading

    from graphc.runtime.executor import BetweenRuns
    between, seen = BetweenRuns(wait_s=30.0), []
    t = threading.Thread(target=lambda: seen.append(between.call(threading.current_thread)))
    t.start()
    while not between.jobs:
        time.sleep(0.001)
    between.run_pending()                   # the next run: it does the job, the caller gets the result
    t.join(30)
    assert seen == [threading.main_thread()] and not between.jobs
    alone = BetweenRuns(wait_s=0.05)        # no run comes: the caller does it after its wait
    assert alone.call(threading.current_thread) is threading.current_thread()
    alone.run_pending()                     # a run arriving late finds nothing left to do
    with pytest.raises(ZeroDivisionError):  # an error reaches the caller, never the run
        BetweenRuns(wait_s=0.05).call(lambda: 1 / 0)


def test_tier_swaps_are_made_by_the_thread_running_the_steps(tmp_path, configure, monkeypatch):
    import threading

    from graphc.runtime import executor
    configure(tiered=True, cache_dir=str(tmp_path))
    monkeypatch.setattr(executor, "BETWEEN_RUNS_WAIT_S", 60.0)
    installers = []
    install = executor.Executable._install

    def spy(self, key, b):
        installers.append(threading.current_thread())
        return install(self, key, b)
    monkeypatch.setattr(executor.Executable, "_install", spy)
    g, x, lab, loss, train, init = _training_graph()
    sess = gc.Session(graph=g)
    sess.run(init)
    f = {x: np.ones((8, 12), np.float32), lab: np.zeros(8, np.int32)}
    sess.run([loss, train], f)
    exe = next(p.__self__ for k, p in sess._programs.items() if len(k[1]) == 2)
    deadline = time.monotonic() + 240
    while exe.tier_swaps == 0 and time.monotonic() < deadline:
        sess.run([loss, train], f)
    assert exe.tier_swaps == 1 and installers and set(installers) == {threading.main_thread()}
