"""Per-step overhead of a training step at batch 32 (the seed MLP 784-64-10 with Adam).

    python examples/bench_step.py [--steps 250] [--profile] [--lines] [--startup] [--baseline REV]

Measured in this run (best of several repeats, microseconds per step):

* ``train_on_batch``: the Keras model API (``Sequential`` + ``compile``), one call per batch;
* ``Session.run``: the same program's fetches with a feed dict (what ``fit`` does per batch);
* ``make_callable``: ``Session.make_callable(fetches, feed_list)`` called with the arrays;
* ``Executable.run``: the compiled program called directly (feeds dict, state, run key);
* ``driver``: the bound driver alone (no feed checks);
* ``driver lines (sum)``: the driver's lines timed one by one (``--lines`` lists them);
* a TF1-style graph (placeholders, ``gc.optimizers.Adam().minimize``) through ``Session.run``
  and ``make_callable``;
* the epoch: 250 steps of 32 (8,000 samples) via ``model.fit`` (target: PyTorch 0.16 s, JAX 0.08 s).

``--profile`` prints the top of a cProfile of 2,000 ``Session.run`` steps; ``--startup`` runs the
seed MLP compile + first run in a new process with a cold and a warm cache; ``--baseline REV``
measures with ``runtime/executor.py`` and ``Session.run`` as of git revision ``REV`` instead.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np

import graphc as gc
from graphc.layers import Dense
from graphc.models import Sequential


def per_call(fn, n=250, repeat=5):
    """Best mean time (us) of ``fn(i)`` over ``n`` consecutive batches ``i`` (as an epoch does)."""
    fn(0)
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - t) / n)
    return best * 1e6


def data(n=8000, seed=0):
    """MNIST images (from $GRAPHC_DATA, else the test set installed with graphc), else uniform
    noise."""
    try:
        from graphc.datasets import mnist
        (x, y), _ = mnist.load_data()
        x = x.reshape(len(x), 784)[:n].astype(np.float32) / 255.0
        return x, np.eye(10, dtype=np.float32)[y[:n]]
    except Exception:
        rng = np.random.default_rng(seed)
        x = rng.random((n, 784), dtype=np.float32)
        return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, n)]


def batches(x, y, bs=32):
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, len(x) - bs + 1, bs)]


def model_step(x, y):
    model = Sequential()
    model.add(Dense(units=64, activation="relu", input_dim=784))
    model.add(Dense(units=10, activation="softmax"))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    bs = batches(x, y)
    nb = len(bs)
    res = {"train_on_batch": per_call(lambda i: model.train_on_batch(*bs[i % nb]))}
    prog = model._get_program("train", [bs[0][0]], [bs[0][1]])
    sess = model._state.session
    fetches, feeds = prog.fetches, prog.feeds
    res["Session.run"] = per_call(lambda i: sess.run(fetches, dict(zip(feeds, bs[i % nb]))))
    if hasattr(sess, "make_callable") and "--baseline" not in sys.argv:
        fn = sess.make_callable(fetches, feeds)
        res["make_callable"] = per_call(lambda i: fn(*bs[i % nb]))
    res.update(executor_parts(sess, fetches, feeds, bs))
    t = time.perf_counter()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=False)
    first = time.perf_counter() - t
    epochs = []
    for _ in range(3):
        t = time.perf_counter()
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, shuffle=True)
        epochs.append(time.perf_counter() - t)
    res["epoch_s"] = min(epochs)
    res["first_epoch_s"] = first
    return res, model


def executor_parts(sess, fetches, feeds, bs):
    """Time the compiled program, its driver and its driver lines (the Session's cached program);
    variable updates are not committed here, so every call sees the same state."""
    out = {}
    exe = None
    for prog in sess._programs.values():
        exe = getattr(prog, "__self__", None) or getattr(prog, "executable", None) or exe
    if exe is None or not hasattr(exe, "_bound"):
        return out
    nb = len(bs)
    fds = [{n: a for n, a in zip([sess._fetch_node(f) for f in feeds], b)} for b in bs]
    b = exe._bound.get(tuple(fds[0][f].shape for f in exe.feeds))
    if b is None:
        return out
    state, run_key = sess.state, sess._runs
    out["Executable.run"] = per_call(lambda i: exe.run(fds[i % nb], state, run_key))
    lists = [[d[f] for f in exe.feeds] for d in fds] if hasattr(exe, "run_list") else fds
    out["driver"] = per_call(lambda i: b.driver(lists[i % nb], state, run_key))
    if hasattr(b, "line_times"):
        times = b.line_times(lists[0], state, run_key, repeat=200)
        out["driver lines (sum)"] = sum(t for _, t in times) * 1e6
        out["_lines"] = times
    out["_kernel_calls"] = len(b.plan.kernel_calls)
    return out


def tf_style(x, y):
    g = gc.Graph()
    with g.as_default():
        xp = gc.placeholder("float32", (None, 784), name="x")
        yp = gc.placeholder("float32", (None, 10), name="y")
        rng = np.random.default_rng(1)
        w1 = gc.Variable(rng.standard_normal((784, 64)).astype(np.float32) * 0.05, name="w1")
        b1 = gc.Variable(np.zeros(64, np.float32), name="b1")
        w2 = gc.Variable(rng.standard_normal((64, 10)).astype(np.float32) * 0.1, name="w2")
        b2 = gc.Variable(np.zeros(10, np.float32), name="b2")
        logits = gc.matmul(gc.relu(gc.matmul(xp, w1) + b1), w2) + b2
        loss = gc.reduce_mean(gc.nn.softmax_cross_entropy_with_logits(labels=yp, logits=logits))
        train = gc.optimizers.Adam(0.001).minimize(loss)
        init = gc.global_variables_initializer()
    sess = gc.Session(graph=g)
    sess.run(init)
    bs = batches(x, y)
    nb = len(bs)
    res = {"tf Session.run": per_call(lambda i: sess.run([train, loss], {xp: bs[i % nb][0],
                                                                         yp: bs[i % nb][1]}))}
    if hasattr(sess, "make_callable") and "--baseline" not in sys.argv:
        fn = sess.make_callable([train, loss], [xp, yp])
        res["tf make_callable"] = per_call(lambda i: fn(*bs[i % nb]))
    parts = executor_parts(sess, [train, loss], [xp, yp], bs)
    res.update({"tf " + k: v for k, v in parts.items()})
    return res, (sess, [train, loss], {xp: bs[0][0], yp: bs[0][1]})


def profile(sess, fetches, feed, n=2000):
    import cProfile
    import pstats
    pr = cProfile.Profile()
    pr.enable()
    for _ in range(n):
        sess.run(fetches, feed)
    pr.disable()
    pstats.Stats(pr).sort_stats("tottime").print_stats(18)


def startup():
    from bench_kernels import bench_mlp_startup
    bench_mlp_startup()


def use_baseline(rev: str) -> None:
    """Swap in ``runtime/executor.py`` and ``Session.run`` as of git revision ``rev`` (same process
    layout, so before/after figures come from the same machine state)."""
    import importlib.util
    import subprocess
    import types
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    from graphc import runtime, session
    for rel, pkg, name in (("runtime/executor.py", "graphc.runtime", "graphc.runtime._baseline_executor"),
                           ("graphc/session.py", "graphc", "graphc._baseline_session")):
        src = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=root, capture_output=True, text=True,
                             check=True).stdout
        mod = types.ModuleType(name)
        mod.__package__ = pkg
        sys.modules[name] = mod
        exec(compile(src, f"<{rev}:{rel}>", "exec"), mod.__dict__)
        if rel.startswith("runtime"):
            runtime.compile = mod.compile
        else:
            for attr in ("run", "_execute", "_prepare", "_feeds"):
                setattr(session.Session, attr, getattr(mod.Session, attr))
            # the model API calls make_callable: the baseline runs it as one Session.run per call
            session.Session.make_callable = lambda self, fetches, feed_list=None: \
                lambda *vals: self.run(fetches, dict(zip(feed_list or [], vals)))
    del importlib


def main():
    if "--baseline" in sys.argv:
        rev = sys.argv[sys.argv.index("--baseline") + 1]
        use_baseline(rev)
        print(f"baseline: runtime/executor.py and Session.run as of {rev}")
    steps = 250
    if "--steps" in sys.argv:
        steps = int(sys.argv[sys.argv.index("--steps") + 1])
    x, y = data(steps * 32)
    print(f"numpy {np.__version__}, {os.cpu_count()} cores; batch 32, MLP 784-64-10, Adam")
    res, _ = model_step(x, y)
    tres, tf_args = tf_style(x, y)
    res.update(tres)
    for k, v in res.items():
        if k.startswith("_") or k.startswith("tf _"):
            continue
        if k.endswith("_s"):
            print(f"  {k:<24s} {v:8.3f} s  ({steps} steps of 32)")
        else:
            print(f"  {k:<24s} {v:8.1f} us/step")
    print(f"  kernel calls per step: model {res.get('_kernel_calls')}, tf {res.get('tf _kernel_calls')}")
    if "--lines" in sys.argv:
        for label, key in (("model", "_lines"), ("tf", "tf _lines")):
            print(f"  driver lines over 2 us ({label}):")
            for ln, t in res.get(key, []):
                if t > 2e-6:
                    print(f"    {t * 1e6:7.1f} us  {ln[:110]}")
    if "--profile" in sys.argv:
        profile(*tf_args)
    if "--startup" in sys.argv:
        startup()


if __name__ == "__main__":
    # compiled steps only: with tiered execution a cold plan's first runs are its numpy baseline
    with gc.config.override(tiered=False):
        main()
