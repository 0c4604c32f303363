"""gc.train: the TF-1 optimizers against numpy versions of TF-1's update rules (training_ops),
the global step, and TF-1's minimize / compute_gradients / apply_gradients signatures."""
from __future__ import annotations

import numpy as np
import pytest

import graphc as gc
import graphc.models.saving as graphc_saving

F32 = np.float32
W0 = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], F32)
GRADS = [np.array([[1.0, -2.0, 0.5], [0.1, 3.0, -1.0]], F32),
         np.array([[0.2, 0.1, -0.3], [0.05, -0.4, 0.6]], F32),
         np.array([[-0.5, 0.3, 0.2], [0.0, 0.1, -0.1]], F32),
         np.array([[0.01, 0.02, -0.03], [0.5, -0.5, 0.25]], F32)]


# -- numpy versions of TF-1's kernels (tensorflow/core/kernels/training_ops.cc) --------------------
def np_gd(w, grads, learning_rate):
    for g in grads:
        w = w - F32(learning_rate) * g
        yield w, {}


def np_momentum(w, grads, learning_rate, momentum, use_nesterov=False):
    lr, mu = F32(learning_rate), F32(momentum)
    accum = np.zeros_like(w)
    for g in grads:
        accum = accum * mu + g
        w = w - (g * lr + accum * mu * lr) if use_nesterov else w - accum * lr
        yield w, {"momentum": accum}


def np_adam(w, grads, learning_rate=0.001, beta1=0.9, beta2=0.999, epsilon=1e-8):
    m, v = np.zeros_like(w), np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        lr_t = F32(learning_rate) * np.sqrt(1 - F32(beta2) ** t) / (1 - F32(beta1) ** t)
        m = m * F32(beta1) + g * (1 - F32(beta1))
        v = v * F32(beta2) + g * g * (1 - F32(beta2))
        w = w - lr_t * m / (np.sqrt(v) + F32(epsilon))      # epsilon outside the sqrt
        yield w, {"m": m, "v": v}


def np_rmsprop(w, grads, learning_rate, decay=0.9, momentum=0.0, epsilon=1e-10, centered=False):
    ms, mom, mg = np.ones_like(w), np.zeros_like(w), np.zeros_like(w)   # TF-1: ms starts at 1
    for g in grads:
        ms = ms + (g * g - ms) * (1 - F32(decay))
        den = ms
        if centered:
            mg = mg + (g - mg) * (1 - F32(decay))
            den = ms - mg * mg
        mom = mom * F32(momentum) + F32(learning_rate) * g / np.sqrt(den + F32(epsilon))  # eps inside
        w = w - mom
        yield w, {"rms": ms, "momentum": mom, **({"mg": mg} if centered else {})}


CONFIGS = [
    (gc.train.GradientDescentOptimizer, np_gd, {"learning_rate": 0.1}),
    (gc.train.MomentumOptimizer, np_momentum, {"learning_rate": 0.1, "momentum": 0.9}),
    (gc.train.MomentumOptimizer, np_momentum, {"learning_rate": 0.05, "momentum": 0.8, "use_nesterov": True}),
    (gc.train.AdamOptimizer, np_adam, {}),
    (gc.train.AdamOptimizer, np_adam, {"learning_rate": 0.1, "beta1": 0.5, "beta2": 0.9, "epsilon": 1e-3}),
    (gc.train.RMSPropOptimizer, np_rmsprop, {"learning_rate": 0.01}),
    (gc.train.RMSPropOptimizer, np_rmsprop, {"learning_rate": 0.01, "decay": 0.8, "momentum": 0.9,
                                             "epsilon": 1e-3}),
    (gc.train.RMSPropOptimizer, np_rmsprop, {"learning_rate": 0.01, "momentum": 0.5, "epsilon": 0.1,
                                             "centered": True}),
]


@pytest.mark.parametrize("cls, ref, kw", CONFIGS,
                         ids=[f"{c.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items())}"
                              for c, _, kw in CONFIGS])
def test_steps_match_tf1_update_rules(cls, ref, kw):
    w = gc.Variable(W0, name="w")
    g = gc.placeholder("float32", W0.shape, name="g")
    opt = cls(**kw)
    train_op = opt.minimize(gc.reduce_sum(w * g))     # d(loss)/dw = g
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for step, (gv, (want_w, want_slots)) in enumerate(zip(GRADS, ref(W0, GRADS, **kw)), start=1):
        assert s.run(train_op, {g: gv}) is None
        np.testing.assert_allclose(s.run(w), want_w, rtol=3e-6, atol=1e-7, err_msg=f"step {step}")
        assert set(opt.get_slot_names()) == set(want_slots)
        for name, want in want_slots.items():
            np.testing.assert_allclose(s.run(opt.get_slot(w, name)), want, rtol=3e-6, atol=1e-7,
                                       err_msg=f"slot {name!r} at step {step}")


