"""Optimizers, learning-rate schedules and regularizers.

Each optimizer's first steps are compared with a hand-written numpy version of
Keras 3's update formula (same dtype, same operation order, so float32 results
agree to the last bits); training loops run through ``gc.Session`` are compared
with hand-written numpy loops.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import graphc as gc
import graphc.optimizers as optimizers
import graphc.regularizers as regularizers
from graphc import schedules
from graphc.ops.registry import get_op

F32 = np.float32
W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], F32)
# a big gradient then smaller ones: v decreases, so amsgrad's max(v_hat, v) matters
GRADS = [np.array([[1.0, -2.0, 0.5], [0.1, 3.0, -1.0]], F32),
         np.array([[0.2, 0.1, -0.3], [0.05, -0.4, 0.6]], F32),
         np.array([[-0.5, 0.3, 0.2], [0.0, 0.1, -0.1]], F32)]


# -- numpy references (Keras 3 formulas) ----------------------------------------------------------
def np_sgd(w, grads, learning_rate=0.01, momentum=0.0, nesterov=False, weight_decay=None):
    lr = F32(learning_rate)
    m = np.zeros_like(w)
    for g in grads:
        if weight_decay:
            w = w - w * F32(weight_decay) * lr
        if momentum == 0:
            w = w - g * lr
        else:
            m = -g * lr + m * F32(momentum)
            w = w + (-g * lr + m * F32(momentum)) if nesterov else w + m
        yield w, {"momentum": m}


def np_adam(w, grads, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False,
            weight_decay=None):
    lr = np.asarray(learning_rate, w.dtype)
    m, v, vh = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        if weight_decay:
            w = w - w * w.dtype.type(weight_decay) * lr
        step = w.dtype.type(t)
        b1p, b2p = np.power(w.dtype.type(beta_1), step), np.power(w.dtype.type(beta_2), step)
        alpha = lr * np.sqrt(1 - b2p) / (1 - b1p)
        m = m + (g - m) * (1 - beta_1)
        v = v + (np.square(g) - v) * (1 - beta_2)
        vv = v
        if amsgrad:
            vh = np.maximum(vh, v)
            vv = vh
        w = w - (m * alpha) / (np.sqrt(vv) + w.dtype.type(epsilon))
        yield w, {"m": m, "v": v, **({"v_hat": vh} if amsgrad else {})}


def np_rmsprop(w, grads, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False):
    lr = F32(learning_rate)
    vel, mom, avg = np.zeros_like(w), np.zeros_like(w), np.zeros_like(w)
    for g in grads:
        vel = F32(rho) * vel + F32(1 - rho) * np.square(g)
        if centered:
            avg = F32(rho) * avg + F32(1 - rho) * g
            den = vel - np.square(avg) + F32(epsilon)
        else:
            den = vel + F32(epsilon)
        inc = (lr * g) / np.sqrt(den)
        if momentum > 0:
            mom = F32(momentum) * mom + inc
            w = w - mom
        else:
            w = w - inc
        slots = {"velocity": vel}
        if momentum > 0:
            slots["momentum"] = mom
        if centered:
            slots["average_gradient"] = avg
        yield w, slots


def np_adagrad(w, grads, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7):
    lr = F32(learning_rate)
    acc = np.full_like(w, initial_accumulator_value)
    for g in grads:
        acc = acc + np.square(g)
        w = w - (lr * g) / np.sqrt(acc + F32(epsilon))
        yield w, {"accumulator": acc}


CONFIGS = [
    (optimizers.SGD, np_sgd, {}),
    (optimizers.SGD, np_sgd, {"learning_rate": 0.1, "momentum": 0.9}),
    (optimizers.SGD, np_sgd, {"learning_rate": 0.1, "momentum": 0.5, "nesterov": True}),
    (optimizers.SGD, np_sgd, {"learning_rate": 0.1, "weight_decay": 0.05}),
    (optimizers.Adam, np_adam, {}),
    (optimizers.Adam, np_adam, {"learning_rate": 0.05, "beta_1": 0.8, "beta_2": 0.9, "epsilon": 1e-3}),
    (optimizers.Adam, np_adam, {"learning_rate": 0.05, "amsgrad": True}),
    (optimizers.AdamW, np_adam, {"learning_rate": 0.05, "weight_decay": 0.1}),
    (optimizers.RMSprop, np_rmsprop, {}),
    (optimizers.RMSprop, np_rmsprop, {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.9}),
    (optimizers.RMSprop, np_rmsprop, {"learning_rate": 0.01, "centered": True}),
    (optimizers.RMSprop, np_rmsprop, {"learning_rate": 0.01, "momentum": 0.5, "centered": True}),
    (optimizers.Adagrad, np_adagrad, {}),
    (optimizers.Adagrad, np_adagrad, {"learning_rate": 0.5, "initial_accumulator_value": 0.5, "epsilon": 1e-3}),
]


def _ids(c):
    cls, _, kw = c
    return cls.__name__ + "-" + "-".join(f"{k}={v}" for k, v in kw.items())


@pytest.mark.parametrize("cls, ref, kw", CONFIGS, ids=[_ids(c) for c in CONFIGS])
def test_first_steps_match_keras_formulas(cls, ref, kw):
    w = gc.Variable(W0, name="w")
    g = gc.placeholder("float32", W0.shape, name="g")
    opt = cls(**kw)
    train = opt.apply_gradients([(g, w)])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for step, (gv, (want_w, want_slots)) in enumerate(zip(GRADS, ref(W0, GRADS, **kw)), start=1):
        assert s.run(train, {g: gv}) is None
        np.testing.assert_allclose(s.run(w), want_w, rtol=2e-6, atol=1e-7, err_msg=f"step {step}")
        for name, want in want_slots.items():
            if name == "momentum" and not kw.get("momentum"):
                continue
            np.testing.assert_allclose(s.run(opt.get_slot(w, name)), want, rtol=2e-6, atol=1e-7,
                                       err_msg=f"slot {name} at step {step}")
        assert s.run(opt.iterations) == step


def test_hand_computed_values_float64():
    """Literal numbers worked out by hand from the formulas, in float64."""
    w = gc.Variable(np.array([1.0, -2.0]), name="w")
    g = gc.placeholder("float64", (2,))
    sgd = gc.Variable(np.array([1.0, -2.0]), name="w_sgd")
    train = gc.group(optimizers.Adam(learning_rate=0.1).apply_gradients([(g, w)]),
                     optimizers.SGD(learning_rate=0.1, momentum=0.9).apply_gradients([(g, sgd)]))
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train, {g: np.array([0.5, -4.0])})
    # Adam step 1: m = 0.1 g, v = 0.001 g^2, alpha = 0.1 sqrt(0.001) / 0.1 -> var -= 0.1 g / (|g| + 1e-7/sqrt(.001))
    want = np.array([1.0, -2.0]) - 0.1 * np.array([0.05, -0.4]) * math.sqrt(0.001) / 0.1 / (
        np.sqrt([0.00025, 0.016]) + 1e-7)
    np.testing.assert_allclose(s.run(w), want, rtol=1e-12)
    np.testing.assert_allclose(s.run(w), [0.9000006324, -1.9000000791], rtol=1e-9)
    # SGD momentum: m1 = -0.1 g; m2 = 0.9 m1 - 0.1 g2
    np.testing.assert_allclose(s.run(sgd), [0.95, -1.6], rtol=1e-12)
    s.run(train, {g: np.array([1.0, 1.0])})
    np.testing.assert_allclose(s.run(sgd), [0.95 - 0.045 - 0.1, -1.6 + 0.36 - 0.1], rtol=1e-12)


def test_float64_variables_and_mixed_dtypes():
    w32 = gc.Variable(W0, name="w32")
    w64 = gc.Variable(W0.astype(np.float64), name="w64")
    loss = gc.reduce_sum(gc.square(w32)) + gc.cast(gc.reduce_sum(gc.square(w64)), "float32")
    train = optimizers.Adam(learning_rate=0.1, global_clipnorm=1.0).minimize(loss)
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train)
    a, b = s.run([w32, w64])
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_allclose(a, b, rtol=1e-5)


# -- clipping -----------------------------------------------------------------------------------------------
def _one_sgd_step(grads, **kw):
    ws = [gc.Variable(np.zeros_like(g), name=f"w{i}") for i, g in enumerate(grads)]
    gs = [gc.placeholder("float32", g.shape) for g in grads]
    train = optimizers.SGD(learning_rate=1.0, **kw).apply_gradients(list(zip(gs, ws)))
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train, dict(zip(gs, grads)))
    return [-v for v in s.run(ws)]  # the (clipped) gradients


def test_clipnorm_clips_each_gradient_by_its_norm():
    g1, g2 = np.array([3.0, 4.0], F32), np.array([0.3, 0.4], F32)
    c1, c2 = _one_sgd_step([g1, g2], clipnorm=1.0)
    np.testing.assert_allclose(c1, [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(c2, g2, rtol=1e-6)  # norm 0.5 <= 1: unchanged
    (z,) = _one_sgd_step([np.zeros(3, F32)], clipnorm=1.0)
    np.testing.assert_array_equal(z, np.zeros(3, F32))  # no NaN from 0 / 0


def test_global_clipnorm_scales_all_gradients_together():
    g1, g2 = np.array([3.0, 0.0], F32), np.array([[0.0], [4.0]], F32)
    c1, c2 = _one_sgd_step([g1, g2], global_clipnorm=2.5)
    np.testing.assert_allclose(c1, g1 * 0.5, rtol=1e-6)
    np.testing.assert_allclose(c2, g2 * 0.5, rtol=1e-6)
    c1, c2 = _one_sgd_step([g1, g2], global_clipnorm=10.0)
    np.testing.assert_allclose(c1, g1, rtol=1e-6)


def test_clipvalue_clips_elementwise():
    (c,) = _one_sgd_step([np.array([-3.0, 0.2, 0.7], F32)], clipvalue=0.5)
    np.testing.assert_allclose(c, [-0.5, 0.2, 0.5])


def test_only_one_clipping_argument():
    with pytest.raises(ValueError, match="Only one of"):
        optimizers.Adam(clipnorm=1.0, clipvalue=1.0)


# -- schedules -------------------------------------------------------------------------------------------
SCHEDULES = [
    schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5),
    schedules.ExponentialDecay(0.1, decay_steps=3, decay_rate=0.5, staircase=True),
    schedules.CosineDecay(0.2, decay_steps=5),
    schedules.CosineDecay(0.2, decay_steps=5, alpha=0.1),
    schedules.CosineDecay(0.0, decay_steps=4, warmup_target=0.3, warmup_steps=3),
    schedules.InverseTimeDecay(0.5, decay_steps=2, decay_rate=1.0),
    schedules.PiecewiseConstantDecay([2, 5], [0.3, 0.2, 0.1]),
]


def _keras_formula(s, step):
    """The schedules' formulas written out in float64 (as in the Keras docs)."""
    c = s.get_config()
    if isinstance(s, schedules.ExponentialDecay):
        p = step / c["decay_steps"]
        return c["initial_learning_rate"] * c["decay_rate"] ** (math.floor(p) if c["staircase"] else p)
    if isinstance(s, schedules.CosineDecay):
        def decay(st, frm):
            st = min(st, c["decay_steps"])
            return frm * ((1 - c["alpha"]) * 0.5 * (1 + math.cos(math.pi * st / c["decay_steps"])) + c["alpha"])
        if c["warmup_target"] is None:
            return decay(step, c["initial_learning_rate"])
        if step < c["warmup_steps"]:
            return c["initial_learning_rate"] + (c["warmup_target"] - c["initial_learning_rate"]) \
                * step / c["warmup_steps"]
        return decay(step - c["warmup_steps"], c["warmup_target"])
    if isinstance(s, schedules.InverseTimeDecay):
        return c["initial_learning_rate"] / (1 + c["decay_rate"] * step / c["decay_steps"])
    return c["values"][sum(step > b for b in c["boundaries"])]


