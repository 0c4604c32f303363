"""Random graphs compiled vs the reference interpreter (issue #22), for long runs.

    python examples/fuzz.py --graphs 10000 [--seed 0] [--none-dims] [--quiet]

Graph ``i`` is ``graphc.tools.fuzz.make_case(seed + i)``: the same seed gives the same graphs and
inputs, so any failure printed here reproduces with ``--seed <its seed> --graphs 1`` (and the same
``--none-dims``: the same graphs with unknown placeholder dimensions). Prints the counts (ok /
graph-build errors / by-design exclusions / ill-conditioned results / crashes / mismatches, and
the op attempts that a shape or dtype rule rejected, which is correct) and each failure with the
graph that gave it, and one line per exclusion, with its reason (to review).
Exits 1 on any crash or mismatch. The tolerance policy and the exclusions are in the docstring
of ``graphc/tools/fuzz.py``.
"""
from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from graphc.tools import fuzz  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--graphs", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--none-dims", action="store_true", help="placeholders with None dimensions")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    args = ap.parse_args(argv)
    counts = collections.Counter()
    excluded = collections.Counter()
    rejected = 0
    failures = []
    t0 = time.perf_counter()
    for i in range(args.graphs):
        o = fuzz.fuzz_one(args.seed + i, args.none_dims)
        counts[o.kind] += 1
        rejected += o.rejected
        if o.kind == "excluded":
            excluded[o.detail.split(":")[0]] += 1
            print(f"seed {o.seed}: excluded by design: {o.detail}", flush=True)   # for review
        if o.kind == "ill_conditioned":
            print(f"seed {o.seed}: ill-conditioned, excluded: {o.detail}", flush=True)
        if o.kind in ("crash", "mismatch"):
            failures.append(o)
            print(fuzz.report(o), flush=True)
        if not args.quiet and (i + 1) % 500 == 0:
            print(f"... {i + 1} graphs, {time.perf_counter() - t0:.0f} s: {dict(counts)}", flush=True)
    print(f"{args.graphs} graphs{' with None dims' if args.none_dims else ''} (seeds {args.seed}..{args.seed + args.graphs - 1}) in "
          f"{time.perf_counter() - t0:.0f} s: ok {counts['ok']}, graph-build errors "
          f"{counts['build_error']}, excluded by design {counts['excluded']} {dict(excluded)}, "
          f"ill-conditioned, excluded {counts['ill_conditioned']}, crashes {counts['crash']}, mismatches {counts['mismatch']}; op attempts rejected by a "
          f"shape/dtype rule: {rejected}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
