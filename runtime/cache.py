"""The on-disk kernel cache: generated kernel modules and numba's compiled code.

Every kernel (generated or hand-written) is Python *source* text. ``load_module``
writes it to ``$GRAPHC_CACHE_DIR/kernels/k_<hash>.py`` (atomically: temp file +
``os.replace``), where ``<hash>`` covers the source and the graphc / numba /
numpy / Python versions, and imports it. The functions in it are decorated
with ``numba.njit(cache=True)``, so numba stores their machine code next to
the file (``__pycache__``) and a second process loads it instead of compiling.

``ensure_compiled`` compiles (or loads) one signature eagerly, under an
``fcntl.flock`` file lock on its kernel module (concurrent numba cache writers
can crash, numba issue 4807; numba writes the entries of a kernel and of the
helpers it calls, all in one module). A corrupt, truncated or stale entry
(source file or numba cache file) is detected, deleted and rebuilt, never a
crash. ``compile_parallel`` compiles a cold plan's kernel modules on two
processes (a child process, ``compile_child.py``, fills the disk cache with some of them).

    >>> from graphc.runtime import cache
    >>> sorted(cache.cache_info())[:3]
    ['bytes', 'compiled', 'dir']
"""
from __future__ import annotations

import builtins
import contextlib
import glob
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import types

import numpy as np

from graphc import config

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX
    fcntl = None

STATS = {"compiled": 0, "loaded": 0, "modules_written": 0, "rebuilt": 0}
_MODULES: dict[str, object] = {}
_TLOCK = threading.RLock()
_LOCK_DEPTH = [0]
GENERATION = [0]       # bumped by cache_clear: in-process memos keyed on it are dropped
# prange kernels are off unless config.parallel (GRAPHC_PARALLEL=1). Measured on the 2-core dev
# box, numba's OpenMP pool made memory-bound loops 3-4x slower than serial ones and its spinning
# threads slowed the BLAS calls that follow (workqueue: parallel == serial); cached parallel
# functions also load slowly (numba issue 8085).
HEADER = ("import math\nimport numpy as np\nfrom numba import njit, prange\n\n")


def _graphc_version() -> str:
    try:
        import graphc
        return graphc.__version__
    except Exception:  # pragma: no cover
        return "?"


def versions_key() -> str:
    """What a cached kernel depends on besides its source: the versions of graphc, numba,
    llvmlite, numpy and Python, and the CPU (its name and a hash of its features)."""
    if not _VERSIONS:
        import llvmlite
        import numba
        import llvmlite.binding as ll
        cpu = f"{ll.get_host_cpu_name()}-{hashlib.sha256(ll.get_host_cpu_features().flatten().encode()).hexdigest()[:8]}"
        _VERSIONS.append(f"graphc={_graphc_version()} numba={numba.__version__} llvmlite={llvmlite.__version__} "
                         f"numpy={np.__version__} py={sys.version_info[0]}.{sys.version_info[1]} cpu={cpu} "
                         "cache-format=2")
    return _VERSIONS[0]


_VERSIONS: list = []


def cache_dir() -> str:
    """The cache folder of the configuration in force (``graphc.config``: ``$GRAPHC_CACHE_DIR``,
    else ``$XDG_CACHE_HOME/graphc`` or ``~/.cache/graphc``)."""
    return config.get().cache_dir


def _kernel_dir(root: str | None = None) -> str:
    root = root or cache_dir()
    d = os.path.join(root, "kernels")
    if not os.path.isdir(d):
        os.makedirs(root, mode=0o700, exist_ok=True)        # private: only this user reads or
        os.makedirs(d, mode=0o700, exist_ok=True)           # writes what this process will run
    return d


_USABLE: dict[str, bool] = {}       # cache folder -> whether kernels can be cached there


