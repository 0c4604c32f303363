"""Elementwise benchmarks (issue #4): fused kernels vs numpy eager, measured in this run.

    python examples/bench_elementwise.py [--quick] [--json]

On 8M float32 (2M with --quick), best of 15:

1. three chains: arithmetic ``max((x*1.5 + 0.25 relu)^2 - 1.5, 0.25)``; tanh/exp
   ``t = tanh(x*1.5 + 0.25); max(t * exp(-2t) - 0.125, -0.25)``; and all four transcendentals
   ``tanh(x*1.5 + 0.25) * exp(-0.5*x*x) + sigmoid(x) + log(1 + x*x)``: the compiled graph
   (``Executable.run``, which allocates the fetched output), the kernel alone into a preallocated
   output, and numpy eager (one ufunc call per op, as the graph is written);
2. each of exp, tanh, sigmoid, log alone: the vectorized float32 polynomial kernel, the scalar
   libm kernel (``GRAPHC_FAST_MATH=0``: what graphc generated before) and the numpy ufunc;
   with the maximum error against numpy in ulp;
3. the copy bandwidth (``np.copyto`` of the same bytes) as the memory-bound floor.
"""
from __future__ import annotations

import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import graphc as gc  # noqa: E402
from graphc import runtime  # noqa: E402
from graphc.passes import optimize  # noqa: E402
from runtime import codegen  # noqa: E402

F = np.float32


def best(fn, repeat=15):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return min(ts)


def compiled(build, x):
    g = gc.Graph()
    with g.as_default():
        p = gc.placeholder("float32", (None,), name="x")
        y = build(p)
    g, rep = optimize(g, [y.node], feeds=[p.node])
    (y,) = rep.fetches
    exe = runtime.compile(g, [y], [p.node])
    feeds = {p.node: x}
    exe.run(feeds, {}, 0)
    (step,) = [s for s in exe.plan.kernel_calls]
    disp, _ = step.call.steps[0]
    ins = [x if i == p.node else g.attrs(i)["value"].reshape(1) for i in g.inputs(y)]
    out = np.empty_like(x)
    return exe, feeds, (lambda: disp(*ins, out)), out


def arith(t, np_mode=False):
    m = np if np_mode else gc
    t = t * F(1.5)
    t = t + F(0.25)
    t = m.maximum(t, F(0)) if np_mode else gc.relu(t)
    t = t * t
    t = t - F(1.5)
    return m.maximum(t, F(0.25))


def tanh_exp(t, np_mode=False):
    m = np if np_mode else gc
    t = m.tanh(t * F(1.5) + F(0.25))
    t = t * m.exp(t * F(-2.0))
    t = t - F(0.125)
    return m.maximum(t, F(-0.25))


def transc(x, np_mode=False):
    if np_mode:
        sig = np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x))))
        return np.tanh(x * F(1.5) + F(0.25)) * np.exp(F(-0.5) * x * x) + sig + np.log(F(1) + x * x)
    return gc.tanh(x * F(1.5) + F(0.25)) * gc.exp(F(-0.5) * x * x) + gc.sigmoid(x) + gc.log(F(1) + x * x)


def transc_eager(x):
    # numpy eager as a user writes it (sigmoid as scipy.special.expit would: 1 / (1 + exp(-x)))
    return np.tanh(x * F(1.5) + F(0.25)) * np.exp(F(-0.5) * x * x) + F(1) / (F(1) + np.exp(-x)) \
        + np.log(F(1) + x * x)


def chains(x, results):
    for name, build, eager, ref in (
            ("arithmetic", arith, lambda: arith(x, True), lambda: arith(x, True)),
            ("tanh/exp", tanh_exp, lambda: tanh_exp(x, True), lambda: tanh_exp(x, True)),
            ("tanh/exp/sigmoid/log", transc, lambda: transc_eager(x), lambda: transc(x, True))):
        exe, feeds, kernel, out = compiled(build, x)
        got = exe.run(feeds, {}, 0)[0][0]
        with np.errstate(all="ignore"):
            want = ref()
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6)
        t_run = best(lambda: exe.run(feeds, {}, 0))
        t_k = best(kernel)
        t_np = best(eager)
        results[name] = {"run_ms": t_run * 1e3, "kernel_ms": t_k * 1e3, "numpy_ms": t_np * 1e3,
                         "speedup_run": t_np / t_run, "speedup_kernel": t_np / t_k}
        print(f"[{name} chain, {x.size / 1e6:.0f}M float32] Executable.run {t_run * 1e3:.2f} ms, "
              f"kernel alone {t_k * 1e3:.2f} ms, numpy eager {t_np * 1e3:.2f} ms  ->  "
              f"{t_np / t_run:.1f}x (run), {t_np / t_k:.1f}x (kernel)")


def ulps(got, want):
    got, want = got.astype(np.float64), want.astype(np.float64)
    fin = np.isfinite(want) & (want != 0)
    spacing = np.spacing(np.abs(want[fin]).astype(F)).astype(np.float64)
    return float(np.max(np.abs(got[fin] - want[fin]) / spacing))


def single_ops(x, results):
    for op in ("exp", "tanh", "sigmoid", "log"):
        xi = np.abs(x) * F(10) if op == "log" else x * F(10)
        row = {}
        for fast in (True, False):
            prog = ((op, (0,), ()),)
            with gc.config.override(fast_math=fast):
                src_kernel = codegen.ew_kernel(prog, [np.dtype(F)], np.dtype(F), ((False,),), False)
            out = np.empty_like(xi)
            src_kernel(xi, out)
            row["fast_ms" if fast else "libm_ms"] = best(lambda: src_kernel(xi, out)) * 1e3
            if fast:
                with np.errstate(all="ignore"):
                    ref = gc.ops.registry.get_op(op).reference([xi], {})
                row["max_ulp"] = ulps(out, ref)
        ufunc = {"exp": np.exp, "tanh": np.tanh, "log": np.log,
                 "sigmoid": lambda v: F(1) / (F(1) + np.exp(-v))}[op]
        with np.errstate(all="ignore"):
            row["numpy_ms"] = best(lambda: ufunc(xi)) * 1e3
        results[op] = row
        print(f"  {op:8s} fast {row['fast_ms']:6.2f} ms   libm {row['libm_ms']:6.2f} ms   "
              f"numpy {row['numpy_ms']:6.2f} ms   max error {row['max_ulp']:.1f} ulp")


def main():
    quick = "--quick" in sys.argv
    n = (2 if quick else 8) * 1_000_000
    x = np.random.default_rng(0).standard_normal(n).astype(F)
    results = {"n": n}
    chains(x, results)
    print(f"[single ops, {n / 1e6:.0f}M float32 in [-10, 10] (log: [0, 10]), kernel into a preallocated output]")
    single_ops(x, results)
    out = np.empty_like(x)
    t_copy = best(lambda: np.copyto(out, x))
    results["copy_ms"] = t_copy * 1e3
    print(f"[floor] np.copyto of {x.nbytes / 1e6:.0f} MB: {t_copy * 1e3:.2f} ms")
    if "--json" in sys.argv:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
