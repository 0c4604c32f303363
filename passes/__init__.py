"""graphc.passes: graph-to-graph optimization passes (networkx), run by ``optimize``.

    graph, report = graphc.passes.optimize(graph, fetches, feeds=fed_nodes)

The default pipeline (``DEFAULT_PIPELINE`` in ``manager.py``) is: dead-code
elimination, constant folding, algebraic simplification, folding again, CSE,
sums of matrix products merged into one GEMM (``gemm.py``), an unrolled LSTM's training steps
keeping their gates for the gradient (``rnn.py``), the pipeline inside every loop body
and branch (``loops.py``, which also hoists loop-invariant work out of ``scan`` bodies first),
one transposed copy of a matrix that many
matmuls read transposed (``layout.py``), then elementwise, epilogue (matmul/conv2d + tail) and reduction
fusion. Each pass is a plain function ``(graph, ctx) -> PassResult``.
"""
from .core import DEFAULT_OPTIONS, PassContext, PassResult
from .cse import cse
from .dce import dce, prune_feeds
from .fold import fold
from .fusion import fuse_elementwise, fuse_epilogue, fuse_reduction
from .gemm import merge_gemms
from .layout import transpose_shared_rhs
from .loops import MAX_UNROLL, hoist_invariants, optimize_bodies, unroll_short_loops
from .manager import (DEFAULT_PIPELINE, PASSES, PassCheckError, PassManager, PassRecord, Report,
                      optimize, sample_inputs)
from .rnn import save_lstm_gates, split_lstm_grad_inputs
from .simplify import RULES, simplify

__all__ = ["optimize", "PassManager", "DEFAULT_PIPELINE", "PASSES", "DEFAULT_OPTIONS", "PassContext",
           "PassResult", "PassRecord", "Report", "PassCheckError", "sample_inputs", "dce",
           "prune_feeds", "cse", "fold", "simplify", "RULES", "fuse_elementwise", "fuse_epilogue",
           "fuse_reduction", "transpose_shared_rhs", "hoist_invariants", "optimize_bodies", "unroll_short_loops", "MAX_UNROLL",
           "merge_gemms", "save_lstm_gates", "split_lstm_grad_inputs"]
