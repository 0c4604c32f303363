"""``graphc bench``: compile and run times of the built-in workloads (``graphc.tools.workloads``).

Each workload is measured in fresh processes. With tiered execution on and an empty
``GRAPHC_CACHE_DIR``, the first result comes from the numpy reference tier while the kernels compile
in the background (``first_step_s``). Then, tiered execution off, two processes share a new, empty
cache folder: the first compiles with a cold kernel cache (``compile_cold_s``), the second with the
cache it filled (``compile_warm_s``) and then measures the passes, the steady-state run, the reference
interpreter and the memory plan. ``first_step_s`` and ``compile_*_s`` are ``runtime.compile`` plus
the first run (planning, kernel compilation or cache loading, driver generation), after the passes.

    >>> rec = measure("chain_4", quick=True)          # doctest: +SKIP
    >>> sorted(rec)[:4]                                # doctest: +SKIP
    ['compile_cold_s', 'compile_warm_s', 'description', 'kernel_calls']

Command line (what ``graphc bench`` runs; ``--worker`` is internal):

    python -m graphc.tools.bench --worker chain_4 --mode warm --quick
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

FIELDS = ("workload", "nodes_raw", "nodes_optimized", "passes_s", "passes", "first_step_s", "compile_cold_s",
          "compile_warm_s", "run_s", "reference_run_s", "peak_bytes")


def _timeit(fn, budget: float, min_n: int = 3, max_n: int = 200) -> float:
    """Median seconds of ``fn()`` over at least ``min_n`` calls and about ``budget`` seconds."""
    fn()
    ts: list[float] = []
    start = time.perf_counter()
    while len(ts) < min_n or (time.perf_counter() - start < budget and len(ts) < max_n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _close(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind == "f":
        return bool(np.allclose(a, b, rtol=1e-3, atol=1e-4, equal_nan=True))
    return bool(np.array_equal(a, b))


def worker(name: str, mode: str, quick: bool) -> dict:
    """Measure one workload in this process (``mode`` first or cold: compile and first run only;
    warm: everything else; peers: the PyTorch/JAX versions only)."""
    from graphc import runtime
    from graphc.interpreter import evaluate
    from graphc.passes import optimize

    from .workloads import build, load_target
    if mode == "peers" and name.endswith(".onnx"):
        return {"peers": {}}   # peers run the built-in workloads only
    if mode == "peers":   # a process of its own: thread pools of one framework slow the other down
        from .peers import import_peers, measure_peers
        import_peers()     # before graphc runs anything (torch after numba's pool: 500x slower)
        return {"peers": measure_peers(name, build(name, quick), quick, 0.2 if quick else 1.0)}
    prog = load_target(name) if name.endswith(".onnx") else build(name, quick)
    rec: dict = {"workload": name}
    best = None
    for _ in range(1 if mode in ("first", "cold") else (2 if quick else 3)):
        g, rep = optimize(prog.graph, prog.fetches, feeds=prog.feeds)
        if best is None or rep.seconds < best[1].seconds:
            best = (g, rep)
    g, rep = best
    feeds, state = prog.feed_values, prog.state
    t = time.perf_counter()
    exe = runtime.compile(g, rep.fetches, prog.feeds)
    out, _ = exe.run(feeds, state, 0)
    rec["compile_s"] = time.perf_counter() - t
    rec["kernels_compiled"] = runtime.STATS["compiled"]
    rec["kernels_loaded"] = runtime.STATS["loaded"]
    if mode in ("first", "cold"):
        return rec
    rec["description"] = prog.description
    rec["nodes_raw"] = len(prog.needed())
    rec["nodes_optimized"] = g.num_nodes()
    rec["passes_s"] = rep.seconds
    rec["passes"] = {p.name: p.seconds for p in rep.passes}
    budget = 0.2 if quick else 1.0
    rec["run_s"] = _timeit(lambda: exe.run(feeds, state, 0), budget)
    ref = evaluate(g, rep.fetches, feeds, state, run_key=0, check=False)
    rec["reference_run_s"] = _timeit(lambda: evaluate(g, rep.fetches, feeds, state, run_key=0, check=False),
                                     budget, max_n=50)
    rec["matches_reference"] = all(_close(a, b) for a, b in zip(out, ref.values) if a is not None)
    plan = exe.plan
    rec["peak_bytes"] = int(plan.peak_bytes) if plan is not None else None
    rec["kernel_calls"] = len(plan.kernel_calls) if plan is not None else None
    return rec


def measure(name: str, quick: bool = False, peers: bool = False, timeout: float = 600) -> dict:
    """One benchmark record: a cold-cache process, then a warm-cache process (see the module doc)."""
    cache, first_cache = tempfile.mkdtemp(prefix="graphc-bench-"), tempfile.mkdtemp(prefix="graphc-bench-")
    rec: dict = {"workload": name, "quick": quick}
    try:
        for mode in ("first", "cold", "warm") + (("peers",) if peers else ()):
            cmd = [sys.executable, "-m", "graphc.tools.bench", "--worker", name, "--mode", mode]
            cmd += ["--quick"] if quick else []
            env = dict(os.environ, GRAPHC_CACHE_DIR=first_cache if mode == "first" else cache,
                       GRAPHC_TIERED="1" if mode == "first" else "0")
            p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            if p.returncode != 0:
                lines = [x for x in p.stderr.strip().splitlines() if x.strip()]
                rec["error"] = f"{mode} worker failed: {lines[-1] if lines else f'exit {p.returncode}'}"
                return rec
            r = json.loads(p.stdout.strip().splitlines()[-1])
            if mode == "peers":
                for v in r["peers"].values():
                    if "run_s" in v:
                        v["ratio"] = v["run_s"] / rec["run_s"]
                rec["peers"] = r["peers"]
                continue
            if mode == "first":
                rec["first_step_s"] = r["compile_s"]
                continue
            rec[f"compile_{mode}_s"] = r.pop("compile_s")
            rec[f"kernels_compiled_{mode}"] = r.pop("kernels_compiled")
            rec[f"kernels_loaded_{mode}"] = r.pop("kernels_loaded")
            rec.update(r)
    except subprocess.TimeoutExpired:
        rec["error"] = f"timed out after {timeout:.0f} s"
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        shutil.rmtree(first_cache, ignore_errors=True)
    return {k: rec[k] for k in ("workload", "description", "quick") if k in rec} | \
        {k: v for k, v in rec.items() if k not in ("workload", "description", "quick")}


def _fmt(v, scale=1.0, digits=2):
    return "-" if v is None else f"{v * scale:.{digits}f}"


def table(records: list[dict]) -> str:
    """The printed table (times in ms except compile times in s)."""
    peer_names = sorted({k for r in records for k, v in r.get("peers", {}).items() if "skipped" not in v})
    notes = sorted({f"{k} skipped: {v['skipped']}" if "skipped" in v else
                    f"{k} failed on {r['workload']}: {v.get('error')}"
                    for r in records for k, v in r.get("peers", {}).items() if "run_s" not in v})
    head = ["workload", "nodes", "passes ms", "first s", "cold s", "warm s", "run ms", "ref ms", "ref/run", "peak KB"]
    head += [f"{p} ms (x)" for p in peer_names]
    rows = []
    for r in records:
        if "error" in r:
            rows.append([r["workload"], "error: " + r["error"]])
            continue
        ratio = r["reference_run_s"] / r["run_s"] if r.get("run_s") else None
        row = [r["workload"] + ("" if r.get("matches_reference", True) else " (MISMATCH)"),
               f"{r['nodes_raw']}->{r['nodes_optimized']}", _fmt(r["passes_s"], 1e3, 1),
               _fmt(r.get("first_step_s")), _fmt(r["compile_cold_s"]), _fmt(r["compile_warm_s"]), _fmt(r["run_s"], 1e3, 3),
               _fmt(r["reference_run_s"], 1e3, 3), _fmt(ratio, 1, 1) + "x",
               _fmt(r["peak_bytes"] / 1024 if r.get("peak_bytes") is not None else None, 1, 0)]
        for p in peer_names:
            pr = r.get("peers", {}).get(p)
            row.append(("error" if pr and "error" in pr else "-") if not pr or "run_s" not in pr else
                       f"{pr['run_s'] * 1e3:.3f} ({pr['ratio']:.2f}x)")
        rows.append(row)
    widths = [max(len(str(x[i])) for x in [head] + [r for r in rows if len(r) == len(head)])
              for i in range(len(head))]
    lines = ["  ".join(h.rjust(w) if i else h.ljust(w) for i, (h, w) in enumerate(zip(head, widths)))]
    for r in rows:
        if len(r) != len(head):
            lines.append(f"{r[0].ljust(widths[0])}  {r[1]}")
        else:
            lines.append("  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                                   for i, (x, w) in enumerate(zip(r, widths))))
    if peer_names:
        lines.append("peer columns: the peer's steady-state time per run and (x) = peer time / graphc time "
                     "(> 1: graphc is faster)")
    lines += [f"peer {n}" for n in notes]   # frameworks not installed, peers that failed
    return "\n".join(lines)


def run(names: list[str], quick: bool = False, peers: bool = False, json_path: str | None = None,
        out=None) -> list[dict]:
    """Measure ``names`` in order, print each row as it finishes and the table at the end.

        >>> recs = run(["chain_4"], quick=True)           # doctest: +SKIP
    """
    from .workloads import WORKLOADS, TargetError
    out = out or sys.stdout
    bad = [n for n in names if n not in WORKLOADS and not (n.endswith(".onnx") and os.path.isfile(n))]
    if bad:
        raise TargetError(f"unknown workload {bad[0]!r} (not an existing .onnx file either); known: "
                          f"{', '.join(WORKLOADS)}")
    import numba
    print(f"graphc bench{' --quick' if quick else ''}: {len(names)} workloads, numpy {np.__version__}, "
          f"numba {numba.__version__}, {os.cpu_count()} cores", file=out, flush=True)
    records = []
    for n in names:
        t = time.perf_counter()
        records.append(measure(n, quick, peers))
        print(f"  {n}: {time.perf_counter() - t:.1f} s", file=out, flush=True)
    print(table(records), file=out, flush=True)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(records, f, indent=1)
        print(f"wrote {len(records)} records to {json_path}", file=out)
    return records


def _main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m graphc.tools.bench")
    ap.add_argument("--worker", required=True)
    ap.add_argument("--mode", choices=["first", "cold", "warm", "peers"], default="warm")
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    rec = worker(a.worker, a.mode, a.quick)
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(_main())
