"""fit / evaluate / predict arguments: steps_per_epoch, validation_steps, steps, callbacks of
evaluate and predict, sample and class weights, unknown keyword arguments, misspelled metrics."""
import numpy as np
import pytest

from graphc import callbacks as C
from graphc.models.training import _batch_stream
from graphc.optimizers import SGD
from tiny_models import per_sample_model


def test_steps_per_epoch_continues_through_the_data_across_epochs():
    m, x, y = per_sample_model(6)
    h = m.fit(x, y, batch_size=2, epochs=2, steps_per_epoch=2, shuffle=False, verbose=0)
    # batches [0,1] [2,3] | [4,5] [0,1]: w0, w1 took two steps, the others one
    # one step of mse on a batch of two: w += lr * (1 - w) -> 0.5, then 0.75
    np.testing.assert_allclose(m.get_weights()[0][:, 0], [0.75, 0.75, 0.5, 0.5, 0.5, 0.5], rtol=1e-6)
    assert h.params["steps"] == 2 and len(h.history["loss"]) == 2


def test_steps_per_epoch_larger_than_the_data_starts_a_new_pass():
    m, x, y = per_sample_model(4)
    seen = []
    cb = C.LambdaCallback(on_train_batch_begin=lambda b, logs: seen.append(b))
    m.fit(x, y, batch_size=4, epochs=1, steps_per_epoch=3, verbose=0, callbacks=[cb])
    assert seen == [0, 1, 2]
    # three full-batch steps; mse over 4 samples: w += lr * 2 (1 - w) / 4, so 1 - w = 0.75^3
    np.testing.assert_allclose(m.get_weights()[0][:, 0], np.full(4, 1 - 0.75 ** 3), rtol=1e-6)


def test_batch_stream_reshuffles_every_pass():
    a = np.arange(5)
    stream = _batch_stream([a, a * 10], 2, np.random.default_rng(0))
    batches = [next(stream) for _ in range(6)]
    first, second = np.concatenate([b[0] for b in batches[:3]]), np.concatenate([b[0] for b in batches[3:]])
    assert sorted(first) == sorted(second) == list(range(5))
    assert [len(b[0]) for b in batches] == [2, 2, 1, 2, 2, 1]
    assert all(np.array_equal(b[1], b[0] * 10) for b in batches)   # arrays stay aligned
    assert not np.array_equal(first, second)
    plain = _batch_stream([a], 2, None)
    assert [list(next(plain)[0]) for _ in range(4)] == [[0, 1], [2, 3], [4], [0, 1]]


def test_batch_stream_makes_no_shuffled_copy_of_the_data():
    import tracemalloc
    x, y = np.ones((4000, 256), np.float32), np.ones((4000, 10), np.float32)      # 4 MB of images
    stream = _batch_stream([x, y], 32, np.random.default_rng(0))
    tracemalloc.start()
    try:
        for _ in range(2 * 125):        # two passes, each batch dropped before the next
            xb, yb = next(stream)
            assert xb.shape == (32, 256) and yb.shape == (32, 10)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 512 * 1024        # a batch's rows (33 KB) and the permutation, not a 4 MB copy


def test_validation_steps_and_evaluate_steps_use_the_first_batches():
    m, x, y = per_sample_model(4, lr=0.0)
    yv = np.array([[1.0], [1.0], [3.0], [3.0]], np.float32)    # w = 0: losses 1, 1, 9, 9
    h = m.fit(x, y, batch_size=2, epochs=1, validation_data=(x, yv), validation_steps=1, verbose=0)
    assert h.history["val_loss"] == [pytest.approx(1.0)]
    assert m.evaluate(x, yv, batch_size=2, steps=1, verbose=0) == pytest.approx(1.0)
    assert m.evaluate(x, yv, batch_size=2, steps=99, verbose=0) == pytest.approx(5.0)
    assert m.evaluate(x, yv, batch_size=2, verbose=0) == pytest.approx(5.0)


