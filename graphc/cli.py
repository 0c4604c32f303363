"""The ``graphc`` command.

    $ graphc --version
    $ graphc info          # versions, numba threading layer and threads, cache folder
    $ graphc cache clear   # delete every compiled kernel
"""
from __future__ import annotations

import argparse
import sys


def _info(args) -> int:
    import networkx
    import numba
    import numpy

    import graphc
    print(f"graphc     {graphc.__version__}")
    print(f"numpy      {numpy.__version__}")
    print(f"numba      {numba.__version__}")
    print(f"networkx   {networkx.__version__}")
    print(f"python     {sys.version.split()[0]}")
    print(f"threads    {numba.config.NUMBA_NUM_THREADS} (numba)")
    print(f"threading  {_threading_layer()}")
    from graphc import runtime
    info = runtime.cache_info()
    print(f"cache      {info['dir']} ({info['entries']} kernels, {info['bytes'] / 1e6:.1f} MB; "
          f"set GRAPHC_CACHE_DIR to move it)")
    return 0


def _cache(args) -> int:
    from graphc import runtime
    if args.action == "clear":
        n = runtime.cache_clear()
        print(f"removed {n} cached kernels from {runtime.cache_info()['dir']}")
    else:
        info = runtime.cache_info()
        print(f"{info['dir']}: {info['entries']} kernels, {info['bytes'] / 1e6:.1f} MB ({info['versions']})")
    return 0


def _threading_layer() -> str:
    """Numba's threading layer: the one in use, else the one it would pick."""
    import numba
    try:
        return numba.threading_layer()
    except ValueError:
        pass
    # no parallel function ran yet: run a tiny one so numba chooses
    try:
        import numpy as np

        @numba.njit(parallel=True, cache=False)
        def _probe(a):
            for i in numba.prange(a.shape[0]):
                a[i] += 1
        _probe(np.zeros(4))
        return numba.threading_layer()
    except Exception as e:  # pragma: no cover - depends on the machine
        return f"unavailable ({type(e).__name__}: {e})"


def build_parser() -> argparse.ArgumentParser:
    import graphc
    p = argparse.ArgumentParser(
        prog="graphc", description="graphc: a JIT-compiled computation-graph compiler.",
        epilog="examples:\n  graphc --version\n  graphc info\n  graphc cache clear",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"graphc {graphc.__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = p.add_subparsers(dest="command")
    info = sub.add_parser("info", help="versions, threading layer, cache folder",
                          description="Print the versions of graphc, numpy, numba and networkx, "
                                      "numba's threading layer and the kernel cache folder.")
    info.set_defaults(func=_info)
    cache = sub.add_parser("cache", help="show or clear the compiled-kernel cache",
                           description="Show ('graphc cache') or delete ('graphc cache clear') the "
                                       "compiled kernels in $GRAPHC_CACHE_DIR (default ~/.cache/graphc).",
                           epilog="examples:\n  graphc cache\n  graphc cache clear",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    cache.add_argument("action", nargs="?", choices=["show", "clear"], default="show")
    cache.set_defaults(func=_cache)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except Exception as e:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"graphc {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
