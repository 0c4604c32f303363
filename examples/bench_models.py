"""Model benchmark: epoch time at batch 32 on MNIST (8,000 train images) in graphc, PyTorch and JAX.

    python examples/bench_models.py [--models mlp,cnn,lstm] [--epochs 3] [--data DIR] [--profile]
                                    [--rounds N]

The same architectures (the MLP, CNN and row-LSTM seeds), the same data, batch size 32, Adam
(lr 1e-3, Keras' epsilon 1e-7) and categorical cross-entropy on a softmax output, all measured in
this one run:

* graphc: ``model.fit(..., epochs=E, batch_size=32)``; each epoch timed by a callback (shuffle,
  batch slicing, the compiled training step, metric averaging included);
* PyTorch (if installed): an eager training loop, ``torch.set_num_threads(2)``;
* JAX (if installed): a ``jax.jit``-compiled step (forward, grad, Adam) called once per batch.

Each (model, framework) pair runs in a fresh subprocess of this run, so that the thread pools of
one framework (PyTorch's OpenMP workers, XLA's) do not spin against the next one on a 2-core
machine; graphc's gets an empty kernel cache (``--warm-cache`` keeps the user's). The first epoch
includes compilation in every framework; the reported time is the best of epochs after the first.
graphc's cold ``fit`` runs its baseline tier (numpy) until the compiled kernels swap in, possibly
after the whole fit: its steady epochs come from a second ``fit`` of a fresh model in the same
process once every kernel is compiled, and the report adds the whole cold ``fit`` (model build and
compilation included) against that warm one (issue #17: ratio <= 2).
"first step" is the cold first call: from building the model to the end of its first training step
(graphc with its default tiered execution, JAX's jit compile, PyTorch's eager first step). Ratios < 1
mean graphc is faster. ``--rounds N`` runs each framework N times, taking turns, and adds the
graphc/torch ratio of every round and their median (the first round's numbers fill the tables).
``--profile`` adds a cProfile of the
graphc MLP epoch and the time per ``Session.run`` against a bare executable run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
from _common import EpochTimer, load_mnist, seed_all

SHAPES = {"mlp": (784,), "cnn": (28, 28, 1), "lstm": (28, 28)}


def steady(times):
    """Best epoch after the first (compilation): on a shared 2-core machine the minimum is the
    stable statistic; the per-epoch times are printed too."""
    return float(np.min(times[1:] if len(times) > 1 else times))


# -- graphc -------------------------------------------------------------------------------------------
def graphc_model(kind):
    from graphc.layers import LSTM, Conv2D, Dense, Flatten, MaxPooling2D
    from graphc.models import Sequential
    if kind == "mlp":
        layers = [Dense(64, activation="relu", input_dim=784), Dense(10, activation="softmax")]
    elif kind == "cnn":
        layers = [Conv2D(32, (3, 3), activation="relu", input_shape=(28, 28, 1)),
                  MaxPooling2D((2, 2)), Conv2D(64, (3, 3), activation="relu"), MaxPooling2D((2, 2)),
                  Flatten(), Dense(128, activation="relu"), Dense(10, activation="softmax")]
    else:
        layers = [LSTM(64, input_shape=(28, 28)), Dense(10, activation="softmax")]
    model = Sequential(layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    return model


class FirstStep(EpochTimer):
    """Also records when the first training step ends (``first``, perf_counter seconds) and when
    the model's first compiled kernels ran (``first_kernels``: a partial swap of tiered execution) and
    all of them (``swapped``: its last swap), each seen at a batch end."""

    def on_train_batch_end(self, batch, logs=None):
        if not hasattr(self, "first"):
            self.first = time.perf_counter()
        if not hasattr(self, "swapped"):
            exes = executables(self.model)
            if not hasattr(self, "first_kernels") and any(e.tier_partial_swaps or e.tier_swaps for e in exes):
                self.first_kernels = time.perf_counter()
            if any(e.tier_swaps for e in exes):
                self.swapped = time.perf_counter()


def executables(model):
    """The compiled programs (``runtime.Executable``) the model's session has made so far."""
    return [p.__self__ for p in model.session._programs.values() if hasattr(p, "__self__")]