@pytest.mark.parametrize("sched", SCHEDULES, ids=[repr(s)[:40] for s in SCHEDULES])
def test_schedule_values_graph_and_numpy(sched):
    steps = list(range(10))
    step = gc.placeholder("int64", ())
    lr = sched(step)
    s = gc.Session()
    for i in steps:
        want = _keras_formula(sched, i)
        assert float(sched(i)) == pytest.approx(want, rel=1e-5, abs=1e-7)
        assert float(s.run(lr, {step: i})) == pytest.approx(want, rel=1e-5, abs=1e-7)
    again = schedules.deserialize(schedules.serialize(sched))
    assert type(again) is type(sched) and again.get_config() == sched.get_config()


def test_optimizer_evaluates_schedule_from_iterations():
    sched = schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.5)
    w = gc.Variable(np.zeros(2, F32), name="w")
    g = gc.placeholder("float32", (2,))
    train = optimizers.SGD(learning_rate=sched).apply_gradients([(g, w)])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for _ in range(3):
        s.run(train, {g: np.ones(2, F32)})
    np.testing.assert_allclose(s.run(w), -(0.5 + 0.25 + 0.125) * np.ones(2), rtol=1e-6)


def test_learning_rate_may_be_a_placeholder():
    lr = gc.placeholder("float32", ())
    w = gc.Variable(np.ones(2, F32), name="w")
    train = optimizers.SGD(learning_rate=lr).minimize(gc.reduce_sum(w))
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train, {lr: 0.25})
    np.testing.assert_allclose(s.run(w), [0.75, 0.75])


