"""Warm start: a new process with a filled kernel cache, from its start to the first result.

    python examples/bench_warm_start.py [--runs 9]
    python examples/bench_warm_start.py --python /path/to/base-venv/bin/python --python .venv/bin/python

The program is the MNIST MLP's forward pass (Keras API: ``Sequential([Dense(128, relu),
Dense(10, softmax)])`` on 784 inputs, ``predict`` on one batch of 32 images of the installed
MNIST test set). Each ``--python`` (default: this interpreter) gets its own kernel cache folder
(``--cache-root``, default a temporary folder), filled first by one process run with
``GRAPHC_TIERED=0`` (a tiered process exits before its background compile has filled the
cache). Then ``--runs`` fresh processes per interpreter, the interpreters taking turns run by run
(machine noise hits all alike), each reporting:

    import   spawn -> ``import graphc`` (and the layers/models modules) done
    first    spawn -> first result of ``predict`` (what a short-lived script or a server's
             first request waits for)
    exit     spawn -> process gone (atexit handlers, thread pools)

Times are measured from the parent's clock just before the spawn (``time.monotonic`` is
system-wide on Linux and macOS). Printed: median, min and max per interpreter, and the runs
(``--json`` writes them). Children run with ``PYTHONDONTWRITEBYTECODE`` removed from their
environment (an installed package has its ``.pyc`` files) unless ``--no-bytecode``; the first
child of each interpreter writes them. A child that compiled a kernel (not a load) is flagged:
the cache was not warm.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = r"""
import json, sys, time
t_start = time.monotonic()
import numpy as np
import graphc as gc
from graphc.layers import Dense
from graphc.models import Sequential
t_import = time.monotonic()
from graphc.datasets import mnist
(x, _), _ = mnist.load_data()
x = x[:32].reshape(32, 784).astype("float32") / 255.0
gc.utils.set_random_seed(0)
model = Sequential([Dense(128, activation="relu", input_dim=784), Dense(10, activation="softmax")])
y = model.predict(x, batch_size=32)
t_first = time.monotonic()
from graphc.runtime import cache
print(json.dumps({"start": t_start, "import": t_import, "first": t_first, "stats": dict(cache.STATS),
                  "checksum": float(np.asarray(y, np.float64).sum()), "argmax": np.argmax(y, 1).tolist()}))
sys.stdout.flush()
"""


def run_child(python: str, env: dict) -> dict:
    t0 = time.monotonic()
    p = subprocess.run([python, "-c", CHILD], env=env, capture_output=True, text=True)
    t_exit = time.monotonic()
    if p.returncode != 0:
        raise SystemExit(f"{python} failed ({p.returncode}):\n{p.stderr}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    return {"interp": r["start"] - t0, "import": r["import"] - t0, "first": r["first"] - t0,
            "exit": t_exit - t0, "stats": r["stats"], "checksum": r["checksum"], "argmax": r["argmax"]}


def summary(values) -> str:
    return f"{statistics.median(values):6.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--python", action="append", help="interpreter to measure (repeatable; default: this one)")
    ap.add_argument("--runs", type=int, default=9, help="fresh processes per interpreter (default 9)")
    ap.add_argument("--cache-root", default=None, help="folder for the per-interpreter kernel caches")
    ap.add_argument("--no-bytecode", action="store_true", help="keep PYTHONDONTWRITEBYTECODE as it is")
    ap.add_argument("--json", default=None, help="write every run's numbers to this file")
    args = ap.parse_args(argv)
    pythons = args.python or [sys.executable]
    root = args.cache_root or tempfile.mkdtemp(prefix="graphc-warm-")
    envs = []
    for k, py in enumerate(pythons):
        env = dict(os.environ, GRAPHC_CACHE_DIR=os.path.join(root, f"cache{k}"))
        if not args.no_bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
        fill = run_child(py, dict(env, GRAPHC_TIERED="0"))      # fills the cache (and writes .pyc)
        print(f"[{k}] {py}: filled {env['GRAPHC_CACHE_DIR']} ({fill['stats']['compiled']} kernels "
              f"compiled, first result {fill['first']:.2f} s)", flush=True)
        envs.append(env)
    runs: list[list[dict]] = [[] for _ in pythons]
    for i in range(args.runs):
        order = range(len(pythons)) if i % 2 == 0 else reversed(range(len(pythons)))
        for k in order:
            r = run_child(pythons[k], envs[k])
            if r["stats"]["compiled"] or r["stats"]["rebuilt"]:
                print(f"  [{k}] run {i}: not warm: {r['stats']}", flush=True)
            runs[k].append(r)
    print(f"\nMLP forward, warm kernel cache, {args.runs} fresh processes each, seconds from spawn: "
          "median (min-max)")
    print(f"{'':4}{'interpreter up':>22}{'import graphc':>22}{'first result':>22}{'exit':>22}")
    for k, py in enumerate(pythons):
        rs = runs[k]
        print(f"[{k}] " + "".join(f"{summary([r[key] for r in rs]):>22}"
                                  for key in ("interp", "import", "first", "exit")) + f"   {py}")
    sums = {round(r["checksum"], 4) for rs in runs for r in rs}
    same = all(r["argmax"] == runs[0][0]["argmax"] for rs in runs for r in rs)
    print(f"checksums {sorted(sums)}; predicted classes identical across runs: {same}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pythons": pythons, "runs": runs}, f, indent=1)
    return runs


if __name__ == "__main__":
    main()
