"""graphc.config: one frozen Config from the environment, override() blocks, and where it reaches."""
import os
import subprocess
import sys
import threading
import warnings

import numpy as np
import pytest

import graphc as gc
from graphc import config, runtime
from graphc.errors import KernelFallbackError, KernelFallbackWarning
from graphc.runtime import kernels

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_from_env_reads_every_variable_and_names_a_bad_one():
    env = {"GRAPHC_EXECUTOR": "reference", "GRAPHC_CACHE_DIR": "/tmp/x", "GRAPHC_FAST_MATH": "0",
           "GRAPHC_PARALLEL": "yes", "GRAPHC_THREADS": "3", "GRAPHC_DRIVER": "NUMBA",
           "GRAPHC_COMPILE_JOBS": "1", "GRAPHC_STRICT_KERNELS": "true", "GRAPHC_TIERED": "off",
           "GRAPHC_SHAPE_SETS": "8", "GRAPHC_DATA": "/data"}
    cfg = config.from_env(env)
    assert (cfg.executor, cfg.cache_dir, cfg.fast_math, cfg.parallel, cfg.threads, cfg.driver,
            cfg.compile_jobs, cfg.strict_kernels, cfg.tiered, cfg.shape_sets, cfg.data_dir) == \
        ("reference", "/tmp/x", False, True, 3, "numba", 1, True, False, 8, "/data")
    assert {f.var for f in config.FIELDS.values()} == set(env)
    # unset or empty: the defaults (threads 0 also means the default)
    d = config.from_env({"GRAPHC_THREADS": "0", "XDG_CACHE_HOME": "/xdg"})
    assert d.threads == min(2, os.cpu_count() or 1) and d.cache_dir == "/xdg/graphc"
    assert d.driver == "python" and d.fast_math and not d.parallel and not d.strict_kernels and d.tiered
    with pytest.raises(ValueError, match="GRAPHC_FAST_MATH='maybe'"):
        config.from_env({"GRAPHC_FAST_MATH": "maybe"})
    with pytest.raises(ValueError, match="driver must be one of 'python', 'numba' \\(GRAPHC_DRIVER\\)"):
        config.from_env({"GRAPHC_DRIVER": "llvm"})
    with pytest.raises(ValueError, match="threads must be a positive int"):
        config.Config(threads=-1)


def test_override_nests_restores_and_stays_in_its_thread():
    base = config.get()
    seen = {}
    with config.override(threads=1) as outer:
        assert config.get() is outer and outer.threads == 1
        with config.override(driver="numba"):
            assert (config.get().threads, config.get().driver) == (1, "numba")
        assert config.get().driver == base.driver
        t = threading.Thread(target=lambda: seen.setdefault("threads", config.get().threads))
        t.start()
        t.join()
    assert config.get() == base
    assert seen["threads"] == base.threads          # another thread sees the environment's config
    with pytest.raises(TypeError, match="unknown setting\\(s\\) thread; settings are executor"):
        with config.override(thread=1):
            pass
    with pytest.raises(ValueError):                  # a frozen record: no silent global change
        with config.override(executor="fast"):
            pass
    with pytest.raises(Exception):
        base.threads = 4


def test_a_session_keeps_the_config_it_was_made_with():
    x = gc.placeholder("float32", (None, 3), name="x")
    y = gc.reduce_sum(gc.exp(x) * 2.0, axis=1) + gc.reduce_max(x, axis=1)
    with config.override(driver="numba"):
        jitted = gc.Session(optimize=False)      # unfused: enough kernel calls for a segment
    plain = gc.Session(optimize=False)
    assert jitted.config.driver == "numba" and plain.config.driver == config.get().driver
    xv = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    a, b = jitted.run(y, {x: xv}), plain.run(y, {x: xv})      # bound outside the override
    np.testing.assert_allclose(a, b, rtol=1e-6)
    segs = [p.__self__.bound.segments for s in (jitted, plain) for p in s._programs.values()]
    assert segs[0] >= 1 and segs[1] == 0
    assert gc.Session(config={"executor": "reference"}).executor == "reference"
    assert gc.Session(config={"threads": 1}, executor="reference").config.threads == 1
    with pytest.raises(TypeError, match="config must be a graphc.config.Config or a dict"):
        gc.Session(config="fast")
    with pytest.raises(TypeError, match="unknown setting"):
        gc.Session(config={"thread": 1})