def bench_graphc(kind, x, y, xt, yt, epochs):
    """A cold ``fit`` (tiered: the baseline tier until the compiled kernels swap in), then, once
    every kernel is compiled, the same ``fit`` of a fresh model in this process: its epochs are the
    compiled tier's (the steady epoch is taken from them, never from baseline-tier epochs)."""
    t_start = time.perf_counter()
    model = graphc_model(kind)
    timer = FirstStep()
    model.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[timer])
    cold_total = time.perf_counter() - t_start
    swapped, first_kernels = getattr(timer, "swapped", None), getattr(timer, "first_kernels", None)
    for e in executables(model):
        e.wait_compiled(600)
    t_warm = time.perf_counter()
    warm = graphc_model(kind)
    wtimer = EpochTimer()
    warm.fit(x, y, epochs=epochs, batch_size=32, verbose=0, callbacks=[wtimer])
    warm_total = time.perf_counter() - t_warm
    _, acc = model.evaluate(xt, yt, batch_size=256, verbose=0)     # after: its compile is no load
    extra = {"cold_times": timer.times, "cold_total": cold_total, "warm_total": warm_total,
             "swap": None if swapped is None else swapped - t_start,
             "first_kernels": None if first_kernels is None else first_kernels - t_start}
    return wtimer.times, acc, timer.first - t_start, extra