# -- minimize / apply_gradients behaviour ----------------------------------------------------------------
def test_minimize_returns_one_op_and_creates_non_trainable_slots():
    w = gc.Variable(W0, name="w")
    b = gc.Variable(np.zeros(3, F32), name="b")
    loss = gc.reduce_sum(gc.square(w)) + gc.reduce_sum(b * 2.0)
    opt = optimizers.Adam(learning_rate=0.1, amsgrad=True)
    train = opt.minimize(loss)
    assert train.op.type == "group"
    assert {v.name for v in gc.trainable_variables()} == {"w", "b"}
    slot_names = {v.name for v in gc.global_variables()} - {"w", "b"}
    assert slot_names == {"adam/iterations", "adam/w_m", "adam/w_v", "adam/w_v_hat",
                          "adam/b_m", "adam/b_v", "adam/b_v_hat"}  # Keras 3 naming
    assert {v.name for v in opt.variables} == slot_names
    assert opt.get_slot_names() == ["m", "v", "v_hat"]
    s = gc.Session()
    s.run(gc.global_variables_initializer())  # created after minimize: covers the slots
    assert s.run(train) is None
    assert s.run(opt.iterations) == 1 and s.run(opt.iterations).dtype == np.int64


def test_slots_are_shared_across_minimize_calls_and_graphs():
    w = gc.Variable(np.ones(2, F32), name="w")
    opt = optimizers.SGD(learning_rate=0.5, momentum=0.5)
    t1 = opt.minimize(gc.reduce_sum(w))
    t2 = opt.minimize(gc.reduce_sum(2.0 * w))
    assert len(opt.variables) == 2  # iterations + one momentum slot, built once
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(t1)
    s.run(t2)  # m = 0.5 * -0.5 - 1.0 = -1.25
    np.testing.assert_allclose(s.run([w, opt.get_slot(w, "momentum")]), [[-0.75, -0.75], [-1.25, -1.25]])
    assert s.run(opt.iterations) == 2
    g = gc.Graph()
    with g.as_default():
        v = gc.Variable(np.ones(2, F32), name="v")
        train = opt.minimize(gc.reduce_sum(v))
        assert opt.iterations.graph is g
        s2 = gc.Session(g)
        s2.run(gc.global_variables_initializer())
        s2.run(train)
        np.testing.assert_allclose(s2.run(v), [0.5, 0.5])
        assert s2.run(opt.iterations) == 1


