"""graphc's settings: one frozen ``Config``, read once from the environment.

Every setting has a field here and an environment variable; nothing else in graphc reads
``GRAPHC_*`` variables. ``get()`` is the configuration in force: the environment's, unless a
block overrides it with ``override(**changes)`` (a context manager, local to the thread or
asyncio task, like tinygrad's ``Context``). A ``Session`` keeps the configuration it was created
with (or the one passed as ``Session(config=...)``) and its compiled programs are bound under it,
so a later override does not change a session that already exists.

    >>> import graphc as gc
    >>> gc.config.get().strict_kernels in (True, False)
    True
    >>> with gc.config.override(driver="numba", threads=1) as cfg:
    ...     cfg.driver, gc.config.get().threads
    ('numba', 1)
    >>> gc.config.override(driver="llvm").__enter__()
    Traceback (most recent call last):
    ...
    ValueError: graphc config: driver must be one of 'python', 'numba' (GRAPHC_DRIVER), got 'llvm'

| field            | variable               | default                     | what it does |
|------------------|------------------------|-----------------------------|--------------|
| executor         | GRAPHC_EXECUTOR        | compiled                    | a Session's default executor: ``compiled`` or ``reference`` (numpy interpreter) |
| cache_dir        | GRAPHC_CACHE_DIR       | $XDG_CACHE_HOME/graphc or ~/.cache/graphc | the compiled-kernel disk cache |
| fast_math        | GRAPHC_FAST_MATH       | 1                           | float32 exp/log/tanh/sigmoid as vectorizable polynomials (0: libm calls) |
| parallel         | GRAPHC_PARALLEL        | 0                           | ``prange`` kernels (numba's thread pool; slower on 2 cores) |
| threads          | GRAPHC_THREADS         | min(2, cpu count)           | threads a batch-split kernel uses (1: the calling thread only) |
| driver           | GRAPHC_DRIVER          | python                      | ``numba``: runs of kernel calls compiled into one jitted segment |
| compile_jobs     | GRAPHC_COMPILE_JOBS    | 2                           | processes compiling a cold plan's kernels (1: this process only) |
| strict_kernels   | GRAPHC_STRICT_KERNELS  | 0                           | a kernel that fails and would fall back to the numpy reference raises instead of warning |
| tiered           | GRAPHC_TIERED          | 1                           | a plan whose kernels are not compiled yet runs its numpy references while they compile in a child process (0: wait for them) |
| shape_sets       | GRAPHC_SHAPE_SETS      | 64                          | bound plans (buffers, driver) a compiled program keeps, one per set of feed shapes; the least recently run is dropped (re-planned if it comes back, never recompiled) |
| data_dir         | GRAPHC_DATA            | (none)                      | where ``graphc.datasets`` looks for data files given no path |
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

__all__ = ["Config", "get", "override", "use", "replace", "from_env", "FIELDS"]


def _default_cache_dir(env: Mapping[str, str]) -> str:
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "graphc")


def _default_threads() -> int:
    return min(2, os.cpu_count() or 1)


def _flag(text: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return True
    if t in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"expected 0/1, true/false, yes/no or on/off, got {text!r}")


def _count(text: str) -> int:
    return int(text.strip() or 0)


@dataclass(frozen=True)
class _Field:
    name: str
    var: str
    parse: Callable[[str], object]
    choices: tuple = ()


# field name -> how its environment variable is read
FIELDS = {f.name: f for f in (
    _Field("executor", "GRAPHC_EXECUTOR", str.strip, ("compiled", "reference")),
    _Field("cache_dir", "GRAPHC_CACHE_DIR", str.strip),
    _Field("fast_math", "GRAPHC_FAST_MATH", _flag),
    _Field("parallel", "GRAPHC_PARALLEL", _flag),
    _Field("threads", "GRAPHC_THREADS", _count),
    _Field("driver", "GRAPHC_DRIVER", lambda s: s.strip().lower(), ("python", "numba")),
    _Field("compile_jobs", "GRAPHC_COMPILE_JOBS", _count),
    _Field("strict_kernels", "GRAPHC_STRICT_KERNELS", _flag),
    _Field("tiered", "GRAPHC_TIERED", _flag),
    _Field("shape_sets", "GRAPHC_SHAPE_SETS", _count),
    _Field("data_dir", "GRAPHC_DATA", str.strip),
)}


@dataclass(frozen=True)
class Config:
    """All of graphc's settings (see the module docstring's table). Frozen: make a changed copy
    with ``dataclasses.replace`` or ``override``.

        >>> from graphc.config import Config
        >>> Config(threads=1).threads
        1
    """
    executor: str = "compiled"
    cache_dir: str = field(default_factory=lambda: _default_cache_dir(os.environ))
    fast_math: bool = True
    parallel: bool = False
    threads: int = field(default_factory=_default_threads)
    driver: str = "python"
    compile_jobs: int = 2
    strict_kernels: bool = False
    tiered: bool = True
    shape_sets: int = 64
    data_dir: str | None = None

    def __post_init__(self):
        for f in FIELDS.values():
            value = getattr(self, f.name)
            if f.choices and value not in f.choices:
                raise ValueError(f"graphc config: {f.name} must be one of "
                                 f"{', '.join(map(repr, f.choices))} ({f.var}), got {value!r}")
        for name in ("threads", "compile_jobs", "shape_sets"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"graphc config: {name} must be a positive int "
                                 f"({FIELDS[name].var}), got {value!r}")
        object.__setattr__(self, "cache_dir", os.path.abspath(os.path.expanduser(self.cache_dir)))

    def describe(self) -> str:
        """One line per setting, with its environment variable (``graphc info`` prints this)."""
        return "\n".join(f"{f.name:<15}{getattr(self, f.name)!s:<28}({f.var})" for f in FIELDS.values())


def from_env(env: Mapping[str, str] | None = None) -> Config:
    """The configuration the environment ``env`` (default ``os.environ``) asks for; an unset or
    empty variable keeps the default. A malformed value raises naming the variable.

        >>> from_env({"GRAPHC_THREADS": "1", "GRAPHC_DRIVER": "numba"}).driver
        'numba'
    """
    env = os.environ if env is None else env
    kw: dict = {}
    for f in FIELDS.values():
        text = env.get(f.var)
        if text is None or not text.strip():
            continue
        try:
            kw[f.name] = f.parse(text)
        except ValueError as e:
            raise ValueError(f"graphc config: {f.var}={text!r}: {e}") from None
    if "threads" in kw and kw["threads"] == 0:      # 0: the default
        del kw["threads"]
    if "cache_dir" not in kw:
        kw["cache_dir"] = _default_cache_dir(env)
    return Config(**kw)


_FROM_ENV: list = []        # the environment's Config, read on first use (then fixed)
_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("graphc_config", default=None)


def get() -> Config:
    """The configuration in force: the innermost ``override``/``use`` block's, else the
    environment's (read once, on first use)."""
    cfg = _ACTIVE.get()
    if cfg is not None:
        return cfg
    if not _FROM_ENV:
        _FROM_ENV.append(from_env())
    return _FROM_ENV[0]


@contextlib.contextmanager
def use(cfg: Config):
    """Make ``cfg`` the configuration in force inside the block (the runtime binds a session's
    programs this way)."""
    if not isinstance(cfg, Config):
        raise TypeError(f"graphc.config.use: expected a graphc.config.Config, got {type(cfg).__name__}")
    token = _ACTIVE.set(cfg)
    try:
        yield cfg
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def override(**changes):
    """A context manager: the configuration in force with ``changes`` applied, inside the block.

        >>> import graphc as gc
        >>> with gc.config.override(executor="reference"):
        ...     gc.Session().executor
        'reference'
    """
    with use(replace(get(), **changes)) as cfg:
        yield cfg


def replace(cfg: Config, **changes) -> Config:
    """``cfg`` with ``changes`` (checked: an unknown setting names the known ones)."""
    unknown = sorted(set(changes) - set(FIELDS))
    if unknown:
        raise TypeError(f"graphc config: unknown setting(s) {', '.join(unknown)}; "
                        f"settings are {', '.join(FIELDS)}")
    return dataclasses.replace(cfg, **changes)
