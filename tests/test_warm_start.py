"""Warm start: a new process with a filled kernel cache, from its start to the first result.

What keeps it short is tested here in new processes: ``import graphc`` leaves numba (~0.2 s) to the
first compiled run, and ``examples/bench_warm_start.py`` (the MLP forward) runs warm, loading every
kernel. The kernel cache's side (no numba registries on a load, no .pyc) is in test_runtime_cache.py.
"""
import json
import os
import subprocess
import sys

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")

HEAVY = ("numba", "llvmlite", "scipy", "graphc.runtime", "graphc.passes")


def test_import_graphc_leaves_numba_to_the_first_compiled_run():
    # numba (with llvmlite and the scipy it imports) is ~0.2 s of a ~0.5 s warm start: a program
    # that only builds graphs, or runs them on the reference interpreter, never pays it
    code = ("import json, sys\nimport graphc\nfrom graphc.layers import Dense\nfrom graphc.models import Sequential\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} "
            f"or m.startswith({HEAVY!r}))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().splitlines()[-1]) == []


def test_the_warm_start_benchmark_runs_warm(tmp_path, capsys):
    sys.path.insert(0, EXAMPLES)
    try:
        import bench_warm_start
    finally:
        sys.path.remove(EXAMPLES)
    (runs,) = bench_warm_start.main(["--runs", "1", "--cache-root", str(tmp_path)])
    out = capsys.readouterr().out
    assert "first result" in out and "not warm" not in out, out
    (r,) = runs
    assert r["stats"]["compiled"] == 0 and r["stats"]["rebuilt"] == 0 and r["stats"]["loaded"] >= 3
    assert 0 < r["interp"] < r["import"] < r["first"] < r["exit"]
    assert len(r["argmax"]) == 32
