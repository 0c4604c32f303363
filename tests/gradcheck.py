"""Finite-difference gradient checks (float64, central differences) against ``gc.gradients``."""
from __future__ import annotations

import numpy as np

import graphc as gc


def numeric_grads(fn, arrays, eps=1e-6, seed=0):
    """Analytic and numeric gradients of ``sum(fn(xs) * w)`` for random fixed weights ``w``."""
    g = gc.Graph()
    with g.as_default():
        xs = [gc.placeholder(a.dtype, a.shape, name=f"x{i}") for i, a in enumerate(arrays)]
        y = fn(xs)
        w = np.random.default_rng(seed).uniform(0.5, 1.5, size=[d for d in y.shape]).astype(y.dtype)
        loss = gc.reduce_sum(y * gc.constant(w))
        grads = gc.gradients(loss, xs)
    sess = gc.Session(g, optimize=False)
    feed = {x: a for x, a in zip(xs, arrays)}
    analytic = sess.run([gr if gr is not None else loss for gr in grads], feed)
    analytic = [a if gr is not None else None for a, gr in zip(analytic, grads)]
    numeric = []
    for i, a in enumerate(arrays):
        if a.dtype.kind != "f":
            numeric.append(None)
            continue
        num = np.zeros(a.shape, a.dtype)
        flat = num.reshape(-1)
        for j in range(a.size):
            plus, minus = a.copy(), a.copy()
            plus.reshape(-1)[j] += eps
            minus.reshape(-1)[j] -= eps
            fp = sess.run(loss, {**feed, xs[i]: plus})
            fm = sess.run(loss, {**feed, xs[i]: minus})
            flat[j] = (fp - fm) / (2 * eps)
        numeric.append(num)
    return analytic, numeric


def check_grad(fn, arrays, *, atol=1e-5, rtol=1e-4, eps=1e-6, wrt=None):
    """Assert that gc.gradients matches central differences for every float input (or those in ``wrt``)."""
    arrays = [np.ascontiguousarray(a) for a in arrays]
    analytic, numeric = numeric_grads(fn, arrays, eps=eps)
    for i, (an, nu) in enumerate(zip(analytic, numeric)):
        if wrt is not None and i not in wrt:
            continue
        if nu is None:
            continue
        if an is None:
            assert np.allclose(nu, 0, atol=atol), f"input {i}: gradient is None but numeric is {nu}"
            continue
        np.testing.assert_allclose(an, nu, atol=atol, rtol=rtol, err_msg=f"gradient of input {i}")
