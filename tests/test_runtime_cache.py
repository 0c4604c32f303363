"""The disk kernel cache: warm starts in a new process, corrupt entries rebuilt, concurrent writers."""
import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from kernel_checks import FAILING_COMPILE_CHILD as _FAILING_CHILD

SCRIPT = r"""
import json, sys
import numpy as np
import graphc as gc
from graphc import runtime
g = gc.Graph()
with g.as_default():
    x = gc.placeholder("float32", (None, 3), name="x")
    y = gc.nn.softmax(gc.tanh(x) * 2.0)
exe = runtime.compile(g, [y.node], [x.node])
out, _ = exe.run({x.node: np.arange(6, dtype=np.float32).reshape(2, 3)}, {}, 0)
print(json.dumps({"stats": runtime.STATS, "out": out[0].tolist()}))
"""


def _run(cache_dir, n=1, prefix="", **env_vars):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir), **env_vars)
    procs = [subprocess.Popen([sys.executable, "-c", prefix + SCRIPT], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(n)]
    res = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        lines = out.strip().splitlines()
        r = json.loads(lines[-1])
        if isinstance(r, list):     # a probe's atexit line follows the result
            r = dict(json.loads(lines[-2]), loaded_modules=r)
        res.append(r)
    return res if n > 1 else res[0]


def _expected():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    z = np.tanh(x) * 2.0
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_warm_start_corruption_and_concurrency(tmp_path):
    # two cold processes at once: the lock keeps the cache consistent, both succeed
    first = _run(tmp_path, n=2)
    for r in first:
        np.testing.assert_allclose(r["out"], _expected(), rtol=1e-5)
    assert sum(r["stats"]["compiled"] for r in first) >= 2
    # warm start: nothing compiled, everything loaded
    warm = _run(tmp_path)
    assert warm["stats"]["compiled"] == 0 and warm["stats"]["loaded"] >= 2
    np.testing.assert_allclose(warm["out"], _expected(), rtol=1e-5)
    # corrupt a kernel module (truncated) and a numba cache file: rebuilt, never a crash
    kdir = tmp_path / "kernels"
    mods = sorted(glob.glob(str(kdir / "graphc_*.py")))
    assert mods
    with open(mods[0], "r+") as f:
        f.truncate(40)
    for p in glob.glob(str(kdir / "__pycache__" / "*.nbi"))[:1] + \
            glob.glob(str(kdir / "__pycache__" / "*.nbc"))[:1]:
        with open(p, "wb") as f:
            f.write(b"\x80garbage")
    again = _run(tmp_path)
    np.testing.assert_allclose(again["out"], _expected(), rtol=1e-5)
    assert again["stats"]["rebuilt"] + again["stats"]["compiled"] >= 1
    # and the repaired cache is warm again
    assert _run(tmp_path)["stats"]["compiled"] == 0


def test_a_warm_start_that_writes_bytecode_loads_everything(tmp_path):
    # the kernel modules were imported through the import system, which wrote a .pyc into the
    # folder of numba's cache files; counted as one of them it failed the digest check, so every
    # process that writes bytecode (Python's default) deleted the module's entries and compiled
    # them again. Kernel modules now run their checked text: no .pyc, warm from the second process.
    bytecode = {"PYTHONDONTWRITEBYTECODE": ""}
    first = _run(tmp_path, **bytecode)
    assert first["stats"]["compiled"] >= 2
    for _ in range(2):
        warm = _run(tmp_path, **bytecode)
        assert warm["stats"]["compiled"] == 0 and warm["stats"]["rebuilt"] == 0, warm["stats"]
        assert warm["stats"]["loaded"] >= 2
        np.testing.assert_allclose(warm["out"], _expected(), rtol=1e-5)
    assert not glob.glob(str(tmp_path / "kernels" / "**" / "*.pyc"), recursive=True)


def test_a_warm_start_loads_without_numbas_registries(tmp_path):
    # numba refreshes its typing and target contexts before a cache load, which imports every
    # registry it has (numba.np.arraymath's _check_blas imports scipy.linalg): 0.35-0.45 s of a
    # ~0.7 s warm start. graphc's loads skip it; a real compile still refreshes.
    probe = ("import atexit, sys\natexit.register(lambda: print(json.dumps(sorted(m for m in "
             "('numba.np.arraymath', 'numba.np.linalg', 'scipy.linalg') if m in sys.modules))))\n")
    first = _run(tmp_path, prefix="import json\n" + probe)
    assert first["stats"]["compiled"] >= 2
    assert "numba.np.arraymath" in first["loaded_modules"]      # compiling refreshed numba
    warm = _run(tmp_path, prefix="import json\n" + probe)
    assert warm["stats"]["compiled"] == 0 and warm["stats"]["loaded"] >= 2
    np.testing.assert_allclose(warm["out"], _expected(), rtol=1e-5)
    assert warm["loaded_modules"] == []


def test_cache_info_and_clear(tmp_path, configure):
    from graphc import runtime
    from graphc.runtime import cache
    configure(cache_dir=str(tmp_path))
    mod = cache.load_module("def f(x):\n    return x + 1\n", "t")
    assert mod.f(1) == 2
    info = runtime.cache_info()
    assert info["dir"] == str(tmp_path) and info["entries"] == 1 and info["bytes"] > 0
    assert "numba=" in info["versions"]
    assert runtime.cache_clear() == 1
    assert runtime.cache_info()["entries"] == 0




def test_a_cold_plan_compiles_on_two_processes(tmp_path):
    # the plan's kernel modules (tanh, * 2, softmax): with an empty cache a forked child compiles
    # some into the disk cache and this process loads them; GRAPHC_COMPILE_JOBS=1 and a failing
    # child leave all the compiling to this process; the results are the same
    one = _run(tmp_path / "one", GRAPHC_COMPILE_JOBS="1")
    total = one["stats"]["compiled"]
    assert total >= 2 and one["stats"]["loaded"] == 0
    two = _run(tmp_path / "two")
    assert two["stats"]["loaded"] >= 1 and two["stats"]["compiled"] + two["stats"]["loaded"] == total
    failed = _run(tmp_path / "failed", prefix=_FAILING_CHILD)
    assert failed["stats"]["compiled"] == total and failed["stats"]["loaded"] == 0
    for r in (one, two, failed):
        np.testing.assert_allclose(r["out"], _expected(), rtol=1e-5)
    warm = _run(tmp_path / "two")
    assert warm["stats"]["compiled"] == 0 and warm["stats"]["loaded"] == total


def test_a_stuck_compile_child_is_killed(monkeypatch):
    # _reap gives up on a child after its timeout: it is killed and reaped, and the caller goes on
    import time

    from graphc.runtime import cache
    monkeypatch.setattr(cache, "CHILD_COMMAND", [sys.executable, "-c", "import time; time.sleep(30)"])
    child = cache._start_child([])
    t = time.monotonic()
    assert cache._reap(child, 0.2) is False
    assert time.monotonic() - t < 5 and child.returncode is not None     # killed and reaped


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc (Linux)")
def test_a_compile_child_starts_no_blas_threads(monkeypatch):
    # the child multiplies no matrices: numpy's import in it starts no OpenBLAS workers (their spin
    # took ~0.1 s of CPU from the parent's training steps on 2 cores)
    from graphc.runtime import cache
    probe = "import os, numpy; print(len(os.listdir('/proc/self/task')))"
    monkeypatch.setattr(cache, "CHILD_COMMAND", [sys.executable, "-c", probe])
    out, _ = cache._spawn_child(report=True).communicate(timeout=120)
    assert out.split() == [b"1"]


def test_a_compile_child_does_not_stop_another_threads_blas():
    # fork() runs OpenBLAS's atfork handler, which stops its worker threads: a GEMM running on
    # them in another thread waited forever (this loop hung at once with forked children). The
    # compile child is a new process: the GEMMs go on while children start and exit
    script = textwrap.dedent("""
        import threading, time, numpy as np
        from graphc.runtime import cache
        cache.CHILD_COMMAND = [__import__("sys").executable, "-c", "import sys; sys.stdin.buffer.read()"]
        a = np.ones((256, 256), np.float32); out = np.empty_like(a)
        started = []
        def spawner():
            for _ in range(20):
                assert cache._reap(cache._start_child([]), 30)
                started.append(1)
        t = threading.Thread(target=spawner); t.start()
        n = 0
        while t.is_alive():
            np.matmul(a, a, out=out); n += 1
        t.join()
        print(len(started), n > 0, float(out[0, 0]))
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OPENBLAS_NUM_THREADS="2"))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["20", "True", "256.0"]


def _unusable_folders(tmp_path):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    dangling = tmp_path / "dangling"
    os.symlink(tmp_path / "gone" / "deeper", dangling)
    (tmp_path / "gone").write_text("a file where the link's folder should be")
    theirs = tmp_path / "theirs"
    (theirs / "kernels").mkdir(parents=True)
    if os.geteuid() == 0:
        os.chown(theirs / "kernels", 65534, 65534)      # owned by someone else
        why = "belongs to another user"
    else:
        os.chmod(theirs / "kernels", 0o500)              # read-only
        why = "is not writable"
    return [(a_file, "cannot be created"), (dangling, "cannot be created"), (theirs, why)]


def test_an_unusable_cache_folder_warns_once_and_compiles_in_memory(tmp_path, configure):
    # a file, a dangling link, a folder of another user: kernels still compile (strict_kernels is
    # on in the suite: no numpy fallback), in memory, with one warning naming the folder
    import warnings
    import graphc as gc
    from graphc.runtime.cache import CacheWarning
    for folder, why in _unusable_folders(tmp_path):
        configure(cache_dir=str(folder), tiered=True)
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            for k in range(2):
                g = gc.Graph()
                with g.as_default():
                    x = gc.placeholder("float32", (None, 3), name="x")
                    y = gc.nn.softmax(gc.tanh(x) * (2.0 + k))
                sess = gc.Session(graph=g)
                out = sess.run(y, {x: np.ones((2, 3), np.float32)})
                np.testing.assert_allclose(out, np.full((2, 3), 1 / 3, np.float32), rtol=1e-6)
                exe = next(iter(sess._programs.values())).__self__
                assert exe.tier_swaps == 0 and not exe._compiling       # nothing to tier through
                assert any(not s.call.name.startswith("ref:") for s in exe.plan.steps if s.kind == "call")
        msgs = [str(m.message) for m in w if issubclass(m.category, CacheWarning)]
        assert len(msgs) == 1 and str(folder) in msgs[0] and why in msgs[0] and "GRAPHC_CACHE_DIR" in msgs[0]
    assert (tmp_path / "a_file").read_text() == "not a folder"
    assert not os.listdir(tmp_path / "theirs" / "kernels")


def test_every_cached_entry_is_verified_before_numba_reads_it(tmp_path):
    # a flipped bit in a compiled entry crashed every later process; a planted index (numba's is a
    # pickle) ran code on load. Both now fail graphc's digest check: the module's entries are
    # deleted and compiled again, and the planted pickle is never unpickled.
    first = _run(tmp_path)
    np.testing.assert_allclose(first["out"], _expected(), rtol=1e-5)
    pyc = tmp_path / "kernels" / "__pycache__"
    data = sorted(glob.glob(str(pyc / "*.nbc")))
    index = sorted(glob.glob(str(pyc / "*.nbi")))
    assert data and index and all(os.stat(p).st_mode & 0o777 == 0o600 for p in data + index)
    blob = bytearray(open(data[0], "rb").read())
    blob[len(blob) // 2] ^= 0x10
    open(data[0], "wb").write(bytes(blob))
    marker = tmp_path / "planted-code-ran"

    class Plant:
        def __reduce__(self):
            return (open, (str(marker), "w"))
    import pickle
    with open(index[-1], "wb") as f:
        f.write(pickle.dumps(Plant()))
    again = _run(tmp_path)
    np.testing.assert_allclose(again["out"], _expected(), rtol=1e-5)
    assert again["stats"]["rebuilt"] >= 2 and again["stats"]["compiled"] >= 1
    assert not marker.exists()
    assert _run(tmp_path)["stats"]["compiled"] == 0         # verified and warm again


def test_the_cache_folder_is_private_and_one_others_can_write_is_refused(tmp_path, configure):
    import stat
    import warnings
    import graphc as gc
    from graphc.runtime.cache import CacheWarning
    fresh = tmp_path / "fresh"
    configure(cache_dir=str(fresh))
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 3), name="x")
        y = gc.exp(x) * 3.0
    gc.Session(graph=g).run(y, {x: np.ones((1, 3), np.float32)})
    for d in (fresh, fresh / "kernels"):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o700
    shared = tmp_path / "shared"
    (shared / "kernels").mkdir(parents=True)
    os.chmod(shared / "kernels", 0o777)
    configure(cache_dir=str(shared))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = gc.Session(graph=g).run(y, {x: np.ones((1, 3), np.float32)})
    np.testing.assert_allclose(out, np.exp(1.0) * 3.0, rtol=1e-6)
    msgs = [str(m.message) for m in w if issubclass(m.category, CacheWarning)]
    assert len(msgs) == 1 and "is writable by other users" in msgs[0]
    assert os.listdir(shared / "kernels") == []


def test_the_cache_key_names_llvmlite_and_the_cpu():
    import llvmlite
    from graphc.runtime.cache import versions_key
    key = versions_key()
    assert f"llvmlite={llvmlite.__version__}" in key and "cpu=" in key


FOUR = r"""
import sys, numpy as np, graphc as gc
k = int(sys.argv[1])
x = gc.placeholder("float32", (None, 5), name="x")
f = [gc.tanh, gc.exp][k % 2]                       # two processes per graph
y = gc.nn.softmax(f(x) * 1.5)
gx, = gc.gradients(gc.reduce_sum(y * y), [x])
v = np.linspace(-1, 1, 20, dtype=np.float32).reshape(4, 5)
got = gc.Session().run([y, gx], {x: v})
want = gc.Session(executor="reference").run([y, gx], {x: v})
print(all(np.allclose(a, b, rtol=1e-5, atol=1e-6) for a, b in zip(got, want)))
"""


def test_four_processes_share_an_empty_cache(tmp_path):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(tmp_path / "c"), GRAPHC_TIERED="0")
    procs = [subprocess.Popen([sys.executable, "-c", FOUR, str(k)], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for k in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert out.strip() == "True"


FUNCTION_SHAPES = '''
def deco(*args, **kwargs):
    return args[0] if args and callable(args[0]) else deco


@deco
@deco(parallel=False,
      contract=True)
def decorated(x):
    return (x +
            1)
    # a comment after the last statement


def loop_then_pass(n):
    for i in range(n):
        continue
    pass
# a comment at the top level


def return_then_comment(x):
    return x

    # an indented comment after a blank line


def nested(x):
    def inner(y):
        return [
            y,
        ]
    return inner(x)


def docstring_only():
    """one
line
    and more"""


def one_liner(x): return x
'''


def test_kernel_family_sources_are_inspects(tmp_path, monkeypatch):
    # a warm start builds a family's source to find its module: function_source takes the lines
    # from the code object's positions instead of tokenizing each function; the text is the same
    import importlib
    import inspect
    import pkgutil

    import graphc.runtime as rt
    from graphc.runtime import cache, families
    mods = [importlib.import_module(f"graphc.runtime.{m.name}") for m in pkgutil.iter_modules(rt.__path__)]
    fams = {id(v): v for m in mods for v in vars(m).values() if isinstance(v, families.KernelFamily)}
    fns = [fn for fam in fams.values() for fn, _ in fam.funcs]
    assert len(fams) >= 5 and len(fns) >= 30
    assert [families.function_source(fn) for fn in fns] == [inspect.getsource(fn) for fn in fns]
    (tmp_path / "shapes_mod.py").write_text(FUNCTION_SHAPES)
    monkeypatch.syspath_prepend(str(tmp_path))
    shapes = importlib.import_module("shapes_mod")
    for name in ("decorated", "loop_then_pass", "return_then_comment", "nested", "docstring_only",
                 "one_liner"):
        fn = getattr(shapes, name)
        assert families.function_source(fn) == inspect.getsource(fn), name


LAZY = r"""
import json, sys
import numpy as np
from graphc.runtime import cache, kernels_array
k = kernels_array.fam.get("copy_column_blocks")     # called with types no binder compiled for it
out = np.zeros((3, 5), np.float32)
k(out, np.array([0, 2]), np.ones((3, 2), np.float32), np.full((3, 3), 2, np.float32))
print(json.dumps({"stats": cache.STATS, "out": out.tolist(), "arraymath": "numba.np.arraymath" in sys.modules}))
"""


def _lazy(cache_dir):
    env = dict(os.environ, GRAPHC_CACHE_DIR=str(cache_dir))
    p = subprocess.run([sys.executable, "-c", LAZY], env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout.strip().splitlines()[-1])
    assert r["out"] == [[1, 1, 2, 2, 2]] * 3
    return r


def test_a_kernel_numba_compiles_on_call_is_recorded_and_verified(tmp_path):
    # numba compiles a signature no binder declared when the kernel is first called: its cache
    # entry is recorded in the module's index like any other, and checked before numba loads it
    _lazy(tmp_path)
    (index,) = glob.glob(str(tmp_path / "kernels" / "graphc_array_*.sha256.json"))
    assert any(e.startswith("copy_column_blocks(") for e in json.load(open(index))["compiled"])
    warm = _lazy(tmp_path)
    assert warm["stats"]["rebuilt"] == 0 and not warm["arraymath"]     # loaded, quickly
    (data,) = glob.glob(str(tmp_path / "kernels" / "__pycache__" / "graphc_array_*.copy_column_blocks-*.nbc"))
    blob = bytearray(open(data, "rb").read())
    blob[len(blob) // 2] ^= 0x10
    open(data, "wb").write(bytes(blob))
    assert _lazy(tmp_path)["stats"]["rebuilt"] == 1         # caught, deleted, compiled again
    assert _lazy(tmp_path)["stats"]["rebuilt"] == 0
