"""``graphc bench --peers``: the same workloads written natively in PyTorch and JAX, where installed.

Neither is required: a missing framework or a workload without a peer version is simply left out.
Peers run on the same feed arrays as graphc, in a process of their own, torch on one thread
(graphc's kernels are single-threaded by default); the ratio is peer time / graphc time (> 1: graphc faster).

    >>> sorted(PEER_WORKLOADS)[:3]
    ['chain_16', 'chain_4', 'chain_64']
"""
from __future__ import annotations

import importlib.util

import numpy as np

PEER_WORKLOADS = {"chain_4", "chain_16", "chain_64", "mlp_infer", "mlp_train", "cnn_infer"}


def _chain_fns(lib, length):
    t = lib
    ops = (lambda x: x * 1.5, lambda x: x + 0.25, t.tanh, lambda x: x * x, lambda x: x - 0.5,
           t.relu,
           t.sigmoid, lambda x: t.maximum(x, t.full_like(x, 0.1)))

    def f(x):
        for i in range(length):
            x = ops[i % len(ops)](x)
        return x
    return f


def _torch(name, arrays, quick, timeit):
    import torch
    torch.set_num_threads(1)   # graphc's kernels are single-threaded unless GRAPHC_PARALLEL=1
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    if name.startswith("chain_"):
        f = _chain_fns(torch, int(name.split("_")[1]))
        with torch.no_grad():
            return timeit(lambda: f(xs[0]))
    if name.startswith("mlp_"):
        net = torch.nn.Sequential(torch.nn.Linear(784, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
        if name == "mlp_infer":
            with torch.no_grad():
                return timeit(lambda: torch.softmax(net(xs[0]), 1))
        opt = torch.optim.Adam(net.parameters(), 1e-3)
        x, y = xs[0], xs[1]

        def step():
            opt.zero_grad()
            logits = net(x)
            loss = -(y * torch.log_softmax(logits, 1)).sum(1).mean()
            loss.backward()
            opt.step()
            return loss
        return timeit(step)
    if name == "cnn_infer":
        c1, c2 = (8, 16) if quick else (32, 64)
        net = torch.nn.Sequential(torch.nn.Conv2d(1, c1, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Conv2d(c1, c2, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                  torch.nn.Flatten(), torch.nn.Linear(c2 * 25, 10))
        x = xs[0].permute(0, 3, 1, 2).contiguous()   # graphc is NHWC, torch NCHW
        with torch.no_grad():
            return timeit(lambda: torch.softmax(net(x), 1))
    return None


def _jax(name, arrays, quick, timeit):
    import jax
    import jax.numpy as jnp
    xs = [jnp.asarray(a) for a in arrays]
    if name.startswith("chain_"):
        f = jax.jit(_chain_fns(_JnpOps(jnp, jax), int(name.split("_")[1])))
        return timeit(lambda: f(xs[0]).block_until_ready())
    if name.startswith("mlp_"):
        rng = np.random.default_rng(0)
        params = [jnp.asarray(rng.standard_normal(s).astype(np.float32) * 0.05)
                  for s in ((784, 64), (64,), (64, 10), (10,))]

        def fwd(p, x):
            return jax.nn.relu(x @ p[0] + p[1]) @ p[2] + p[3]
        if name == "mlp_infer":
            f = jax.jit(lambda p, x: jax.nn.softmax(fwd(p, x), axis=1))
            return timeit(lambda: f(params, xs[0]).block_until_ready())

        def loss(p, x, y):
            return -(y * jax.nn.log_softmax(fwd(p, x), axis=1)).sum(1).mean()

        @jax.jit
        def step(p, x, y):   # plain SGD (optax is not required)
            gs = jax.grad(loss)(p, x, y)
            return [a - 1e-3 * b for a, b in zip(p, gs)]
        return timeit(lambda: step(params, xs[0], xs[1])[0].block_until_ready())
    return None


class _JnpOps:
    """jax.numpy with the few names the chain uses (relu, sigmoid from jax.nn)."""

    def __init__(self, jnp, jax):
        self.tanh, self.maximum, self.full_like = jnp.tanh, jnp.maximum, jnp.full_like
        self.relu, self.sigmoid = jax.nn.relu, jax.nn.sigmoid


def import_peers() -> list[str]:
    """Import the installed peers (call before graphc runs: thread pools started first win)."""
    found = []
    for peer in ("torch", "jax"):
        if importlib.util.find_spec(peer) is not None:
            __import__(peer)
            found.append(peer)
    return found


def measure_peers(name: str, prog, quick: bool, budget: float) -> dict:
    """``{"torch": {"run_s"}, "jax": {...}}`` for the installed peers that have ``name``."""
    from .bench import _timeit
    if name not in PEER_WORKLOADS:
        return {}
    arrays = [prog.feed_values[n] for n in prog.feeds]
    out = {}
    for peer, fn in (("torch", _torch), ("jax", _jax)):
        if importlib.util.find_spec(peer) is None:
            continue
        try:
            t = fn(name, arrays, quick, lambda f: _timeit(f, budget))
        except Exception as e:  # a peer failing must not fail the benchmark
            out[peer] = {"error": f"{type(e).__name__}: {e}"}
            continue
        if t is not None:
            out[peer] = {"run_s": t}
    return out