def test_predict_steps_and_hooks():
    m, x, _ = per_sample_model(5)
    assert m.predict(x, batch_size=2, steps=2).shape == (4, 1)
    assert m.predict(x, batch_size=2).shape == (5, 1)
    calls = []

    class Rec(C.Callback):
        def on_predict_begin(self, logs=None): calls.append("begin")
        def on_predict_batch_begin(self, batch, logs=None): calls.append(("b", batch))
        def on_predict_batch_end(self, batch, logs=None): calls.append(("e", batch, logs["outputs"][0].shape))
        def on_predict_end(self, logs=None): calls.append("end")
        def on_test_begin(self, logs=None): calls.append("tbegin")
        def on_test_batch_end(self, batch, logs=None): calls.append(("te", batch, round(logs["loss"], 4)))
        def on_test_end(self, logs=None): calls.append(("tend", round(logs["loss"], 4)))

    m.predict(x, batch_size=3, callbacks=[Rec()])
    assert calls == ["begin", ("b", 0), ("e", 0, (3, 1)), ("b", 1), ("e", 1, (2, 1)), "end"]
    calls.clear()
    m.evaluate(x, np.ones((5, 1)), batch_size=4, verbose=0, callbacks=[Rec()])
    assert calls == ["tbegin", ("te", 0, 1.0), ("te", 1, 1.0), ("tend", 1.0)]


def test_unknown_keyword_arguments_are_errors_that_list_the_accepted_ones():
    m, x, y = per_sample_model(2)
    with pytest.raises(TypeError, match=r"fit\(\) got unexpected keyword argument\(s\) 'epoch'; "
                                        r"it accepts: x, y, batch_size, epochs"):
        m.fit(x, y, epoch=3, verbose=0)
    with pytest.raises(TypeError, match="'step'.*steps"):
        m.evaluate(x, y, step=1)
    with pytest.raises(TypeError, match="'batchsize'.*batch_size"):
        m.predict(x, batchsize=1)
    with pytest.raises(TypeError, match="'metric'.*metrics"):
        m.compile(loss="mse", metric=["mae"])
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer or None, got 0"):
        m.fit(x, y, steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match=r"validation_split must be a fraction in \[0, 1\), got 1.5"):
        m.fit(x, y, validation_split=1.5, verbose=0)


def test_misspelled_metric_fails_at_compile_listing_metric_names():
    m, x, y = per_sample_model(2)
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\); "
                                         r"known metrics: acc, accuracy, binary_accuracy"):
        m.compile(loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="unknown metric 'nope'.*custom_objects"):
        m.compile(loss="mse", metrics=["mae", "nope"])
    m.compile(loss="mse", metrics=["mae", "mse", "accuracy"])   # loss names are metrics too


def test_weighted_metrics_average_with_the_sample_weights():
    m, x, y = per_sample_model(4, lr=0.0)
    y = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)         # w = 0: |error| = 1, 2, 3, 4
    sw = np.array([1.0, 0.0, 3.0, 0.0], np.float32)
    m.compile(optimizer=SGD(0.0), loss="mae", metrics=["mae"], weighted_metrics=["mae", "mse"])
    res = m.evaluate(x, y, sample_weight=sw, batch_size=3, verbose=0, return_dict=True)
    assert res["loss"] == pytest.approx((1 + 9) / 4)                # mean of weight * loss
    assert res["mae"] == pytest.approx(2.5)                          # unweighted
    assert res["weighted_mae"] == pytest.approx((1 + 9) / 4)         # sum(w * v) / sum(w), over batches
    assert res["mse"] == pytest.approx((1 + 27) / 4)
    h = m.fit(x, y, sample_weight=sw, batch_size=3, shuffle=False, verbose=0)
    assert h.history["mse"] == [pytest.approx(7.0)] and h.history["weighted_mae"] == [pytest.approx(2.5)]
    assert m.train_on_batch(x[1:2], y[1:2], sample_weight=[0.0], return_dict=True)["mse"] == 0.0
    plain = m.evaluate(x, y, verbose=0, return_dict=True)            # no weights: plain means
    assert plain["weighted_mae"] == pytest.approx(2.5) and plain["mse"] == pytest.approx(7.5)
    with pytest.raises(ValueError, match="unknown metric 'mea'"):
        m.compile(loss="mae", weighted_metrics=["mea"])


