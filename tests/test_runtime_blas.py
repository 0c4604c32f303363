"""The GEMM kernels on numpy's own BLAS (runtime/blas.py) against numpy's matmul."""
import numpy as np
import pytest

import graphc as gc
from graphc.runtime import blas, cache

from kernel_checks import RNG, run_both

pytestmark = pytest.mark.skipif(not blas.AVAILABLE, reason="numpy's BLAS symbols are not reachable here")


def _layouts(m):
    """``m`` as C, Fortran, row-strided (a slice of wider rows), element-strided and backwards arrays."""
    wide = np.concatenate([m, m + 1], axis=1)[:, :m.shape[1]]
    spread = np.repeat(m, 2, axis=1)[:, ::2]
    backwards = np.ascontiguousarray(m[::-1, ::-1])[::-1, ::-1]          # negative strides
    return {"c": m, "f": np.asfortranarray(m), "rows": wide, "spread": spread, "backwards": backwards}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta,tb", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("m,k,n", [(5, 7, 3), (1, 4, 1), (1, 1, 9), (33, 65, 17), (0, 3, 2), (3, 0, 2)])
def test_gemm_into_matches_numpy_for_every_layout(dtype, ta, tb, m, k, n):
    g = cache.ensure_compiled(blas.gemm_kernel(2), blas.gemm_signature(dtype, 2))
    A = RNG.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    B = RNG.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    ref = (A.T if ta else A) @ (B.T if tb else B)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    for (la, a), (lb, b) in zip(_layouts(A).items(), list(_layouts(B).items())[::-1] + [("c", B)]):
        out = np.full((m, n), np.nan, dtype)
        g(a, b, out, ta, tb)
        np.testing.assert_allclose(out, ref, rtol=tol, atol=tol, err_msg=f"a {la}, b {lb}")


@pytest.mark.parametrize("batch_a,batch_b", [(4, 4), (4, 1), (1, 4)])
def test_gemm_batch_into_broadcasts_a_batch_of_one(batch_a, batch_b):
    g = cache.ensure_compiled(blas.gemm_kernel(3), blas.gemm_signature(np.float32, 3))
    a = RNG.standard_normal((batch_a, 6, 5)).astype(np.float32)
    b = RNG.standard_normal((batch_b, 6, 3)).astype(np.float32)
    out = np.empty((4, 5, 3), np.float32)
    g(a, b, out, 1, 0)
    np.testing.assert_allclose(out, np.matmul(a.transpose(0, 2, 1), b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("jitted", [True, False])
def test_plans_run_their_gemms_on_the_kernel_with_jitted_drivers(configure, jitted):
    # with jitted drivers on, a graph's matmuls (2-D, transposed, batched) lower to the numba GEMM
    # (else np.matmul) and agree with the reference
    configure(driver="numba" if jitted else "python")
    g = gc.Graph()
    with g.as_default():
        x = gc.placeholder("float32", (None, 6), name="x")
        s = gc.placeholder("float32", (2, 6, 5), name="s")
        w = gc.constant(RNG.standard_normal((6, 4)).astype(np.float32))
        fetches = [gc.matmul(x, w), gc.matmul(x, x, transpose_b=True), gc.matmul(s, s, transpose_a=True)]
    exe, out, ref = run_both(fetches, {x: RNG.standard_normal((7, 6)).astype(np.float32),
                                       s: RNG.standard_normal((2, 6, 5)).astype(np.float32)})
    gemms = [fn for st in exe.plan.kernel_calls for fn, _ in st.call.steps
             if fn in (blas.gemm_kernel(2), blas.gemm_kernel(3))]
    assert len(gemms) == (3 if jitted else 0)
