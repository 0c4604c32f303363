"""A newcomer's first hour: the installed MNIST test set, what a wheel carries, the README's main job
in a bare clone, and ``import graphc`` from the folder that holds a clone named ``graphc``.

The clone tests run the *installed* graphc (``pip install -e .`` as in the README and CI) in
subprocesses, on a ``git clone`` of this checkout's HEAD in a temporary folder with nothing beside
it (no ``../shared``)."""
import base64
import doctest
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest

import graphc
from graphc.datasets import mnist

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# the original files as published with MNIST (NOTICE)
MNIST_MD5 = {"t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}


def _git(*args, cwd=ROOT):
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def _is_git_checkout():
    if shutil.which("git") is None:
        return False
    try:
        return os.path.realpath(_git("rev-parse", "--show-toplevel").strip()) == os.path.realpath(ROOT)
    except subprocess.CalledProcessError:
        return False


needs_git = pytest.mark.skipif(not _is_git_checkout(), reason="needs git and a git checkout")


def _env_without_data():
    env = dict(os.environ)
    env.pop("GRAPHC_DATA", None)
    env.pop("PYTHONPATH", None)       # the installed graphc only
    return env


# --- the installed MNIST test set -------------------------------------------------------------

def test_installed_mnist_test_set_is_the_original_files():
    assert sorted(f for f in os.listdir(mnist.PACKAGE_DATA) if f.endswith(".gz")) == sorted(MNIST_MD5)
    for name, md5 in MNIST_MD5.items():
        with open(os.path.join(mnist.PACKAGE_DATA, name), "rb") as f:
            assert hashlib.md5(f.read()).hexdigest() == md5, name


def test_load_data_without_arguments_returns_the_installed_test_set_split(configure):
    configure(data_dir=None)
    (x, y), (xt, yt) = mnist.load_data()
    assert x.shape == (8000, 28, 28) and xt.shape == (2000, 28, 28)
    assert x.dtype == np.uint8 and y.dtype == np.uint8 and y.shape == (8000,) and yt.shape == (2000,)
    assert y[:5].tolist() == [7, 2, 1, 0, 4]        # the first labels of MNIST's test set
    assert set(y.tolist()) == set(yt.tolist()) == set(range(10))
    # the same images as reading the t10k pair by path, in order: first 8,000 / last 2,000
    (x2, y2), (xt2, yt2) = mnist.load_data(mnist.PACKAGE_DATA)
    assert np.array_equal(x, x2) and np.array_equal(yt, yt2)


def test_given_path_or_environment_without_files_is_an_error_not_a_fallback(tmp_path, configure):
    configure(data_dir=None)
    with pytest.raises(FileNotFoundError) as e:
        mnist.load_data(tmp_path)
    msg = str(e.value)
    assert "t10k-images-idx3-ubyte.gz" in msg and str(tmp_path) in msg and "path=" in msg
    configure(data_dir=str(tmp_path))          # as GRAPHC_DATA sets it
    with pytest.raises(FileNotFoundError, match=r"from \$GRAPHC_DATA"):
        mnist.load_data()


def test_missing_installed_copy_says_how_to_get_data(tmp_path, monkeypatch, configure):
    configure(data_dir=None)
    monkeypatch.setattr(mnist, "PACKAGE_DATA", str(tmp_path / "gone"))
    with pytest.raises(FileNotFoundError, match="reinstall graphc.*GRAPHC_DATA"):
        mnist.load_data()


@needs_git
def test_only_the_test_set_is_tracked():
    tracked = _git("ls-files", "graphc/datasets/data").split()
    assert sorted(tracked) == ["graphc/datasets/data/.gitignore",
                               "graphc/datasets/data/t10k-images-idx3-ubyte.gz",
                               "graphc/datasets/data/t10k-labels-idx1-ubyte.gz"]
    assert not [p for p in _git("ls-files").split() if re.search(r"train-(images|labels)", p)]


# --- packaging --------------------------------------------------------------------------------

def test_wheel_carries_the_test_set_and_notice(tmp_path):
    """``pip wheel --no-deps .``: a non-editable install gets the data, the credits, no train-*.
    Built from a copy of the working tree (setuptools writes build/ and *.egg-info in the source)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis"))
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = [p for p in os.listdir(out) if p.endswith(".whl")]
    with zipfile.ZipFile(out / wheel) as z:
        names = z.namelist()
        for name, md5 in MNIST_MD5.items():
            assert hashlib.md5(z.read(f"graphc/datasets/data/{name}")).hexdigest() == md5
        notice = [n for n in names if n.endswith(".dist-info/licenses/NOTICE")]
        assert notice and b"CC BY-SA 3.0" in z.read(notice[0])
        meta = z.read([n for n in names if n.endswith(".dist-info/METADATA")][0]).decode()
    assert "License-Expression: Apache-2.0 AND CC-BY-SA-3.0" in meta
    assert not [n for n in names if "train-" in n or n.startswith(("tests/", "examples/"))]
    assert "graphc/passes/__init__.py" in names and "graphc/runtime/__init__.py" in names


def _backend():
    spec = importlib.util.spec_from_file_location(
        "graphc_build", os.path.join(ROOT, "build_backend", "graphc_build.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_build_backend_moves_the_editable_finder_first(tmp_path):
    pytest.importorskip("setuptools")
    backend = _backend()
    result = doctest.testmod(backend)
    assert result.attempted >= 2 and result.failed == 0
    pth = b"import __editable___graphc_0_1_0_finder; __editable___graphc_0_1_0_finder.install()"
    record = "__editable__.graphc-0.1.0.pth,sha256=old,81\ngraphc-0.1.0.dist-info/RECORD,,\n"
    wheel = tmp_path / "graphc-0.1.0-0.editable-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("__editable__.graphc-0.1.0.pth", pth)
        z.writestr("__editable___graphc_0_1_0_finder.py", "def install(): pass\n")
        z.writestr("graphc-0.1.0.dist-info/RECORD", record)
    assert backend._rewrite_editable_wheel(str(wheel))
    with zipfile.ZipFile(wheel) as z:
        new = z.read("__editable__.graphc-0.1.0.pth")
        rec = z.read("graphc-0.1.0.dist-info/RECORD").decode()
        assert z.read("__editable___graphc_0_1_0_finder.py") == b"def install(): pass\n"
    assert new.startswith(b"import sys, __editable___graphc_0_1_0_finder as _f;")
    digest = base64.urlsafe_b64encode(hashlib.sha256(new).digest()).rstrip(b"=").decode()
    assert f"__editable__.graphc-0.1.0.pth,sha256={digest},{len(new)}" in rec
    assert os.listdir(tmp_path) == [wheel.name]                     # no temporary file left
    assert not backend._rewrite_editable_wheel(str(wheel))          # already rewritten: unchanged

    # the line as site.py runs it (exec in a function): the appended finder ends up first
    class Finder:
        @staticmethod
        def find_spec(*a):
            return None
    fake = type(sys)("__editable___graphc_0_1_0_finder")
    fake.install = lambda: sys.meta_path.append(Finder)
    saved = list(sys.meta_path)
    sys.modules[fake.__name__] = fake
    try:
        (lambda line: exec(line))(new.decode())
        assert sys.meta_path[0] is Finder and sys.meta_path[1:] == saved
    finally:
        sys.meta_path[:] = saved
        del sys.modules[fake.__name__]


# --- a bare clone -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bare_clone(tmp_path_factory):
    """``home/graphc``: a clone of this checkout's HEAD, with nothing else in ``home``."""
    home = tmp_path_factory.mktemp("home")
    clone = home / "graphc"
    _git("clone", "--quiet", "--no-hardlinks", "--no-checkout", ROOT, str(clone))
    _git("checkout", "--quiet", _git("rev-parse", "HEAD").strip(), cwd=clone)
    assert sorted(os.listdir(home)) == ["graphc"]
    return clone


@needs_git
def test_readme_main_job_runs_in_a_bare_clone(bare_clone):
    """The README's first command after the install: ``python examples/mnist_mlp.py``, from the
    clone's root, with no data given (one epoch instead of three)."""
    proc = subprocess.run([sys.executable, "examples/mnist_mlp.py", "--epochs", "1", "--verbose", "0"],
                          cwd=bare_clone, env=_env_without_data(), capture_output=True, text=True,
                          timeout=120)      # ~2 s with a filled kernel cache, ~5 s without
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"held-out accuracy: ([0-9.]+) \(loss [0-9.]+\) on 2000 samples", proc.stdout)
    assert m, proc.stdout
    assert float(m.group(1)) > 0.8, proc.stdout


@needs_git
def test_import_graphc_from_the_folder_holding_a_clone_named_graphc(bare_clone):
    """From ``home`` (which holds ``graphc/``, the clone's root, no ``__init__.py``), ``import graphc``
    is the installed package, not the clone's root as an empty namespace package."""
    code = "import graphc; print(graphc.Graph); print(graphc.__file__)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=bare_clone.parent, env=_env_without_data(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "<class 'graphc.ir.Graph'>" in proc.stdout
    assert proc.stdout.splitlines()[1] == graphc.__file__       # the same package as this process