def test_sample_weight_scales_each_samples_loss_and_update():
    m, x, y = per_sample_model(4)
    sw = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    # w = 0, loss 1 per sample: batch loss mean(sw) = 0.875; grad of w_i = -2 sw_i / 4
    assert m.train_on_batch(x, y, sample_weight=sw) == pytest.approx(0.875)
    np.testing.assert_allclose(m.get_weights()[0][:, 0], 0.5 * 2 * sw / 4, rtol=1e-6)
    w = m.get_weights()[0][:, 0]
    per = (1 - w) ** 2
    assert m.evaluate(x, y, sample_weight=sw, verbose=0) == pytest.approx(np.mean(per * sw), rel=1e-5)
    assert m.test_on_batch(x, y, sample_weight=sw[:, None]) == pytest.approx(np.mean(per * sw), rel=1e-5)
    assert m.evaluate(x, y, verbose=0) == pytest.approx(np.mean(per), rel=1e-5)
    m, x, y = per_sample_model(4)
    h = m.fit(x, y, batch_size=2, epochs=1, sample_weight=sw, shuffle=False, verbose=0)
    np.testing.assert_allclose(m.get_weights()[0][:, 0], 0.5 * 2 * sw / 2, rtol=1e-6)
    assert h.history["loss"] == [pytest.approx(0.875)]


def test_class_weight_weighs_by_label_and_validation_by_sample_weight_only():
    from graphc.layers import Dense
    from graphc.models import Sequential
    m = Sequential([Dense(2, activation="softmax", kernel_initializer="zeros", input_dim=3)])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = np.ones((4, 3), np.float32)
    labels = np.array([0, 1, 1, 1])
    cw = {0: 3.0, 1: 0.5}
    # uniform softmax: cross-entropy log 2 for every sample
    assert m.train_on_batch(x, labels, class_weight=cw) == pytest.approx(np.log(2) * 4.5 / 4, rel=1e-5)
    onehot = Sequential([Dense(2, activation="softmax", kernel_initializer="zeros", input_dim=3)])
    onehot.compile(optimizer=SGD(0.0), loss="categorical_crossentropy")
    h = onehot.fit(x, np.eye(2)[labels], class_weight=cw, sample_weight=[1, 1, 2, 2], epochs=1,
                   verbose=0, batch_size=4, validation_data=(x, np.eye(2)[labels], np.array([0, 0, 1, 1])))
    assert h.history["loss"] == [pytest.approx(np.log(2) * (3 + 0.5 + 1 + 1) / 4, rel=1e-5)]
    assert h.history["val_loss"] == [pytest.approx(np.log(2) * 2 / 4, rel=1e-5)]
    h = onehot.fit(x, np.eye(2)[labels], class_weight=cw, validation_split=0.5, epochs=1, verbose=0)
    assert h.history["loss"] == [pytest.approx(np.log(2) * 3.5 / 2, rel=1e-5)]
    assert h.history["val_loss"] == [pytest.approx(np.log(2), rel=1e-5)]     # class weights: training only
    with pytest.raises(ValueError, match=r"class_weight has no weight for class\(es\) \[1\] found in the "
                                         r"targets; it has \[0\]"):
        m.fit(x, labels, class_weight={0: 1.0}, verbose=0)
    with pytest.raises(TypeError, match="class_weight must be a dict"):
        m.fit(x, labels, class_weight=[1.0, 2.0], verbose=0)
    with pytest.raises(ValueError, match=r"sample_weight needs one weight per sample, shape \(4,\), got "
                                         r"shape \(3,\)"):
        m.fit(x, labels, sample_weight=np.ones(3), verbose=0)


def test_on_batch_reset_metrics_false_keeps_running_means():
    m, x, y = per_sample_model(4, lr=0.0)
    y2 = np.full((4, 1), 3.0, np.float32)                     # w = 0: batch losses 1 and 9
    assert m.test_on_batch(x, y, reset_metrics=False) == pytest.approx(1.0)
    assert m.test_on_batch(x[:2], y2[:2], reset_metrics=False) == pytest.approx((4 * 1 + 2 * 9) / 6)
    assert m.test_on_batch(x, y) == pytest.approx((4 * 1 + 2 * 9 + 4 * 1) / 10)   # then reset
    assert m.test_on_batch(x[:2], y2[:2]) == pytest.approx(9.0)
    assert m.train_on_batch(x, y, reset_metrics=False) == pytest.approx(1.0)      # train: its own means
    assert m.train_on_batch(x, y2, reset_metrics=False, return_dict=True) == {"loss": pytest.approx(5.0)}
