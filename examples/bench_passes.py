"""Compile-time scaling of the optimization pipeline (graphc.passes).

Builds a chain graph of N nodes (blocks of x*1, a foldable constant sum, tanh,
a double transpose, matmul with a constant and relu: every pass has work), runs
``optimize`` and prints the time per node for N = 2,000 and N = 20,000. The passes
are linear or n log n, so the per-node time of the big graph should stay within
a small factor (the target is 5x) of the small one.

    python examples/bench_passes.py [--sizes 2000 20000] [--repeat 3]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import graphc as gc
from graphc.passes import optimize

BLOCK_NODES = 12


def chain_graph(n_nodes: int, width: int = 8):
    """A chain of ``n_nodes`` (about) nodes; returns (graph, fetch node, fed node)."""
    g = gc.Graph()
    w = np.eye(width, dtype=np.float32)
    with g.as_default():
        x = gc.placeholder("float32", (None, width), name="x")
        h = x
        for _ in range(max(1, n_nodes // BLOCK_NODES)):
            a = h * gc.constant(1.0)                                   # simplify: x*1
            c = gc.constant(2.0) + gc.constant(3.0)                    # fold
            b = gc.tanh(a) + c                                         # elementwise fusion
            t = gc.transpose(gc.transpose(b))                          # simplify: transpose pair
            h = gc.relu(gc.matmul(t, gc.constant(w)))                  # CSE (equal W) + epilogue
    return g, h.node, x.node


def measure(n_nodes: int, repeat: int = 3) -> tuple[int, float]:
    g, y, x = chain_graph(n_nodes)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        optimize(g, [y], feeds=[x])
        best = min(best, time.perf_counter() - t0)
    return g.num_nodes(), best


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=(2000, 20000))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    measure(200, 1)  # warm up imports and caches
    small_n, small_t = measure(args.sizes[0], args.repeat)
    big_n, big_t = measure(args.sizes[1], max(1, args.repeat - 1))
    ps, pb = small_t / small_n, big_t / big_n
    ratio = pb / ps
    print(f"{small_n:>7} nodes: {small_t:8.3f} s  ({ps * 1e6:7.1f} us/node)")
    print(f"{big_n:>7} nodes: {big_t:8.3f} s  ({pb * 1e6:7.1f} us/node)")
    print(f"per-node time ratio (big/small): {ratio:.2f}  (target <= 5)")
    return {"small_nodes": small_n, "small_s": small_t, "big_nodes": big_n, "big_s": big_t,
            "ratio": ratio}


if __name__ == "__main__":
    main()