def test_var_list_restricts_updates():
    w = gc.Variable(np.ones(2, F32), name="w")
    b = gc.Variable(np.ones(2, F32), name="b")
    train = optimizers.SGD(learning_rate=0.5).minimize(gc.reduce_sum(w * b), var_list=[b])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train)
    np.testing.assert_allclose(s.run([w, b]), [[1.0, 1.0], [0.5, 0.5]])


def test_unconnected_variables_are_skipped_with_a_warning():
    w = gc.Variable(np.ones(2, F32), name="w")
    unused = gc.Variable(np.ones(2, F32), name="unused")
    with pytest.warns(UserWarning, match="unused"):
        train = optimizers.SGD(learning_rate=0.5).minimize(gc.reduce_sum(w))
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train)
    np.testing.assert_allclose(s.run([w, unused]), [[0.5, 0.5], [1.0, 1.0]])
    with pytest.raises(ValueError, match="no gradients"):
        optimizers.SGD().minimize(gc.reduce_sum(gc.constant([1.0, 2.0])) + 0 * gc.stop_gradient(w[0]),
                                  var_list=[w])


def test_errors_are_clear():
    x = gc.placeholder("float32", (2,))
    with pytest.raises(TypeError, match="not a gc.Variable"):
        optimizers.SGD().minimize(gc.reduce_sum(x * x), var_list=[x])
    with pytest.raises(ValueError, match="momentum"):
        optimizers.SGD(momentum=1.5)
    with pytest.raises(ValueError, match="learning_rate"):
        optimizers.Adam(learning_rate=-1.0)
    with pytest.raises(TypeError, match="unsupported"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(ValueError, match="no variables"):
        optimizers.Adam().minimize(gc.reduce_sum(x))


def test_exclude_from_weight_decay():
    w = gc.Variable(np.ones(2, F32), name="kernel")
    b = gc.Variable(np.ones(2, F32), name="bias")
    g = gc.placeholder("float32", (2,))
    opt = optimizers.SGD(learning_rate=0.1, weight_decay=0.5)
    opt.exclude_from_weight_decay(var_names=["bias"])
    train = opt.apply_gradients([(g, w), (g, b)])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(train, {g: np.zeros(2, F32)})
    np.testing.assert_allclose(s.run([w, b]), [[0.95, 0.95], [1.0, 1.0]], rtol=1e-6)


def test_update_math_is_elementwise():
    """Everything apply_gradients adds (beyond new slot variables) is elementwise or an assign,
    so the fusion pass can fuse each parameter's update into one kernel."""
    sched = schedules.CosineDecay(0.1, decay_steps=10)
    for opt in (optimizers.Adam(learning_rate=sched, amsgrad=True), optimizers.AdamW(),
                optimizers.RMSprop(momentum=0.9, centered=True), optimizers.SGD(momentum=0.9, nesterov=True),
                optimizers.Adagrad()):
        gc.reset_default_graph()
        w = gc.Variable(W0, name="w")
        pairs = opt.compute_gradients(gc.reduce_sum(gc.square(w)))
        g = w.graph
        first = g._next_id
        opt.apply_gradients(pairs)
        kinds = {(g.op(n), get_op(g.op(n)).fusion) for n in g.nodes() if n >= first}
        bad = {k for k in kinds if k[1] not in ("elementwise", "source", "state")}
        assert not bad, f"{type(opt).__name__}: non-elementwise update ops {bad}"


@pytest.mark.parametrize("opt", [optimizers.SGD(0.1, momentum=0.5), optimizers.Adam(0.1),
                                 optimizers.AdamW(0.1), optimizers.RMSprop(0.05),
                                 optimizers.Adagrad(0.5)], ids=lambda o: type(o).__name__)
def test_minimize_quadratic_converges(opt):
    target = np.array([1.0, -2.0, 3.0], F32)
    w = gc.Variable(np.zeros(3, F32), name="w")
    loss = gc.reduce_sum(gc.square(w - target))
    train = opt.minimize(loss)
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for _ in range(150):
        s.run(train)
    np.testing.assert_allclose(s.run(w), target, atol=0.1)


def _linreg_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(16, 3))
    Y = X @ np.array([[1.5], [-2.0], [0.5]]) + 0.3 + 0.01 * rng.normal(size=(16, 1))
    return X, Y