def test_defaults_are_tf1s():
    adam = gc.train.AdamOptimizer()
    assert (adam.learning_rate, adam.beta1, adam.beta2, adam.epsilon) == (0.001, 0.9, 0.999, 1e-08)
    rms = gc.train.RMSPropOptimizer(0.1)
    assert (rms.decay, rms.momentum, rms.epsilon, rms.centered) == (0.9, 0.0, 1e-10, False)
    mom = gc.train.MomentumOptimizer(0.1, 0.9)
    assert mom.use_nesterov is False
    # positional order as in TF-1
    assert gc.train.MomentumOptimizer(0.1, 0.5).momentum == 0.5
    assert gc.train.RMSPropOptimizer(0.1, 0.5, 0.3, 1e-4).decay == 0.5


def test_minimize_increments_global_step_and_accepts_tf1_arguments():
    w = gc.Variable(3.0, name="w")
    step = gc.train.get_or_create_global_step()
    assert gc.train.get_or_create_global_step() is not None
    assert gc.train.get_or_create_global_step().node == step.node
    op = gc.train.GradientDescentOptimizer(0.25).minimize(
        w * w, step, var_list=[w], gate_gradients=gc.train.GATE_OP, aggregation_method=None,
        colocate_gradients_with_ops=False, name="train")
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for _ in range(3):
        s.run(op)
    assert s.run(step) == 3
    assert s.run(w) == pytest.approx(3.0 * 0.5 ** 3)
    with pytest.raises(ValueError, match="global_step already exists"):
        gc.train.create_global_step()


def test_compute_then_apply_gradients_with_a_modified_gradient():
    w = gc.Variable([1.0, 2.0], name="w")
    b = gc.Variable(5.0, name="b")
    opt = gc.train.GradientDescentOptimizer(0.1)
    gvs = opt.compute_gradients(gc.reduce_sum(w * w))
    assert [v.name for _, v in gvs] == ["w", "b"] and gvs[1][0] is None
    clipped = [(gc.clip_by_value(g, -1.0, 1.0), v) for g, v in gvs if g is not None]
    op = opt.apply_gradients(clipped)
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(op)
    np.testing.assert_allclose(s.run(w), [0.9, 1.9], rtol=1e-6)
    assert s.run(b) == 5.0


def test_global_step_must_be_an_integer_variable():
    w = gc.Variable(1.0, name="w")
    with pytest.raises(TypeError, match="integer variable"):
        gc.train.GradientDescentOptimizer(0.1).minimize(w * w, global_step=gc.Variable(0.0, name="s"))


def test_learning_rate_placeholder():
    lr = gc.placeholder("float32", ())
    w = gc.Variable(1.0, name="w")
    op = gc.train.MomentumOptimizer(lr, 0.0).minimize(w * 2.0)
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(op, {lr: 0.5})
    s.run(op, {lr: 0.25})
    assert s.run(w) == pytest.approx(1.0 - 2 * 0.5 - 2 * 0.25)


# -- Saver ------------------------------------------------------------------------------------------
def _model():
    with gc.variable_scope("dense"):
        w = gc.get_variable("w", initializer=np.arange(6, dtype=np.float32).reshape(2, 3))
        b = gc.get_variable("b", initializer=np.array([1, 2, 3], np.int64))
    return w, b


def test_saver_round_trip_includes_optimizer_slots(tmp_path):
    w, b = _model()
    g = gc.placeholder("float32", (2, 3))
    opt = gc.train.AdamOptimizer(0.1)
    op = opt.minimize(gc.reduce_sum(w * g), var_list=[w])
    saver = gc.train.Saver()
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    s.run(op, {g: GRADS[0]})
    want = s.run(gc.global_variables())
    path = saver.save(s, str(tmp_path / "ckpt"), global_step=7)
    assert path == str(tmp_path / "ckpt-7") and sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-7"]
    with np.load(path) as f:
        assert {"dense/w", "dense/b", opt.get_slot(w, "m").name} <= set(f.files)
    s.run(op, {g: GRADS[1]})
    s2 = gc.Session()                                  # a fresh session: nothing initialized
    saver.restore(s2, path)
    for got, exp in zip(s2.run(gc.global_variables()), want):
        np.testing.assert_array_equal(got, exp)
    saver.restore(s, path)
    np.testing.assert_array_equal(s.run(w), want[0])


