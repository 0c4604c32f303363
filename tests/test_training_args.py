"""fit / evaluate / predict arguments: steps_per_epoch, validation_steps, steps, callbacks of
evaluate and predict, unknown keyword arguments, misspelled metrics, unsupported weights."""
import numpy as np
import pytest

from graphc import callbacks as C
from graphc.models.training import _batch_stream
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


def test_misspelled_metric_fails_at_compile_listing_metric_names():
    m, x, y = per_sample_model(2)
    with pytest.raises(ValueError, match=r"unknown metric 'acuracy' \(did you mean 'accuracy'\?\); "
                                         r"known metrics: acc, accuracy, binary_accuracy"):
        m.compile(loss="mse", metrics=["acuracy"])
    with pytest.raises(ValueError, match="unknown metric 'nope'.*custom_objects"):
        m.compile(loss="mse", metrics=["mae", "nope"])
    m.compile(loss="mse", metrics=["mae", "mse", "accuracy"])   # loss names are metrics too


@pytest.mark.parametrize("call", [
    lambda m, x, y: m.fit(x, y, sample_weight=np.ones(2), verbose=0),
    lambda m, x, y: m.fit(x, y, class_weight={0: 1.0}, verbose=0),
    lambda m, x, y: m.evaluate(x, y, sample_weight=np.ones(2), verbose=0),
    lambda m, x, y: m.train_on_batch(x, y, sample_weight=np.ones(2)),
    lambda m, x, y: m.compile(loss="mse", weighted_metrics=["mae"]),
])
def test_unsupported_weights_are_errors_not_silently_ignored(call):
    m, x, y = per_sample_model(2)
    with pytest.raises(NotImplementedError, match="is not supported by graphc models yet"):
        call(m, x, y)