def test_session_rejects_run_options_it_cannot_honour():
    sess = gc.Session()
    c = gc.constant(1.0)
    with pytest.raises(TypeError, match="options= and run_metadata= are not supported"):
        sess.run(c, options=object())
    with pytest.raises(TypeError, match="accept_options=True is not supported"):
        sess.make_callable(c, accept_options=True)


def _graph():
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 4), name="x")
        y = gc.tanh(x) + 1.0
    return g, x, y


def test_a_failing_kernel_raises_when_strict_and_warns_once_otherwise(monkeypatch):
    def broken(ctx):
        raise RuntimeError("kernel bug")
    monkeypatch.setitem(kernels.KERNELS, "tanh", broken)
    monkeypatch.setattr(kernels, "FALLBACK_REASONS", {})
    g, x, y = _graph()
    with config.override(strict_kernels=True), pytest.raises(KernelFallbackError) as e:
        gc.Session(graph=g, optimize=False).run(y, {x: np.zeros((2, 4), np.float32)})
    assert "tanh (node" in str(e.value) and "(2, 4) float32" in str(e.value) and "kernel bug" in str(e.value)
    with config.override(strict_kernels=False), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        for _ in range(2):          # a second plan: no second warning
            g, x, y = _graph()
            out = gc.Session(graph=g, optimize=False).run(y, {x: np.ones((2, 4), np.float32)})
            np.testing.assert_allclose(out, np.tanh(1.0) + 1.0, rtol=1e-6)
    fallbacks = [m for m in w if issubclass(m.category, KernelFallbackWarning)]
    assert len(fallbacks) == 1 and "tanh" in str(fallbacks[0].message)
    assert kernels.FALLBACK_REASONS == {("tanh", "binding"): "RuntimeError: kernel bug"}


def test_compile_takes_a_config_and_a_cache_dir(tmp_path):
    g, x, y = _graph()
    exe = runtime.compile(g, [y.node], [x.node], cache_dir=str(tmp_path), config=config.Config(threads=1))
    assert exe.config.cache_dir == str(tmp_path) and exe.config.threads == 1
    assert "GRAPHC_CACHE_DIR" not in os.environ or os.environ["GRAPHC_CACHE_DIR"] != str(tmp_path)
    out = exe.run({x.node: np.zeros((3, 4), np.float32)}, {}, 0)[0][0]
    np.testing.assert_array_equal(out, np.ones((3, 4), np.float32))
    assert os.listdir(tmp_path / "kernels")             # the kernels went to that folder


def test_only_the_config_module_reads_graphc_variables():
    # every GRAPHC_* setting is read in graphc/config.py; other modules take config.get()
    readers = []
    for top in ("graphc", "passes", "runtime"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                path = os.path.join(dirpath, f)
                if not f.endswith(".py") or path == os.path.join(ROOT, "graphc", "config.py"):
                    continue
                text = open(path, encoding="utf-8").read()
                for pat in ('environ.get("GRAPHC_', "environ.get('GRAPHC_", 'environ["GRAPHC_', 'getenv("GRAPHC_'):
                    if pat in text:
                        readers.append(os.path.relpath(path, ROOT))
    assert readers == []


def test_the_environment_reaches_a_new_process():
    code = "import graphc as gc; c = gc.config.get(); print(c.threads, c.driver, c.strict_kernels)"
    env = dict(os.environ, GRAPHC_THREADS="1", GRAPHC_DRIVER="numba", GRAPHC_STRICT_KERNELS="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "numba", "False"]