@pytest.mark.parametrize("executor, optimize", [("reference", False), ("reference", True),
                                               ("compiled", False), ("compiled", True)])
def test_twenty_step_training_loop_matches_numpy(executor, optimize):
    """Adam on least squares through gc.Session == a hand-written numpy loop (float64)."""
    X, Y = _linreg_data()
    x = gc.placeholder("float64", (None, 3))
    y = gc.placeholder("float64", (None, 1))
    w = gc.Variable(np.zeros((3, 1)), name="w")
    b = gc.Variable(np.zeros(1), name="b")
    loss = gc.reduce_mean(gc.square(gc.matmul(x, w) + b - y))
    train = optimizers.Adam(learning_rate=0.05).minimize(loss)
    s = gc.Session(optimize=optimize, executor=executor)
    s.run(gc.global_variables_initializer())
    nw, nb = np.zeros((3, 1)), np.zeros(1)
    state = {k: np.zeros_like(v) for k, v in (("mw", nw), ("vw", nw), ("mb", nb), ("vb", nb))}
    for t in range(1, 21):
        s.run(train, {x: X, y: Y})
        r = X @ nw + nb - Y
        gw, gb = 2 * X.T @ r / r.size, 2 * r.sum(0) / r.size
        alpha = 0.05 * math.sqrt(1 - 0.999 ** t) / (1 - 0.9 ** t)
        for p, gp in (("w", gw), ("b", gb)):
            state["m" + p] += (gp - state["m" + p]) * 0.1
            state["v" + p] += (gp * gp - state["v" + p]) * 0.001
        nw = nw - state["mw"] * alpha / (np.sqrt(state["vw"]) + 1e-7)
        nb = nb - state["mb"] * alpha / (np.sqrt(state["vb"]) + 1e-7)
        np.testing.assert_allclose(s.run(w), nw, rtol=1e-9, atol=1e-12, err_msg=f"step {t}")
        np.testing.assert_allclose(s.run(b), nb, rtol=1e-9, atol=1e-12, err_msg=f"step {t}")