# -- PyTorch ------------------------------------------------------------------------------------------
def bench_torch(kind, x, y, xt, yt, epochs):
    import torch
    from torch import nn
    torch.set_num_threads(2)
    torch.manual_seed(0)
    t_start, first = time.perf_counter(), None

    class LSTMNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm, self.out = nn.LSTM(28, 64, batch_first=True), nn.Linear(64, 10)

        def forward(self, v):
            return self.out(self.lstm(v)[0][:, -1])

    if kind == "mlp":
        net = nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    elif kind == "cnn":
        net = nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3),
                            nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64 * 5 * 5, 128),
                            nn.ReLU(), nn.Linear(128, 10))
    else:
        net = LSTMNet()
    to_t = (lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2)))) \
        if kind == "cnn" else torch.from_numpy
    xs, ys = to_t(x), torch.from_numpy(y.argmax(1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    times, n, gen = [], len(x), torch.Generator().manual_seed(0)
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        for lo in range(0, n, 32):
            idx = perm[lo:lo + 32]
            opt.zero_grad(set_to_none=True)
            out = net(xs[idx])
            loss = loss_fn(out, ys[idx])
            loss.backward()
            opt.step()
            (out.argmax(1) == ys[idx]).float().mean().item()   # the accuracy metric, like fit's
            first = first or time.perf_counter() - t_start
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        acc = float((net(to_t(xt)).argmax(1).numpy() == yt.argmax(1)).mean())
    return times, acc, first


# -- JAX ----------------------------------------------------------------------------------------------
def bench_jax(kind, x, y, xt, yt, epochs):
    import jax
    import jax.numpy as jnp
    from jax import lax
    t_start, first = time.perf_counter(), None
    key = jax.random.PRNGKey(0)

    def glorot(k, shape, fan_in, fan_out):
        lim = np.sqrt(6.0 / (fan_in + fan_out))
        return jax.random.uniform(k, shape, jnp.float32, -lim, lim)

    ks = jax.random.split(key, 8)
    if kind == "mlp":
        params = {"w1": glorot(ks[0], (784, 64), 784, 64), "b1": jnp.zeros(64),
                  "w2": glorot(ks[1], (64, 10), 64, 10), "b2": jnp.zeros(10)}

        def forward(p, v):
            return jax.nn.relu(v @ p["w1"] + p["b1"]) @ p["w2"] + p["b2"]
    elif kind == "cnn":
        params = {"c1": glorot(ks[0], (3, 3, 1, 32), 9, 288), "cb1": jnp.zeros(32),
                  "c2": glorot(ks[1], (3, 3, 32, 64), 288, 576), "cb2": jnp.zeros(64),
                  "w1": glorot(ks[2], (1600, 128), 1600, 128), "b1": jnp.zeros(128),
                  "w2": glorot(ks[3], (128, 10), 128, 10), "b2": jnp.zeros(10)}
        dn = ("NHWC", "HWIO", "NHWC")

        def pool(v):
            return lax.reduce_window(v, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def forward(p, v):
            v = pool(jax.nn.relu(lax.conv_general_dilated(v, p["c1"], (1, 1), "VALID",
                                                          dimension_numbers=dn) + p["cb1"]))
            v = pool(jax.nn.relu(lax.conv_general_dilated(v, p["c2"], (1, 1), "VALID",
                                                          dimension_numbers=dn) + p["cb2"]))
            v = jax.nn.relu(v.reshape(v.shape[0], -1) @ p["w1"] + p["b1"])
            return v @ p["w2"] + p["b2"]
    else:
        params = {"k": glorot(ks[0], (28, 256), 28, 256), "r": glorot(ks[1], (64, 256), 64, 256),
                  "b": jnp.zeros(256).at[64:128].set(1.0),
                  "w2": glorot(ks[2], (64, 10), 64, 10), "b2": jnp.zeros(10)}

        def forward(p, v):
            xw = jnp.einsum("btf,fg->tbg", v, p["k"]) + p["b"]

            def cell(carry, xt_):
                h, c = carry
                z = xt_ + h @ p["r"]
                i, f, g, o = jnp.split(z, 4, axis=-1)
                c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
                return (h, c), None
            zeros = jnp.zeros((v.shape[0], 64), v.dtype)
            (h, _), _ = lax.scan(cell, (zeros, zeros), xw)
            return h @ p["w2"] + p["b2"]

    def loss_fn(p, v, t):
        logits = forward(p, v)
        return -jnp.mean(jnp.sum(t * jax.nn.log_softmax(logits), axis=-1)), logits

    @jax.jit
    def step(p, m, s, i, v, t):
        (loss, logits), g = jax.value_and_grad(loss_fn, has_aux=True)(p, v, t)
        i = i + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        s = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, s, g)
        lr = 1e-3 * jnp.sqrt(1 - 0.999 ** i) / (1 - 0.9 ** i)
        p = jax.tree_util.tree_map(lambda a, mm, ss: a - lr * mm / (jnp.sqrt(ss) + 1e-7), p, m, s)
        acc = jnp.mean(jnp.argmax(logits, -1) == jnp.argmax(t, -1))
        return p, m, s, i, loss, acc

    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    s = jax.tree_util.tree_map(jnp.zeros_like, params)
    i = jnp.zeros((), jnp.float32)
    rng, n, times = np.random.default_rng(0), len(x), []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = rng.permutation(n)
        ex, ey = x[perm], y[perm]
        for lo in range(0, n, 32):
            params, m, s, i, loss, acc = step(params, m, s, i, ex[lo:lo + 32], ey[lo:lo + 32])
            float(acc)
            first = first or time.perf_counter() - t_start
        times.append(time.perf_counter() - t0)
    pred = jax.jit(forward)(params, xt)
    return times, float((np.asarray(pred).argmax(1) == yt.argmax(1)).mean()), first


# -- profile --------------------------------------------------------------------------------------------
def profile_mlp(x, y):
    """Where a graphc MLP epoch goes: cProfile top entries, Session.run vs the bare executable."""
    import cProfile
    import pstats
    model = graphc_model("mlp")
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)       # compile
    pr = cProfile.Profile()
    pr.enable()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    pr.disable()
    print("\n-- cProfile of one graphc MLP epoch (250 steps), top 15 by total time --")
    pstats.Stats(pr).sort_stats("tottime").print_stats(15)
    prog = next(p for k, p in model._programs.items() if k[0] == "train")
    sess = model.session
    args = [x[:32], y[:32]]
    feed = dict(zip(prog.feeds, args))
    feeds = sess._feeds(feed)
    nodes = [sess._fetch_node(f) for f in prog.fetches]
    exe = sess._programs[(tuple(nodes), tuple(sorted(feeds)))]
    fn = sess.make_callable(prog.fetches, prog.feeds) if hasattr(sess, "make_callable") else None
    cands = {"Session.run": lambda: sess.run(prog.fetches, feed),
             "bare compiled program": lambda: exe(feeds, sess.state, 0)}
    if fn is not None:
        cands["Session.make_callable"] = lambda: fn(*args)
    res = {k: [] for k in cands}
    for _ in range(15):                      # interleaved blocks; the median resists machine noise
        for k, f in cands.items():
            t0 = time.perf_counter()
            for _ in range(100):
                f()
            res[k].append((time.perf_counter() - t0) / 100)
    print("\n-- one MLP training step at batch 32 (median of 15 blocks of 100) --")
    for k, v in res.items():
        print(f"{k:24s} {np.median(v) * 1e6:7.0f} us")


def worker(kind, fw, data, epochs):
    seed_all(0)
    (x, y), (xt, yt) = load_mnist(data, shape=SHAPES[kind])
    runners = {"graphc": bench_graphc, "torch": bench_torch, "jax": bench_jax}
    try:
        times, acc, first, *extra = runners[fw](kind, x, y, xt, yt, epochs)
    except ImportError as e:
        print(json.dumps({"skipped": str(e)}))
        return
    print(json.dumps({"times": times, "acc": acc, "first": first, **(extra[0] if extra else {})}))


def run_isolated(kind, fw, args):
    import tempfile
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", f"{kind}:{fw}",
           "--epochs", str(args.epochs)] + (["--data", args.data] if args.data else [])
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as cache:
        if fw == "graphc" and not args.warm_cache:
            env["GRAPHC_CACHE_DIR"] = cache         # a cold first call, as every peer's
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return {"skipped": "failed: " + " | ".join(tail)}
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="mlp,cnn,lstm")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--data", default=None)
    ap.add_argument("--frameworks", default="graphc,torch,jax")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--warm-cache", action="store_true", help="graphc keeps the kernel cache")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run every framework this many times, taking turns, and report the median "
                         "of the per-round graphc/torch ratios (a shared machine's speed drifts)")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, fw = args.worker.split(":")
        if fw == "profile":
            seed_all(0)
            (x, y), _ = load_mnist(args.data, shape=SHAPES["mlp"])
            profile_mlp(x, y)
        else:
            worker(kind, fw, args.data, args.epochs)
        return
    fws = ["graphc", "torch", "jax"]
    rows, colds, rounds = [], {}, []
    for kind in args.models.split(","):
        res, firsts = {}, {}
        for rnd, fw in [(k, fw) for k in range(args.rounds) for fw in args.frameworks.split(",")]:
            r = run_isolated(kind, fw, args)
            if "skipped" in r:
                print(f"{kind:5s} {fw:7s} skipped ({r['skipped']})", flush=True)
                continue
            if rnd:         # a later round: its steady epoch, for the per-round ratios below
                rounds.append((kind, rnd, fw, steady(r["times"])))
                print(f"{kind:5s} {fw:7s} round {rnd + 1} epoch times " + " ".join(f"{t:.3f}" for t in r["times"]),
                      flush=True)
                continue
            rounds.append((kind, rnd, fw, steady(r["times"])))
            res[fw], firsts[fw] = steady(r["times"]), r["first"]
            print(f"{kind:5s} {fw:7s} epoch times " + " ".join(f"{t:.3f}" for t in r["times"]) +
                  f"  steady {res[fw]:.3f}s  first step {r['first']:.2f}s  held-out acc "
                  f"{r['acc']:.4f}", flush=True)
            if "cold_total" in r:
                first, last = r.get("first_kernels"), r["swap"]
                swap = "none within the fit" if first is None else (
                    f"the first at {first:.2f}s, all " + ("after the fit" if last is None else f"at {last:.2f}s"))
                print(f"{'':13s} cold fit epochs " + " ".join(f"{t:.3f}" for t in r["cold_times"]) +
                      f"  (compiled kernels swapped in: {swap})", flush=True)
                colds[kind] = (r["cold_total"], r["warm_total"])
        rows.append((kind, res, firsts))
    print(f"\nepoch time at batch 32 (8,000 images; best of epochs 2..{args.epochs})")
    print(f"{'model':6s} " + " ".join(f"{fw:>9s}" for fw in fws) + "   graphc/torch graphc/jax")
    for kind, res, _ in rows:
        cells = " ".join(f"{res[fw]:8.3f}s" if fw in res else f"{'-':>9s}" for fw in fws)
        g = res.get("graphc")
        r1 = f"{g / res['torch']:12.2f}" if g and "torch" in res else f"{'-':>12s}"
        r2 = f"{g / res['jax']:11.2f}" if g and "jax" in res else f"{'-':>11s}"
        print(f"{kind:6s} {cells}   {r1} {r2}")
    if args.rounds > 1:
        by = {(k, rnd, fw): t for k, rnd, fw, t in rounds}
        print(f"\ngraphc/torch per round ({args.rounds} rounds, frameworks taking turns) and their median")
        for kind, _, _ in rows:
            ratios = [by[(kind, k, "graphc")] / by[(kind, k, "torch")] for k in range(args.rounds)
                      if (kind, k, "graphc") in by and (kind, k, "torch") in by]
            if ratios:
                print(f"{kind:6s} " + " ".join(f"{q:.3f}" for q in ratios) + f"   median {np.median(ratios):.3f}")
    print("\ncold first call: building the model to the end of its first training step")
    print(f"{'model':6s} " + " ".join(f"{fw:>9s}" for fw in fws))
    for kind, _, firsts in rows:
        print(f"{kind:6s} " + " ".join(f"{firsts[fw]:8.2f}s" if fw in firsts else f"{'-':>9s}"
                                       for fw in fws))
    if colds:
        print(f"\ngraphc whole {args.epochs}-epoch fit: empty kernel cache (tiered) vs warm (kernels compiled)")
        for kind, (c, w) in colds.items():
            print(f"{kind:6s} cold {c:7.2f}s  warm {w:7.2f}s  ratio {c / w:5.2f}")
    if args.profile:
        cmd = [sys.executable, os.path.abspath(__file__), "--worker", "mlp:profile"] + \
            (["--data", args.data] if args.data else [])
        subprocess.run(cmd)


if __name__ == "__main__":
    main()
