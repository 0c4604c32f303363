"""``graphc bench --peers``: the same workloads written natively in PyTorch and JAX, where installed.

Neither is required: a missing framework is recorded as ``{"skipped": reason}`` (Keras too: it has no
peer versions here), and a workload without a peer version (the synthetic graphs) is simply left out.
Peers build the same architectures as ``graphc.tools.workloads`` and run on the same feed arrays (so the
same shapes, batch and dtype), in a process of their own, torch on one thread (graphc's kernels are
single-threaded by default); a training step is forward + loss + backward + Adam update (JAX: ``jit``,
with optax where installed, else Adam written in ``jax.numpy``). The ratio is peer time / graphc time
(> 1: graphc faster).

    >>> sorted(PEER_WORKLOADS)[:3]
    ['chain_16', 'chain_4', 'chain_64']
"""
from __future__ import annotations

import importlib.util

import numpy as np

MODEL_KINDS = ("mlp", "cnn", "lstm", "transformer")
PEER_WORKLOADS = {"chain_4", "chain_16", "chain_64"} | {f"{k}_{m}" for k in MODEL_KINDS
                                                       for m in ("infer", "train")}
PEERS = ("torch", "jax", "keras")


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


def _sizes(kind, quick):
    """The layer sizes of the graphc workload ``kind`` (see ``graphc.tools.workloads``)."""
    return {"cnn": (8, 16) if quick else (32, 64), "lstm": 16 if quick else 32,
            "transformer": (16, 32) if quick else (64, 64)}.get(kind)