@pytest.mark.parametrize("opt", [optimizers.Adam(0.05, amsgrad=True),
                                 optimizers.AdamW(0.05, weight_decay=0.1, clipnorm=1.0),
                                 optimizers.RMSprop(0.02, momentum=0.5, centered=True),
                                 optimizers.SGD(schedules.ExponentialDecay(0.1, 5, 0.5), momentum=0.9,
                                                nesterov=True),
                                 optimizers.Adagrad(0.2, global_clipnorm=0.5)],
                         ids=lambda o: type(o).__name__)
def test_compiled_training_step_matches_reference_interpreter(opt):
    """20 training steps of a small float32 MLP: compiled + optimized == the reference interpreter."""
    rng = np.random.default_rng(11)
    X = rng.normal(size=(12, 4)).astype(F32)
    Y = (X[:, :1] * X[:, 1:2] > 0).astype(F32)
    x = gc.placeholder("float32", (None, 4))
    y = gc.placeholder("float32", (None, 1))
    w1 = gc.Variable(rng.normal(size=(4, 6)).astype(F32) * 0.5, name="w1")
    b1 = gc.Variable(np.zeros(6, F32), name="b1")
    w2 = gc.Variable(rng.normal(size=(6, 1)).astype(F32) * 0.5, name="w2")
    logits = gc.matmul(gc.tanh(gc.matmul(x, w1) + b1), w2)
    loss = gc.reduce_mean(gc.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits))
    train = opt.minimize(loss)
    init = gc.global_variables_initializer()
    sessions = [gc.Session(executor="reference", optimize=False), gc.Session()]
    for s in sessions:
        s.run(init)
        for _ in range(20):
            s.run(train, {x: X, y: Y})
    ref, got = (s.run([w1, b1, w2, loss], {x: X, y: Y}) for s in sessions)
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert sessions[1].run(opt.iterations) == 20