def usable(root: str | None = None) -> bool:
    """Whether the cache folder (default: the configuration's) can hold kernels: it is (or can be
    made) a folder of this user's that this process can write. When it cannot, a warning names it
    once and its kernels compile in memory, uncached (``load_module``)."""
    root = root or cache_dir()
    ok = _USABLE.get(root)
    if ok is None:
        why = _unusable_because(root)
        ok = _USABLE[root] = why is None
        if not ok:
            import warnings
            warnings.warn(f"graphc: the kernel cache folder {root} {why}; kernels compile in memory, "
                          "uncached, so every process compiles them again. Set GRAPHC_CACHE_DIR (or "
                          "graphc.config cache_dir) to a folder of yours, or fix that one's ownership "
                          "and permissions", CacheWarning, stacklevel=3)
    return ok


def _unusable_because(root: str) -> str | None:
    try:
        kdir = _kernel_dir(root)
    except OSError as e:
        return f"cannot be created ({e.strerror}: {e.filename})"
    for d in (root, kdir):
        st = os.stat(d)
        if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
            return f"belongs to another user (uid {st.st_uid})"
        if st.st_mode & 0o022:      # others could plant code this process would load
            return f"is writable by other users (mode {st.st_mode & 0o777:o}: chmod 700 it)"
    try:
        fd, probe = tempfile.mkstemp(dir=kdir, prefix=".probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        return f"is not writable ({e.strerror})"
    return None


class CacheWarning(RuntimeWarning):
    """The kernel cache folder cannot be used; kernels compile in memory."""


@contextlib.contextmanager
def file_lock(root: str | None = None, key: str = "", wait: bool = True):
    """Process-wide + cross-process exclusive lock on the cache folder (re-entrant in-process).
    ``key`` names one kernel module: compiles lock only their module (numba writes the cache
    entries of a kernel and of the helpers it calls, all in that module), so two processes may
    compile different modules at once (``compile_parallel``).

    Lock order, everywhere: numba's compiler lock, then the cache's thread lock, then the file
    lock. Compiling takes numba's lock, so a thread holding the cache lock and compiling must
    already hold it: two threads taking them in opposite orders deadlocked (two cold graphs
    compiled from two threads hung in 6 of 9 runs). ``wait=False``: raise ``LockBusy`` at once
    when another process holds the lock."""
    # imported here: only kernel loads, compiles and cache_clear lock, never a baseline-tier run
    from numba.core.compiler_lock import global_compiler_lock
    with global_compiler_lock, _TLOCK:
        if _LOCK_DEPTH[0] or fcntl is None or not usable(root):
            _LOCK_DEPTH[0] += 1
            try:
                yield
            finally:
                _LOCK_DEPTH[0] -= 1
            return
        path = os.path.join(_kernel_dir(root), f".lock-{key}" if key else ".lock")
        with open(path, "a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                raise LockBusy(f"the kernel cache lock {path} is held by another process") from None
            _LOCK_DEPTH[0] += 1
            try:
                yield
            finally:
                _LOCK_DEPTH[0] -= 1
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class LockBusy(Exception):
    """``file_lock(wait=False)`` found the lock held by another process."""


def _atomic_write(path: str, text: str) -> None:
    d = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def source_hash(source: str) -> str:
    return hashlib.sha256((versions_key() + "\n" + source).encode()).hexdigest()[:20]


def load_module(source: str, tag: str = "k"):
    """Import kernel module ``source`` from the cache folder (writing it first if needed)."""
    full = HEADER + source
    h = source_hash(full)
    key = cache_dir() + ":" + h
    mod = _MODULES.get(key)
    if mod is not None:
        return mod
    if not usable():                # compiled in memory: numba caches nothing without a file
        mod = types.ModuleType(f"graphc_{tag}_{h}")
        code = builtins.compile(full.replace("cache=True", "cache=False"), f"<graphc kernels {tag}_{h}>", "exec")
        sys.modules[mod.__name__] = mod
        exec(code, mod.__dict__)
        _MODULES[key] = mod
        return mod
    with file_lock():
        kdir = _kernel_dir()
        modname = f"graphc_{tag}_{h}"
        path = os.path.join(kdir, modname + ".py")
        text = f"# graphc kernel module; {versions_key()}\n# hash {h}\n" + full
        try:
            with open(path) as f:
                ok = f.read() == text
        except (OSError, UnicodeDecodeError):
            ok = False
        if not ok:
            if os.path.exists(path):  # corrupt / truncated / stale: drop it and its compiled code
                STATS["rebuilt"] += 1
                _drop_numba_files(kdir, modname)
            _atomic_write(path, text)
            STATS["modules_written"] += 1
        mod = _import_hooked(modname, path, text)
    _MODULES[key] = mod
    return mod


def _import_hooked(modname: str, path: str, text: str):
    mod = _import_file(modname, path, text)
    for obj in list(vars(mod).values()):
        if hasattr(obj, "_cache") and hasattr(obj, "overloads"):
            _hook_cache(obj, os.path.dirname(path), modname)
    return mod


def import_cached(modname: str, path: str):
    """Kernel module ``modname`` imported from its file ``path`` in the cache folder, as
    ``load_module`` imports it (for the compile child, ``compile_child.py``)."""
    mod = sys.modules.get(modname)
    if mod is not None:
        return mod
    with file_lock(), open(path) as f:
        return _import_hooked(modname, path, f.read())


def _import_file(modname: str, path: str, text: str):
    """The module of file ``path`` run from ``text``, that file's content just read and checked:
    not through the import system, which would run a ``.pyc`` written next to numba's cache files
    (one not checked, and one that, counted as a numba file, failed the digest check of
    ``_verify_entries`` in every process that writes bytecode: every kernel compiled again)."""
    spec = importlib.util.spec_from_file_location(modname, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[modname] = mod
    try:
        exec(builtins.compile(text, path, "exec", dont_inherit=True), mod.__dict__)
    except BaseException:
        sys.modules.pop(modname, None)
        raise
    return mod


def _drop_numba_files(kdir: str, modname: str, func: str | None = None) -> None:
    pat = f"{modname}.{func}-*" if func else f"{modname}.*"
    for p in glob.glob(os.path.join(kdir, "__pycache__", pat)):
        with contextlib.suppress(OSError):
            os.unlink(p)


# -- integrity: graphc's own index of numba's cache files ---------------------------------------------
# numba loads its cache entries unchecked (a flipped bit crashed every later process) and its index
# is a pickle (a planted one runs code). Each kernel module has a JSON index, written after each
# compile under the module's lock: the SHA-256 of every numba file of it ("files"), and every
# (function, signature) compiled into it ("compiled"). Before numba may read any of the files they
# must match it exactly, or they are all deleted and compiled again; ``cold`` reads "compiled".
_SEEN: dict[str, dict] = {}     # module -> {file name: (mtime_ns, size, sha256)} verified or written here


_NUMBA_SUFFIXES = (".nbi", ".nbc")     # numba's index and data files: what it reads from the cache


def _numba_files(kdir: str, modname: str) -> dict:
    """{file name: path} of numba's cache files of ``modname`` (its index and data files; not its
    temp files, nor anything else in the folder, such as a ``.pyc``, that numba never reads)."""
    pdir = os.path.join(kdir, "__pycache__")
    try:
        names = os.listdir(pdir)    # not glob: 7x slower in a folder of 350 files, per module
    except OSError:
        return {}
    prefix = modname + "."
    return {n: os.path.join(pdir, n) for n in names
            if n.startswith(prefix) and n.endswith(_NUMBA_SUFFIXES) and ".tmp." not in n}


def _digests(files: dict, modname: str) -> dict:
    """{name: sha256} of ``files``, hashing only those changed since this process last saw them."""
    seen = _SEEN.setdefault(modname, {})
    out = {}
    for name, path in files.items():
        st = os.stat(path)
        known = seen.get(name)
        if known is None or known[:2] != (st.st_mtime_ns, st.st_size):
            with open(path, "rb") as f:
                known = seen[name] = (st.st_mtime_ns, st.st_size, hashlib.sha256(f.read()).hexdigest())
        out[name] = known[2]
    return out


def _digest_file(kdir: str, modname: str) -> str:
    return os.path.join(kdir, modname + ".sha256.json")


def _verify_entries(kdir: str, modname: str) -> None:
    """Before numba reads ``modname``'s cache files: they must be exactly the recorded ones."""
    files = _numba_files(kdir, modname)
    if not files:
        return
    try:
        ok = _digests(files, modname) == _index(kdir, modname).get("files")
    except OSError:
        ok = False
    if not ok:
        _drop_numba_files(kdir, modname)
        _SEEN.pop(modname, None)
        with contextlib.suppress(OSError):
            os.unlink(_digest_file(kdir, modname))
        STATS["rebuilt"] += 1


def _index(kdir: str, modname: str) -> dict:
    try:
        with open(_digest_file(kdir, modname)) as f:
            index = json.load(f)
    except (OSError, ValueError):
        return {}
    return index if isinstance(index, dict) else {}


def _entry(disp, sig: tuple) -> str:
    return f"{disp.py_func.__qualname__}({', '.join(map(str, sig))})"


def _record_entries(kdir: str, modname: str, compiled: str) -> None:
    """After numba wrote ``modname``'s cache files for entry ``compiled``: make them private and
    record their digests and the entry."""
    files = _numba_files(kdir, modname)
    for path in files.values():
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
    entries = sorted(set(_index(kdir, modname).get("compiled", ())) | {compiled})
    _atomic_write(_digest_file(kdir, modname),
                  json.dumps({"files": _digests(files, modname), "compiled": entries}, sort_keys=True))


def ensure_compiled(disp, sig: tuple, wait: bool = True):
    """Compile (or load from the disk cache) ``disp`` for argument types ``sig``; returns ``disp``.
    ``wait=False``: raise ``LockBusy`` instead of waiting while another process holds the
    module's lock.

    A corrupt numba cache entry makes the load fail: the module's numba cache files are deleted
    and the function compiled again. The corrupt entry may be a helper's, loaded while the caller
    is typed, so even a typing error is retried once this way (a real typing error raises again,
    and costs the module's other cache entries: a recompile in later processes, in a path that
    is a graphc bug anyway).
    """
    sig = tuple(sig)
    if sig in disp.overloads:
        return disp
    modname = disp.py_func.__module__
    kdir = os.path.dirname(getattr(sys.modules.get(modname), "__file__", None) or "")
    with file_lock(key=modname, wait=wait):
        if sig in disp.overloads:
            return disp
        # a module in the cache folder (not compiled in memory): its files verified before numba
        # reads them, by the load _hook_cache gave its dispatchers, else here
        if kdir and not _hook_cache(disp, kdir, modname):
            _verify_entries(kdir, modname)
        hits = sum(disp._cache_hits.values())
        try:
            disp.compile(sig)
        except Exception:
            # corrupt cache entry: delete the module's cache files and compile from scratch
            mod = sys.modules.get(disp.py_func.__module__)
            path = getattr(mod, "__file__", None)
            if path is None:
                raise
            _drop_numba_files(os.path.dirname(path), disp.py_func.__module__)
            STATS["rebuilt"] += 1
            for obj in vars(mod).values():
                if hasattr(obj, "_cache") and hasattr(obj, "overloads"):
                    with contextlib.suppress(Exception):
                        obj._cache.flush()
            disp.compile(sig)
        if sum(disp._cache_hits.values()) > hits:
            STATS["loaded"] += 1
        else:
            STATS["compiled"] += 1
            if kdir:
                _record_entries(kdir, modname, _entry(disp, sig))
    return disp


def _hook_cache(disp, kdir: str, modname: str) -> bool:
    """Make every disk-cache load of ``disp`` verified and quick, and every save recorded, also
    those numba makes by itself when a kernel is called with argument types no binder compiled
    (the LSTM gradient's ``copy_column_blocks``, whose tuple of pieces binders do not declare):
    such a load used to read numba's files unchecked, and such a save left the module's index
    stale, so the next process deleted and compiled the whole module again.

    A load verifies the module's files (``_verify_entries``) and then skips numba's
    ``target_context.refresh()``. numba refreshes its typing and target contexts before every
    cache load: on the first, that imports and installs every registry it has (numba.np.arraymath,
    whose ``_check_blas`` imports scipy.linalg, the random, typed-container and jitclass
    modules...), measured 0.35-0.45 s of a warm start's ~0.7 s. A load needs none of it: it
    unpickles a compiled library and links it, needing only the symbols numba registers when its
    target context is created (its C helpers, libm), those of its runtime (NRT) and of the hash
    secret (``_link_ready``), and graphc's own (``blas.py``, registered on import by the module
    that uses them). A real compile still refreshes: numba's compiler pipeline does that itself.
    Where numba lacks the private methods used here, loads and saves stay numba's own (and
    ``ensure_compiled`` verifies itself). True when ``disp``'s loads are verified here."""
    c = getattr(disp, "_cache", None)
    if c is None or "load_overload" in getattr(c, "__dict__", {}):
        return c is not None
    if not hasattr(c, "_load_overload") or not hasattr(c, "_guard_against_spurious_io_errors"):
        return False
    save = c.save_overload

    def load_overload(sig, target_context):
        with file_lock(key=modname):
            _verify_entries(kdir, modname)
            _link_ready(target_context)
            with c._guard_against_spurious_io_errors():
                return c._load_overload(sig, target_context)
        return None     # the guard swallowed an error (Windows only): compile instead

    def save_overload(sig, data):
        with file_lock(key=modname):
            save(sig, data)
            _record_entries(kdir, modname, _entry(disp, sig))

    c.load_overload, c.save_overload = load_overload, save_overload
    return True


def _link_ready(target_context) -> None:
    """What numba's refresh does that a cache load needs: its runtime's and the hash secret's
    symbols registered with LLVM."""
    if not _LINK_READY:
        from numba.core.runtime import rtsys
        import numba.cpython.hashing  # noqa: F401  (registers _numba_hashsecret_* on import)
        rtsys.initialize(target_context)
        _LINK_READY.append(True)


_LINK_READY: list = []


def compile_parallel(pairs) -> int:
    """Compile the ``(dispatcher, signature)`` pairs of one plan on two processes when the cache
    holds none of them: a child process compiles some kernel modules into the disk cache while this
    process compiles the others; ``ensure_compiled`` then loads the child's. Returns how many
    modules the child compiled (0: none was started). Nothing here is required: a failure in the
    child, or a kernel it could not compile, is compiled (or reported) by ``ensure_compiled``.

    Measured (2 cores, MNIST CNN training step, empty cache): 8.3 -> 5.8-6.1 s to compile its
    18 kernels. ``compile_jobs=1`` in ``graphc.config`` (``GRAPHC_COMPILE_JOBS=1``), or a platform
    other than Linux, compiles in this process.
    """
    # Linux only (PR_SET_PDEATHSIG, fcntl locks across processes)
    if config.get().compile_jobs == 1 or not sys.platform.startswith("linux") or \
            (os.cpu_count() or 1) < 2 or fcntl is None:
        return 0
    if not usable():            # nothing a child compiles could reach this process
        return 0
    pairs = [(disp, tuple(sig)) for disp, sig in pairs if tuple(sig) not in disp.overloads]
    shares = _shares(cold(pairs), 2)
    if len(shares) < 2:
        return 0
    mine, theirs = shares
    child = _start_child(theirs)
    try:
        for disp, sig in mine:
            with contextlib.suppress(Exception):        # reported by ensure_compiled later
                ensure_compiled(disp, sig)
    finally:
        _reap(child, CHILD_TIMEOUT_S)
    return len({d.py_func.__module__ for d, _ in theirs})


def _shares(pairs, n: int, ordered: bool = False) -> list:
    """``pairs`` cut into at most ``n`` non-empty shares of whole modules (numba writes a module's
    cache entries together), balanced by count, the largest modules first; ``ordered``: each
    share keeps the order of ``pairs`` (the most wanted first), modules interleaved."""
    pairs = list(dict.fromkeys(pairs))
    modules: dict[str, list] = {}
    for pair in pairs:
        modules.setdefault(pair[0].py_func.__module__, []).append(pair)
    shares: list = [[] for _ in range(n)]
    groups = list(modules.values()) if ordered else sorted(modules.values(), key=len, reverse=True)
    for grp in groups:
        min(shares, key=len).extend(grp)
    if ordered:
        rank = {p: i for i, p in enumerate(pairs)}
        shares = [sorted(s, key=rank.__getitem__) for s in shares]
    return [s for s in shares if s]


CHILD_TIMEOUT_S = 600.0     # a compile child still running after this is killed (its work redone here)


# the compile child's command line (compile_child.py; tests replace it with one that fails)
CHILD_COMMAND = [sys.executable, "-m", "graphc.runtime.compile_child"]
# The child multiplies no matrices: one BLAS thread. numpy's import starts OpenBLAS's worker
# threads, and the idle one spins ~0.1 s of CPU, taken from the parent on a 2-core machine.
CHILD_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _start_child(pairs):
    """A new process compiling ``pairs`` into the disk cache (``compile_child.py``): started, not
    forked, so that no other thread's OpenBLAS call is cut off by ``fork()``'s handlers."""
    proc = _spawn_child()
    _send_job(proc, pairs)
    return proc


def _spawn_child(report: bool = False):
    """A compile child with no job yet: it imports numba and graphc while this process decides
    what to send it (``_send_job``). ``report``: its stdout is a pipe on which it names each
    kernel it has compiled (``_follow``)."""
    import subprocess
    env = dict(os.environ, GRAPHC_CACHE_DIR=cache_dir(), **CHILD_ENV)
    return subprocess.Popen(CHILD_COMMAND + [str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE if report else subprocess.DEVNULL, env=env)


def _send_job(proc, pairs) -> None:
    import pickle
    kernels = []
    for disp, sig in pairs:
        mod = sys.modules[disp.py_func.__module__]
        kernels.append((mod.__name__, mod.__file__, disp.py_func.__name__, tuple(sig)))
    try:
        proc.stdin.write(pickle.dumps({"kernels": kernels}))
        proc.stdin.close()
    except OSError:             # the child is gone already: its status says so
        pass


def _reap(proc, timeout: float) -> bool:
    """Wait for compile child ``proc`` (killed after ``timeout`` s); True if it exited with 0."""
    import subprocess
    try:
        return proc.wait(timeout) == 0
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


# -- background compiles (tiered execution) ----------------------------------------------------------
_BACKGROUND: dict = {}          # (id(dispatcher), signature) -> Event set once a child compiled it
_BACKGROUND_LOCK = threading.Lock()


def can_compile_in_background() -> bool:
    """Whether kernels can compile in a child process while this one runs (Linux, fcntl, two or
    more cores, and ``compile_jobs`` above 1 in the configuration in force)."""
    return config.get().compile_jobs > 1 and sys.platform.startswith("linux") and fcntl is not None \
        and (os.cpu_count() or 1) >= 2 and usable()


def cold(pairs) -> list:
    """The ``(dispatcher, signature)`` pairs the disk cache holds no entry for: a real compile,
    not a load. One read of each module's index (numba's would need an unpickle per function; a
    function cached for another signature used to count as cached, and compiled in the foreground)."""
    seen: dict[str, set] = {}
    out = []
    for d, s in pairs:
        modname = d.py_func.__module__
        path = getattr(sys.modules.get(modname), "__file__", None)
        if modname not in seen:
            seen[modname] = set(_index(os.path.dirname(path), modname).get("compiled", ())) if path else set()
        if _entry(d, s) not in seen[modname]:
            out.append((d, s))
    return out


def compile_in_background(pairs, timeout: float | None = None, on_done=None, rank=None) -> bool:
    """Compile ``pairs`` into the disk cache in a child process and wait for it (call this
    from a background thread: the wait holds no lock and hardly the GIL). Pairs that another
    thread's child is compiling already are waited for, not compiled twice. True when every
    child exited cleanly within ``timeout`` (default ``CHILD_TIMEOUT_S``); a child that hangs is
    killed. The child dies with this process (``PR_SET_PDEATHSIG``), and numba writes its cache
    files by rename, so a killed child leaves no entry a later process would trust.
    ``on_done(pair)`` is called (on this thread) as each of this call's pairs lands in the cache;
    the children compile them in the order given, or in the order ``rank(pairs)`` returns: it is
    called once the children are started, so that their start overlaps the ranking."""
    with _BACKGROUND_LOCK:
        ours = [(d, s) for d, s in pairs if (id(d), s) not in _BACKGROUND]
        done = threading.Event()
        for d, s in ours:
            _BACKGROUND[(id(d), s)] = done
        theirs = {_BACKGROUND[(id(d), s)] for d, s in pairs} - {done}
    ok = True
    if ours:
        try:
            ok = _compile_in_child(ours, CHILD_TIMEOUT_S if timeout is None else timeout, on_done, rank)
        finally:
            done.set()
    for ev in theirs:
        ev.wait()
    return ok


def _compile_in_child(pairs, timeout: float, on_done=None, rank=None) -> bool:
    """``pairs`` compiled by ``compile_jobs - 1`` children at once (a share of modules each): one
    core stays with the process, which keeps running. Measured on 2 cores (MNIST MLP training
    step, other work on the machine): one child 2.95 s to compile, two children 2.64 s, the
    reference steps meanwhile slower by the cores they lost."""
    deadline = time.monotonic() + timeout
    n = min(max(1, config.get().compile_jobs - 1), len({d.py_func.__module__ for d, _ in pairs}))
    procs: list = []
    try:
        for _ in range(n):
            procs.append(_spawn_child(report=on_done is not None))
        ranked = list(rank(pairs)) if rank is not None else pairs
        shares = _shares(ranked, n, ordered=on_done is not None or rank is not None)
        children = list(zip(procs, shares + [[]] * (n - len(shares))))
        for proc, share in children:
            _send_job(proc, share)
        if on_done is not None:
            _follow(children, deadline, on_done)
    except BaseException:       # no child outlives the failure (one waiting for its job would wait on)
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()
        for proc in procs:
            _reap(proc, 0.0)
            for pipe in (proc.stdin, proc.stdout):
                if pipe is not None:
                    pipe.close()
        raise
    return all([_reap(c, max(0.0, deadline - time.monotonic())) for c in procs])


# -- a plan bound by its compile child (tiered execution in a process without numba) -----------------
# A process that has not imported numba runs a cold plan's baseline tier at once, and its compile
# child binds the plan as well as compiling it: importing numba and binding cost the parent's first
# step ~0.19 s of the MNIST MLP's ~0.23 s, and importing it on a thread still held the GIL for as
# long. Whether a plan has been compiled is known without numba by a marker file per plan.
def entry_key(disp, sig: tuple) -> str:
    """A kernel's name across processes: its module (named by its source's hash) and entry."""
    return f"{disp.py_func.__module__}:{_entry(disp, sig)}"


def plan_key(plan_job) -> str:
    """The marker name of a plan: a digest of what binds it (graph, fetches, feeds, config), not
    its feed shapes (kernels are specialised on dtype and rank only)."""
    import pickle
    return hashlib.sha256(pickle.dumps(plan_job, protocol=5)).hexdigest()[:24]


def _plan_marker(key: str) -> str:
    return os.path.join(_kernel_dir(), "plans", key)


def plan_compiled(key: str) -> bool:
    """Whether every kernel of plan ``key`` was in this cache folder when it was last bound: a
    hint (``cache_clear`` drops the markers with the kernels; a marker that outlived a kernel
    only means the parent binds the plan itself and finds it cold, as without markers)."""
    return usable() and os.path.exists(_plan_marker(key))


def mark_plan_compiled(key: str) -> None:
    if not usable():
        return
    path = _plan_marker(key)
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        _atomic_write(path, "")


def bind_in_background(job: dict, seconds, on_todo, on_done, timeout: float | None = None) -> bool:
    """Bind and compile a plan in a compile child (``compile_child.py``, a ``"plan"`` job: the graph,
    fetches, feeds, feed shapes, schedule, configuration and marker key); this process needs no
    numba. ``seconds()`` returns the baseline's first-run times by node, sent once known, by which
    the child orders its kernels. ``on_todo(keys)`` gets the ``entry_key`` of every kernel it
    compiles, then ``on_done(key)`` each as it lands. True when the child exited cleanly within
    ``timeout`` (default ``CHILD_TIMEOUT_S``; killed after it)."""
    import pickle
    deadline = time.monotonic() + (CHILD_TIMEOUT_S if timeout is None else timeout)
    proc = _spawn_child(report=True)
    try:
        try:
            proc.stdin.write(pickle.dumps(job, protocol=5))
            proc.stdin.flush()
            proc.stdin.write(pickle.dumps(seconds(), protocol=5))
            proc.stdin.close()
        except OSError:             # the child is gone already: its status says so
            pass
        todo: list = []

        def line(text: bytes) -> None:
            if text.startswith(b"todo "):
                todo[:] = json.loads(text[5:])
                on_todo(list(todo))
            elif text.strip().isdigit() and int(text) < len(todo):
                on_done(todo[int(text)])
        _follow([(proc, line)], deadline, None)
    except BaseException:
        with contextlib.suppress(OSError):
            proc.kill()
        _reap(proc, 0.0)
        raise
    finally:
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()
    return _reap(proc, max(0.0, deadline - time.monotonic()))


def _follow(children, deadline: float, on_done) -> None:
    """Read the children's reports (one line per compiled kernel: its index in the child's share)
    and call ``on_done(pair)`` for each, until every child's output ends or ``deadline`` passes.
    A child given a callable instead of its share (``bind_in_background``) has it called with each line."""
    import selectors
    sel = selectors.DefaultSelector()
    rest = {}
    for proc, share in children:
        sel.register(proc.stdout, selectors.EVENT_READ, share)
        rest[proc.stdout] = b""
    try:
        while sel.get_map() and time.monotonic() < deadline:
            for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
                chunk = os.read(key.fd, 4096)
                if not chunk:               # the child exited (or closed its output)
                    sel.unregister(key.fileobj)
                    continue
                *lines, rest[key.fileobj] = (rest[key.fileobj] + chunk).split(b"\n")
                for line in lines:
                    if callable(key.data):
                        key.data(line)
                    elif line.strip().isdigit() and int(line) < len(key.data):
                        on_done(key.data[int(line)])
    finally:
        sel.close()
        for proc, _ in children:
            proc.stdout.close()


# -- CLI helpers -------------------------------------------------------------------------------------
def cache_info() -> dict:
    """Where the cache is and what it holds (for ``graphc info``)."""
    root = cache_dir()
    kdir = os.path.join(root, "kernels")
    mods = glob.glob(os.path.join(kdir, "graphc_*.py"))
    files = glob.glob(os.path.join(kdir, "**", "*"), recursive=True)
    size = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
    return {"dir": root, "entries": len(mods), "bytes": size, "versions": versions_key(),
            "compiled": STATS["compiled"], "loaded": STATS["loaded"], "rebuilt": STATS["rebuilt"]}


def cache_clear() -> int:
    """Delete every cached kernel; returns the number of kernel modules removed."""
    root = cache_dir()
    kdir = os.path.join(root, "kernels")
    with file_lock():
        n = len(glob.glob(os.path.join(kdir, "graphc_*.py")))
        for p in glob.glob(os.path.join(kdir, "*")) + glob.glob(os.path.join(kdir, ".tmp-*")):
            if os.path.basename(p) == ".lock":
                continue
            if os.path.isdir(p):
                shutil.rmtree(p, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(p)
    for k in [k for k in _MODULES if k.startswith(root + ":")]:
        del _MODULES[k]
    with _BACKGROUND_LOCK:
        _BACKGROUND.clear()
    GENERATION[0] += 1
    return n
