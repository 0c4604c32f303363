"""One builder for the Python source graphc generates: plan drivers, segments, kernels, callables.

``Source`` collects lines (with ``block`` for indentation) and binds the objects they name as
globals of the compiled code: ``bind(obj)`` interns an object under one name, ``value(v)`` a
scalar by value, ``array(a)`` a fixed array view by its memory, shape and strides, so a driver
refers to each thing once. ``text()`` is the source of a module (kernels written to the disk
cache); ``function(name)`` compiles the lines with their globals and returns the function, its
source kept on ``.source`` and registered with ``linecache``, so tracebacks and debuggers show
the generated lines.

    >>> from graphc.runtime.emit import Source
    >>> src = Source()
    >>> k = src.bind(abs, "K")
    >>> with src.block("def f(x):"):
    ...     src.add(f"return {k}(x) + {src.value(2)}")
    >>> f = src.function("f", "<example>")
    >>> f(-3)
    5
    >>> print(f.source, end="")
    def f(x):
        return K1(x) + G2
"""
from __future__ import annotations

import builtins
import contextlib
import itertools
import linecache
import weakref

import numpy as np

_SERIAL = itertools.count()


_DEAD: list = []    # linecache entries of dead generated functions, dropped by the next ``function``


class Source:
    """Lines of Python source and the globals they refer to (see the module docstring)."""

    def __init__(self, globals: dict | None = None):
        self.lines: list[str] = []
        self.globals: dict = dict(globals or {})
        self._depth = 0
        self._n = 0
        self._ids: dict[int, str] = {}          # id(obj) -> name (the object is held in globals)
        self._values: dict[tuple, str] = {}     # (type, value) -> name, for scalars
        self._arrays: dict[tuple, str] = {}     # (address, shape, strides, dtype) -> name

    # -- names ---------------------------------------------------------------------------------------
    def _intern(self, table: dict, key, obj, prefix: str) -> str:
        name = table.get(key)
        if name is None:
            self._n += 1
            name = table[key] = f"{prefix}{self._n}"
            self.globals[name] = obj
        return name

    def bind(self, obj, prefix: str = "G") -> str:
        """The global name of ``obj`` (one per object)."""
        return self._intern(self._ids, id(obj), obj, prefix)

    def value(self, v) -> str:
        """The global name of a constant: numbers (and None) by value, anything else by identity."""
        if not isinstance(v, (int, float, np.integer, np.floating, type(None))):
            return self.bind(v)
        return self._intern(self._values, (type(v).__name__, v), v, "G")

    def array(self, arr: np.ndarray) -> str:
        """The global name of a fixed array view: equal views (same memory, shape, strides and
        dtype) share one name, so a jitted segment takes them as one argument."""
        return self._intern(self._arrays, (arr.ctypes.data, arr.shape, arr.strides, arr.dtype.str), arr, "G")

    # -- lines ---------------------------------------------------------------------------------------
    def add(self, line: str) -> None:
        """Append ``line`` at the current indentation."""
        self.lines.append("    " * self._depth + line)

    def extend(self, lines) -> None:
        for ln in lines:
            self.add(ln)

    @contextlib.contextmanager
    def block(self, header: str):
        """``header`` (``def f(x):``, ``for i in range(n):``...), then the block's lines indented."""
        self.add(header)
        self._depth += 1
        try:
            yield self
        finally:
            self._depth -= 1

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"

    def function(self, name: str, filename: str | None = None):
        """Compile the lines with their globals; returns the function ``name`` they define, with
        its source on ``.source`` (and in ``linecache`` under ``filename``)."""
        text = self.text()
        filename = filename or f"<graphc {name} {next(_SERIAL)}>"
        code = builtins.compile(text, filename, "exec")
        while _DEAD:            # entries of functions gone since (never dropped from a finalizer:
            linecache.cache.pop(_DEAD.pop(), None)  # GC can run inside linecache.checkcache's loop)
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        exec(code, self.globals)
        fn = self.globals[name]
        fn.source = text
        weakref.finalize(fn, _DEAD.append, filename)     # no growth as plans come and go
        return fn