@pytest.mark.parametrize("opt", [
    optimizers.Adam(0.01, amsgrad=True),                  # m, v, v_hat, var: one 4-result kernel
    optimizers.AdamW(schedules.CosineDecay(0.1, 10)),     # m, v, var (+ scalar lr kernels)
    optimizers.SGD(0.1, momentum=0.9, nesterov=True),     # momentum, var; -g*lr computed once
    optimizers.SGD(0.1, momentum=0.9),
    optimizers.RMSprop(centered=True, momentum=0.5),      # velocity, average, momentum, var
    optimizers.Adagrad(),                                 # accumulator, var
    optimizers.SGD(0.1, weight_decay=0.1),                # var
], ids=lambda o: f"{type(o).__name__}-{len(o._slot_names()) if hasattr(o, '_slot_names') else 0}")
def test_update_math_fuses(opt):
    """Issue #5: after the passes a parameter's whole update (its slots and itself) is ONE
    elementwise kernel (a multi-output one when several variables are assigned), in the graph
    and in the compiled Plan; the run equals the reference interpreter."""
    passes = pytest.importorskip("graphc.passes")
    ws = [gc.Variable(np.full((3, 2), 0.5, F32), name="w"), gc.Variable(np.ones(4, F32), name="b")]
    gs = [gc.placeholder("float32", w.shape) for w in ws]
    train = opt.apply_gradients(list(zip(gs, ws)))
    feeds = [g.node for g in gs]
    g2, rep = passes.optimize(ws[0].graph, [train.node], feeds=feeds, debug=True)
    kernels = ("elementwise", "opaque")   # fused_multi_output is opaque to the other passes
    compute = [n for n in g2.nodes() if get_op(g2.op(n)).fusion not in ("source", "state", "layout")]
    assert all(g2.op(n) in ("fused_multi_output", "fused_elementwise") or
               get_op(g2.op(n)).fusion in kernels and g2.spec(n).shape == () for n in compute), \
        [g2.op(n) for n in compute]
    assert {g2.op(n) for n in g2.nodes() if get_op(g2.op(n)).fusion == "layout"} <= {"fused_output"}
    # per-element kernels (scalar ones, e.g. a scheduled learning rate, are shared by all parameters)
    tensor_kernels = [n for n in compute if g2.spec(n).shape != ()]
    assert len(tensor_kernels) <= len(ws), [g2.name(n) for n in tensor_kernels]
    # the compiled Plan: one generated elementwise kernel call per parameter (+ scalar ones)
    from graphc import runtime
    exe = runtime.compile(g2, rep.fetches, feeds)
    calls = [s for s in exe.plan.kernel_calls if s.shape != ()]
    assert [s.call.name.split("[")[0] for s in calls if s.call.name != "view"] in (["ew"] * 2, ["ew2"] * 2,
                                                                                 ["ew3"] * 2, ["ew4"] * 2)
    assert not [s for s in exe.plan.kernel_calls if s.call.name.startswith("ref:") and s.op != "group"]
    from graphc.interpreter import evaluate

    def fill(spec):
        return np.linspace(0.1, 1.0, int(np.prod(spec.shape))).astype(spec.dtype).reshape(spec.shape)
    state = {g2.name(n): fill(g2.spec(n)) for n in g2.nodes() if g2.op(n) == "variable"}
    gv = {f: fill(g2.spec(f)) - 0.5 for f in feeds}
    _, got = exe.run(gv, state, 0)
    want = evaluate(ws[0].graph, [train.node], gv, state).updates
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-6, atol=1e-7, err_msg=k)