# -- PyTorch ---------------------------------------------------------------------------------------------
def _torch_net(kind, quick):
    """The workload's network (returning logits for the classifiers), input in graphc's layout."""
    import torch
    nn = torch.nn
    if kind == "mlp":
        return nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))
    if kind == "cnn":
        c1, c2 = _sizes(kind, quick)

        class Cnn(nn.Module):
            def __init__(self):
                super().__init__()
                self.net = nn.Sequential(nn.Conv2d(1, c1, 3), nn.ReLU(), nn.MaxPool2d(2),
                                         nn.Conv2d(c1, c2, 3), nn.ReLU(), nn.MaxPool2d(2),
                                         nn.Flatten(), nn.Linear(c2 * 25, 10))

            def forward(self, x):   # graphc is NHWC, torch NCHW (a copy, as a torch user would do)
                return self.net(x.permute(0, 3, 1, 2).contiguous())
        return Cnn()
    if kind == "lstm":
        units = _sizes(kind, quick)

        class Lstm(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm, self.dense = nn.LSTM(16, units, batch_first=True), nn.Linear(units, 10)

            def forward(self, x):
                _, (h, _) = self.lstm(x)
                return self.dense(h[-1])
        return Lstm()
    if kind == "transformer":
        _, d = _sizes(kind, quick)

        class Block(nn.Module):   # post-norm encoder block, Keras LayerNormalization epsilon 1e-3
            def __init__(self):
                super().__init__()
                self.mha = nn.MultiheadAttention(d, 4, batch_first=True)
                self.ln1, self.ln2 = nn.LayerNorm(d, eps=1e-3), nn.LayerNorm(d, eps=1e-3)
                self.ff1, self.ff2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

            def forward(self, x):
                h = self.ln1(x + self.mha(x, x, x, need_weights=False)[0])
                return self.ln2(h + self.ff2(torch.relu(self.ff1(h))))
        return Block()
    return None


def _torch(name, arrays, quick, timeit):
    import torch
    torch.set_num_threads(1)   # graphc's kernels are single-threaded unless GRAPHC_PARALLEL=1
    xs = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    if name.startswith("chain_"):
        f = _chain_fns(torch, int(name.split("_")[1]))
        with torch.no_grad():
            return timeit(lambda: f(xs[0]))
    kind, mode = name.rsplit("_", 1)
    net = _torch_net(kind, quick)
    if net is None:
        return None
    classifier = kind != "transformer"
    if mode == "infer":
        net.eval()
        with torch.no_grad():
            if classifier:
                return timeit(lambda: torch.softmax(net(xs[0]), 1))
            return timeit(lambda: net(xs[0]))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, y = xs[0], xs[1]

    def step():
        opt.zero_grad()
        out = net(x)
        loss = (-(y * torch.log_softmax(out, 1)).sum(1).mean() if classifier
                else ((out - y) ** 2).mean())
        loss.backward()
        opt.step()
        return loss
    return timeit(step)


# -- JAX ---------------------------------------------------------------------------------------------------
def _jax_model(kind, quick, jax, jnp):
    """``(params, fwd)``: the workload's parameters and ``fwd(params, x)`` (logits for the classifiers)."""
    rng = np.random.default_rng(0)

    def w(*shape):
        return jnp.asarray(rng.standard_normal(shape).astype(np.float32) * 0.05)

    def dense(p, x):
        return x @ p[0] + p[1]
    if kind == "mlp":
        params = [(w(784, 64), w(64)), (w(64, 10), w(10))]

        def fwd(p, x):
            return dense(p[1], jax.nn.relu(dense(p[0], x)))
        return params, fwd
    if kind == "cnn":
        c1, c2 = _sizes(kind, quick)
        params = [(w(3, 3, 1, c1), w(c1)), (w(3, 3, c1, c2), w(c2)), (w(c2 * 25, 10), w(10))]

        def conv_relu_pool(p, x):
            y = jax.lax.conv_general_dilated(x, p[0], (1, 1), "VALID",
                                             dimension_numbers=("NHWC", "HWIO", "NHWC"))
            y = jax.nn.relu(y + p[1])
            return jax.lax.reduce_window(y, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")

        def fwd(p, x):
            h = conv_relu_pool(p[1], conv_relu_pool(p[0], x))
            return dense(p[2], h.reshape(h.shape[0], -1))
        return params, fwd
    if kind == "lstm":
        u = _sizes(kind, quick)
        params = [(w(16, 4 * u), w(u, 4 * u), w(4 * u)), (w(u, 10), w(10))]

        def fwd(p, x):
            k, rk, b = p[0]
            xw = x @ k + b
            h = c = jnp.zeros((x.shape[0], u), x.dtype)
            for t in range(x.shape[1]):   # unrolled under jit, as graphc unrolls it
                i, f, g, o = jnp.split(xw[:, t] + h @ rk, 4, axis=1)
                c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
                h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return dense(p[1], h)
        return params, fwd
    if kind == "transformer":
        _, d = _sizes(kind, quick)
        nh, dk = 4, d // 4
        params = {"qkv": [(w(d, d), w(d)) for _ in range(3)], "o": (w(d, d), w(d)),
                  "ln": [(1.0 + w(d), w(d)) for _ in range(2)], "ff": [(w(d, 4 * d), w(4 * d)),
                                                                       (w(4 * d, d), w(d))]}

        def ln(p, x):
            mean = x.mean(-1, keepdims=True)
            var = ((x - mean) ** 2).mean(-1, keepdims=True)
            return (x - mean) * jax.lax.rsqrt(var + 1e-3) * p[0] + p[1]

        def fwd(p, x):
            b, t, _ = x.shape
            q, k, v = (dense(pp, x).reshape(b, t, nh, dk).transpose(0, 2, 1, 3) for pp in p["qkv"])
            a = jax.nn.softmax((q * (1.0 / np.sqrt(dk))) @ k.transpose(0, 1, 3, 2), axis=-1) @ v
            a = dense(p["o"], a.transpose(0, 2, 1, 3).reshape(b, t, d))
            h = ln(p["ln"][0], x + a)
            return ln(p["ln"][1], h + dense(p["ff"][1], jax.nn.relu(dense(p["ff"][0], h))))
        return params, fwd
    return None


def _jax_adam(jax, jnp, lr=1e-3, b1=0.9, b2=0.999, eps=1e-7):
    """``(init, update)`` of Adam: optax's where installed, else written in jax.numpy (Keras's form)."""
    if importlib.util.find_spec("optax") is not None:
        import optax
        opt = optax.adam(lr, b1, b2, eps)

        def update(grads, state, params):
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state
        return opt.init, update
    tm = jax.tree_util.tree_map

    def init(params):
        return (jnp.zeros((), jnp.int32), tm(jnp.zeros_like, params), tm(jnp.zeros_like, params))

    def update(grads, state, params):
        t, m, v = state
        t = t + 1
        m = tm(lambda m_, g: b1 * m_ + (1 - b1) * g, m, grads)
        v = tm(lambda v_, g: b2 * v_ + (1 - b2) * g * g, v, grads)
        alpha = lr * jnp.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        params = tm(lambda p, m_, v_: p - alpha * m_ / (jnp.sqrt(v_) + eps), params, m, v)
        return params, (t, m, v)
    return init, update


def _jax(name, arrays, quick, timeit):
    import jax
    import jax.numpy as jnp
    xs = [jnp.asarray(a) for a in arrays]
    if name.startswith("chain_"):
        f = jax.jit(_chain_fns(_JnpOps(jnp, jax), int(name.split("_")[1])))
        return timeit(lambda: f(xs[0]).block_until_ready())
    kind, mode = name.rsplit("_", 1)
    model = _jax_model(kind, quick, jax, jnp)
    if model is None:
        return None
    params, fwd = model
    classifier = kind != "transformer"
    if mode == "infer":
        f = jax.jit((lambda p, x: jax.nn.softmax(fwd(p, x), axis=1)) if classifier else fwd)
        return timeit(lambda: f(params, xs[0]).block_until_ready())

    def loss(p, x, y):
        out = fwd(p, x)
        return (-(y * jax.nn.log_softmax(out, axis=1)).sum(1).mean() if classifier
                else ((out - y) ** 2).mean())
    init, update = _jax_adam(jax, jnp)

    @jax.jit
    def step(p, s, x, y):
        value, grads = jax.value_and_grad(loss)(p, x, y)
        p, s = update(grads, s, p)
        return p, s, value
    carry = [params, init(params)]

    def run():
        p, s, value = step(carry[0], carry[1], xs[0], xs[1])
        carry[:] = [p, s]
        return value.block_until_ready()
    return timeit(run)


class _JnpOps:
    """jax.numpy with the few names the chain uses (relu, sigmoid from jax.nn)."""

    def __init__(self, jnp, jax):
        self.tanh, self.maximum, self.full_like = jnp.tanh, jnp.maximum, jnp.full_like
        self.relu, self.sigmoid = jax.nn.relu, jax.nn.sigmoid


def _keras(name, arrays, quick, timeit):
    raise _Skip("no Keras versions of the workloads yet")


class _Skip(Exception):
    """A peer that cannot run this workload; the message is the reason recorded."""


def import_peers() -> list[str]:
    """Import the installed peers (call before graphc runs: thread pools started first win)."""
    found = []
    for peer in ("torch", "jax"):
        if importlib.util.find_spec(peer) is not None:
            __import__(peer)
            found.append(peer)
    return found


def measure_peers(name: str, prog, quick: bool, budget: float) -> dict:
    """``{"torch": {"run_s"}, "jax": {...}, "keras": {"skipped": reason}}`` for ``name``: ``run_s`` for
    the installed peers that ran, ``skipped`` (with why) for the others, ``error`` for a peer that failed."""
    from .bench import _timeit
    if name not in PEER_WORKLOADS:
        return {}
    arrays = [prog.feed_values[n] for n in prog.feeds]
    out = {}
    for peer, fn in (("torch", _torch), ("jax", _jax), ("keras", _keras)):
        if importlib.util.find_spec(peer) is None:
            out[peer] = {"skipped": f"{peer} is not installed"}
            continue
        try:
            t = fn(name, arrays, quick, lambda f: _timeit(f, budget))
        except _Skip as e:
            out[peer] = {"skipped": str(e)}
            continue
        except Exception as e:  # a peer failing must not fail the benchmark
            out[peer] = {"error": f"{type(e).__name__}: {e}"}
            continue
        out[peer] = {"run_s": t} if t is not None else {"skipped": f"no {peer} version of {name}"}
    return out
