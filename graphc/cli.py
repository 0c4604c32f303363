"""The ``graphc`` command.

    $ graphc --version
    $ graphc info          # versions, numba threading layer and threads, cache folder
    $ graphc cache clear   # delete every compiled kernel
    $ graphc dump mlp --stage all --format html -o mlp.html
    $ graphc bench --quick --json bench.json

Errors in a target or an option print one line and exit with status 2 (``--debug`` shows the traceback).
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
    print("\nconfiguration (graphc.config; environment variables in parentheses):")
    print(graphc.config.get().describe())
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


def _dump(args) -> int:
    from graphc.tools.dump import render
    from graphc.tools.workloads import load_target
    prog = load_target(args.target, train=args.train, quick=not args.full)
    text = render(prog, args.stage, args.format)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"wrote {args.output} ({args.format}, stage {args.stage})", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _bench(args) -> int:
    from graphc.tools import bench
    from graphc.tools.workloads import WORKLOADS
    if args.list:
        for name in WORKLOADS:
            print(name)
        return 0
    names = args.workloads or list(WORKLOADS)
    bench.run(names, quick=args.quick, peers=args.peers, json_path=args.json)
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
    # --debug after the command too (SUPPRESS: an absent flag there keeps the top-level value)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show tracebacks on errors")
    info = sub.add_parser("info", parents=[common], help="versions, threading layer, cache folder",
                          description="Print the versions of graphc, numpy, numba and networkx, "
                                      "numba's threading layer and the kernel cache folder.",
                          epilog="examples:\n  graphc info\n  GRAPHC_CACHE_DIR=/tmp/kc graphc info",
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    info.set_defaults(func=_info)
    cache = sub.add_parser("cache", parents=[common], help="show or clear the compiled-kernel cache",
                           description="Show ('graphc cache') or delete ('graphc cache clear') the "
                                       "compiled kernels in $GRAPHC_CACHE_DIR (default ~/.cache/graphc).",
                           epilog="examples:\n  graphc cache\n  graphc cache clear",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    cache.add_argument("action", nargs="?", choices=["show", "clear"], default="show")
    cache.set_defaults(func=_cache)

    raw = argparse.RawDescriptionHelpFormatter
    dump = sub.add_parser(
        "dump", parents=[common], help="print a graph before/after the passes (text, json, dot, html)", formatter_class=raw,
        description="Dump the graph of TARGET as the passes see it.\n\nTARGET is one of:\n"
                    "  file.py:NAME   a function returning a Tensor, a list of Tensors, a Graph or a Model,\n"
                    "                 or a module attribute holding one\n"
                    "  model.npz      a model saved with model.save()\n"
                    "  WORKLOAD       a built-in workload: mlp, cnn, lstm, transformer (or any name of\n"
                    "                 'graphc bench --list')",
        epilog="examples:\n  graphc dump mlp\n  graphc dump mlp --train --stage all\n"
               "  graphc dump my_model.py:build --stage after=fuse_elementwise\n"
               "  graphc dump model.npz --format json -o model.json\n"
               "  graphc dump cnn --train --stage all --format html -o cnn.html\n"
               "  graphc dump lstm --format dot | dot -Tsvg > lstm.svg")
    dump.add_argument("target", help="file.py:NAME, a saved model file, or a workload name")
    dump.add_argument("--stage", default="optimized", metavar="STAGE",
                      help="raw, optimized (default), all (one section per pass), or after=PASS")
    dump.add_argument("--train", action="store_true",
                      help="the training step of a compiled model (forward, loss, gradients, updates)")
    dump.add_argument("--format", default="text", choices=["text", "json", "dot", "html"])
    dump.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    dump.add_argument("--full", action="store_true", help="built-in workloads at benchmark size "
                                                          "(default: the --quick size)")
    dump.set_defaults(func=_dump)

    bench = sub.add_parser(
        "bench", parents=[common], help="the compile benchmark: passes, cold/warm compile, run vs reference",
        formatter_class=raw,
        description="Measure each workload in fresh processes with an empty kernel cache (cold) and "
                    "the cache it filled (warm): nodes before/after the passes, pass times, compile "
                    "times, steady-state run time, the numpy reference interpreter's time, peak "
                    "memory of the plan.",
        epilog="examples:\n  graphc bench --quick\n  graphc bench mlp_train cnn_train --json bench.json\n"
               "  graphc bench --quick --peers chain_16 mlp_infer\n  graphc bench --list")
    bench.add_argument("workloads", nargs="*", metavar="WORKLOAD", help="workloads to run (default: all)")
    bench.add_argument("--quick", action="store_true", help="CI-scale sizes (seconds, not minutes)")
    bench.add_argument("--json", metavar="FILE", help="write the records (a JSON list) to FILE")
    bench.add_argument("--peers", action="store_true",
                       help="also time PyTorch / JAX versions where installed, with ratios")
    bench.add_argument("--list", action="store_true", help="list the workloads and exit")
    bench.set_defaults(func=_bench)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from graphc.tools.workloads import TargetError
    try:
        return args.func(args)
    except TargetError as e:   # a bad target or option: the message says it all
        if args.debug:
            raise
        print(f"graphc {args.command}: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # one clear line unless --debug
        if args.debug:
            raise
        print(f"graphc {args.command}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