def test_saver_var_list_and_dict(tmp_path):
    w, b = _model()
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    path = gc.train.Saver({"kernel": w}).save(s, tmp_path / "k.npz")
    with np.load(path) as f:
        assert f.files == ["kernel"]
    s.run(w.assign(np.zeros((2, 3), np.float32)))
    gc.train.Saver([w]).save(s, tmp_path / "w.npz")
    gc.train.Saver({"kernel": w}).restore(s, path)
    assert s.run(w)[1, 2] == 5.0


def test_saver_restore_errors_name_the_file_and_variable(tmp_path):
    w, b = _model()
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    only_w = gc.train.Saver([w]).save(s, tmp_path / "only_w.npz")
    with pytest.raises(ValueError, match=r"only_w\.npz' has no value for variable 'dense/b'"):
        gc.train.Saver().restore(s, only_w)
    np.savez(tmp_path / "shape.npz", **{"dense/w": np.zeros((3, 2), np.float32)})
    with pytest.raises(ValueError, match=r"'dense/w' has shape \(2, 3\) but .*shape\.npz' holds shape \(3, 2\)"):
        gc.train.Saver([w]).restore(s, tmp_path / "shape.npz")
    np.savez(tmp_path / "dtype.npz", **{"dense/w": np.zeros((2, 3), np.float64)})
    with pytest.raises(ValueError, match=r"'dense/w' has dtype float32 but .*dtype\.npz' holds dtype float64"):
        gc.train.Saver([w]).restore(s, tmp_path / "dtype.npz")
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        gc.train.Saver([w]).restore(s, tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        gc.train.Saver([w]).restore(s, tmp_path / "junk.npz")


def test_saver_save_is_atomic(tmp_path, monkeypatch):
    w, _ = _model()
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    saver = gc.train.Saver()
    path = saver.save(s, tmp_path / "m.npz")
    before = (tmp_path / "m.npz").read_bytes()

    def broken(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(graphc_saving, "_savez", broken)
    s.run(w.assign(np.ones((2, 3), np.float32)))
    with pytest.raises(OSError, match="disk full"):
        saver.save(s, path)
    assert (tmp_path / "m.npz").read_bytes() == before        # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]   # and no temporary file is left


def test_saver_rejects_non_variables_and_other_graphs():
    w, _ = _model()
    with pytest.raises(TypeError, match="not a gc.Variable"):
        gc.train.Saver([w * 2.0])
    saver = gc.train.Saver()
    with pytest.raises(ValueError, match="another graph"):
        saver.save(gc.Session(gc.Graph()), "x.npz")


def test_saver_save_of_an_uninitialized_variable_names_it(tmp_path):
    w, _ = _model()
    with pytest.raises(gc.UninitializedVariableError, match=r"Saver.save\(.*m\.npz'\): variable 'dense/w'"):
        gc.train.Saver().save(gc.Session(), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# -- learning-rate decay ---------------------------------------------------------------------------
@pytest.mark.parametrize("staircase", [False, True])
def test_decay_functions_match_tf1_formulas(staircase):
    step = gc.train.get_or_create_global_step()
    exp = gc.train.exponential_decay(0.1, step, 10, 0.5, staircase=staircase)
    inv = gc.train.inverse_time_decay(0.1, step, 10, 0.5, staircase=staircase)
    pw = gc.train.piecewise_constant(step, [5, 20], [1.0, 0.5, 0.1])
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for n in (0, 5, 6, 15, 20, 21, 37):
        s.run(step.assign(n))
        p = np.floor(n / 10) if staircase else n / 10
        assert s.run(exp) == pytest.approx(0.1 * 0.5 ** p, rel=1e-6), n
        assert s.run(inv) == pytest.approx(0.1 / (1 + 0.5 * p), rel=1e-6), n
        assert s.run(pw) == pytest.approx(1.0 if n <= 5 else 0.5 if n <= 20 else 0.1), n


def test_decayed_learning_rate_drives_an_optimizer():
    step = gc.train.get_or_create_global_step()
    w = gc.Variable(0.0, name="w")
    lr = gc.train.exponential_decay(1.0, step, 1, 0.5, staircase=True)
    op = gc.train.GradientDescentOptimizer(lr).minimize(-w, global_step=step)   # grad = -1
    s = gc.Session()
    s.run(gc.global_variables_initializer())
    for _ in range(3):
        s.run(op)
    assert s.run(w) == pytest.approx(1.0 + 0.5 + 0.25)
    with pytest.raises(ValueError, match="global_step is required for exponential_decay"):
        gc.train.exponential_decay(0.1, None, 10, 0.5)
