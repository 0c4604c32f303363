"""graphc.runtime: lowering, numba kernels, cache and executor."""