# -- config / get ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, cls", [("sgd", optimizers.SGD), ("adam", optimizers.Adam),
                                       ("adamw", optimizers.AdamW), ("rmsprop", optimizers.RMSprop),
                                       ("adagrad", optimizers.Adagrad), ("Adam", optimizers.Adam)])
def test_get_by_keras_name(name, cls):
    opt = optimizers.get(name)
    assert type(opt) is cls
    again = optimizers.deserialize(optimizers.serialize(opt))
    assert type(again) is cls and again.get_config() == opt.get_config()
    assert optimizers.get(opt) is opt


def test_keras_defaults_and_config():
    assert optimizers.SGD().get_config() == {
        "name": "SGD", "learning_rate": 0.01, "weight_decay": None, "clipnorm": None,
        "global_clipnorm": None, "clipvalue": None, "momentum": 0.0, "nesterov": False}
    c = optimizers.Adam().get_config()
    assert (c["learning_rate"], c["beta_1"], c["beta_2"], c["epsilon"], c["amsgrad"]) == (0.001, 0.9, 0.999, 1e-7, False)
    assert optimizers.AdamW().weight_decay == 0.004
    c = optimizers.RMSprop().get_config()
    assert (c["learning_rate"], c["rho"], c["momentum"], c["epsilon"], c["centered"]) == (0.001, 0.9, 0.0, 1e-7, False)
    c = optimizers.Adagrad().get_config()
    assert (c["learning_rate"], c["initial_accumulator_value"], c["epsilon"]) == (0.001, 0.1, 1e-7)
    sched = schedules.CosineDecay(0.1, 100, alpha=0.01)
    opt = optimizers.Adam.from_config(optimizers.Adam(learning_rate=sched, clipnorm=2.0).get_config())
    assert isinstance(opt.learning_rate, schedules.CosineDecay) and opt.clipnorm == 2.0
    assert opt.learning_rate.get_config() == sched.get_config()
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.get("adamax")


# -- regularizers -------------------------------------------------------------------------------------------
def test_regularizers_values_and_gradients():
    wv = np.array([[1.0, -2.0], [0.5, 0.0]], F32)
    w = gc.Variable(wv, name="w")
    l1, l2, both = regularizers.L1(0.1), regularizers.L2(), regularizers.L1L2(l1=0.1, l2=0.5)
    terms = [l1(w), l2(w), both(w)]
    assert all(t.shape == () and t.dtype == np.float32 for t in terms)
    (gl2,) = gc.gradients(terms[1], [w])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    vals = s.run(terms)
    np.testing.assert_allclose(vals, [0.35, 0.01 * 5.25, 0.35 + 0.5 * 5.25], rtol=1e-6)
    np.testing.assert_allclose(s.run(gl2), 0.02 * wv, rtol=1e-6)


def test_regularizers_get_and_config():
    assert regularizers.get(None) is None
    assert regularizers.get("l1").get_config() == {"l1": 0.01}
    assert regularizers.get("l2").get_config() == {"l2": 0.01}
    assert regularizers.get("l1_l2").get_config() == {"l1": 0.01, "l2": 0.01}
    assert regularizers.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    r = regularizers.L1L2(l1=0.2, l2=0.3)
    again = regularizers.deserialize(regularizers.serialize(r))
    assert type(again) is regularizers.L1L2 and again.get_config() == r.get_config()
    assert regularizers.get(r) is r
    with pytest.raises(ValueError, match="unknown regularizer"):
        regularizers.get("l3")
    with pytest.raises(ValueError):
        regularizers.L2(-1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert float(gc.Session().run(regularizers.L1L2()(gc.constant([1.0])))) == 0.0


# -- examples ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, atol", [("linear_regression", 0.05), ("logistic_regression", 0.25)])
def test_example_recovers_true_parameters(name, atol, capsys):
    import importlib.util
    import pathlib
    path = pathlib.Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    w, b, true_w, true_b = mod.main(steps=200)
    np.testing.assert_allclose(w, true_w, atol=atol)
    np.testing.assert_allclose(b, true_b, atol=atol)
    assert "learned" in capsys.readouterr().out
