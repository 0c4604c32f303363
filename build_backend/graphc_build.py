"""graphc's PEP 517 build backend: setuptools' own, with editable installs that a folder named
``graphc`` in the working directory cannot shadow.

graphc maps ``graphc.passes`` and ``graphc.runtime`` to the top-level ``passes/`` and ``runtime/``
folders (``package-dir`` in pyproject.toml). For such a layout ``pip install -e .`` makes setuptools
install a meta path finder (``__editable___graphc_*_finder.py``, loaded by a ``.pth`` file) and
*append* it to ``sys.meta_path``, after the standard ``PathFinder``. ``PathFinder`` scans
``sys.path``, whose first entry is the script's folder or, for ``python -c`` and the REPL, the
working directory. Run from the folder that holds a clone named ``graphc`` (the repository root:
no ``__init__.py``), ``PathFinder`` finds that folder, finds no regular ``graphc`` package anywhere
on ``sys.path`` (the editable install adds no path entry) and so returns it as a PEP 420 namespace
package; the editable finder is never asked, and ``graphc.Graph`` raises AttributeError
(setuptools' known limitation, pypa/setuptools#3557).

This backend builds everything with ``setuptools.build_meta`` and changes one line of the editable
wheel: the ``.pth`` still runs the finder's ``install()``, then moves the finders that call
appended to the front of ``sys.meta_path``, so ``graphc`` always resolves to the installed tree.
The finder only answers for ``graphc``, ``graphc.passes``, ``graphc.runtime`` and their direct
children, so no other import changes. Regular wheels and sdists are untouched.

    >>> line = _front_first_pth(b"import __editable___graphc_0_1_0_finder; "
    ...                         b"__editable___graphc_0_1_0_finder.install()")
    >>> print(line.decode())
    import sys, __editable___graphc_0_1_0_finder as _f; _n = len(sys.meta_path); _f.install(); sys.meta_path[:] = sys.meta_path[_n:] + sys.meta_path[:_n]
"""
from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import tempfile
import zipfile

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F401,F403  (every other hook as setuptools has it)
from setuptools.build_meta import __all__  # noqa: F401

_INSTALL_LINE = re.compile(rb"^import (__editable__\w*finder); \1\.install\(\)\s*$")


def _front_first_pth(content: bytes) -> bytes | None:
    """The ``.pth`` line that installs the finder and moves it first, or None when ``content`` is
    not setuptools' one-line ``import <finder>; <finder>.install()``.

    (No comprehension: site.py runs the line with ``exec`` in a function, whose locals a
    comprehension's scope cannot see on Python < 3.12.)"""
    m = _INSTALL_LINE.match(content)
    if m is None:
        return None
    mod = m.group(1).decode()
    return (f"import sys, {mod} as _f; _n = len(sys.meta_path); _f.install(); "
            "sys.meta_path[:] = sys.meta_path[_n:] + sys.meta_path[:_n]").encode()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _rewrite_editable_wheel(path: str) -> bool:
    """Rewrite the finder-installing ``.pth`` of the editable wheel at ``path`` in place (and its
    RECORD line); the new wheel is written beside it and renamed over it. False if the wheel has no
    such ``.pth`` (another setuptools strategy: a path entry, which cannot be shadowed)."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info, zin.read(info)) for info in zin.infolist()]
    changed = {}
    for info, data in entries:
        if "/" not in info.filename and info.filename.endswith(".pth"):
            new = _front_first_pth(data)
            if new is not None:
                changed[info.filename] = new
    if not changed:
        return False
    fd, tmp = tempfile.mkstemp(suffix=".whl.tmp", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zout:
            for info, data in entries:
                if info.filename in changed:
                    data = changed[info.filename]
                elif info.filename.endswith(".dist-info/RECORD"):
                    lines = []
                    for line in data.decode().splitlines():
                        name = line.split(",", 1)[0]
                        if name in changed:
                            line = f"{name},{_record_hash(changed[name])},{len(changed[name])}"
                        lines.append(line)
                    data = ("\n".join(lines) + "\n").encode()
                zout.writestr(info, data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """setuptools' editable wheel, with its meta path finder moved first (see the module doc)."""
    name = _setuptools.build_editable(wheel_directory, config_settings, metadata_directory)
    if not _rewrite_editable_wheel(os.path.join(wheel_directory, name)):
        print("graphc build backend: setuptools' editable wheel has no finder .pth; left as built",
              file=sys.stderr)
    return name
